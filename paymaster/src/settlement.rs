//! Closing the loop on sponsored budgets: the actual charge in ToraPaymaster's
//! `GasChargedInToken` event replaces each reservation, and reservations whose quotes expired
//! unused go back to their budgets.

use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use std::time::Duration;
use tora_core::contracts::ToraPaymaster::GasChargedInToken;
use tora_core::money::ToraUnits;
use tora_core::paymaster_quote::QuoteMode;
use tora_core::sponsorship::{MicroTora, SponsorshipStore};

/// Settles every sponsored charge the paymaster logged in blocks `from..=to`; how many.
pub async fn settle_blocks<S: SponsorshipStore>(
    store: &S,
    provider: &DynProvider,
    paymaster: Address,
    from: u64,
    to: u64,
) -> Result<u64, String> {
    let filter = Filter::new()
        .address(paymaster)
        .event_signature(GasChargedInToken::SIGNATURE_HASH)
        .from_block(from)
        .to_block(to);
    let logs = provider.get_logs(&filter).await.map_err(|e| format!("get_logs: {e}"))?;
    let mut settled = 0;
    for log in logs {
        let Ok(event) = log.log_decode::<GasChargedInToken>() else {
            continue;
        };
        let event = event.inner.data;
        if event.mode != QuoteMode::Sponsor as u8 {
            continue;
        }
        // Rounded up like every reservation: the budget never shows less than was spent.
        let actual =
            MicroTora::from_tora_ceil(ToraUnits(event.charge)).unwrap_or(tora_core::sponsorship::MAX_BUDGET);
        if store.settle(event.userOpHash, actual).await.map_err(|e| e.to_string())? {
            settled += 1;
        }
    }
    Ok(settled)
}

/// Follows the chain every `interval`: settles new blocks, releases expired reservations.
/// Runs until the task is dropped; errors are logged and retried on the next tick.
pub async fn run<S: SponsorshipStore>(
    store: &S,
    provider: &DynProvider,
    paymaster: Address,
    interval: Duration,
) {
    let mut next_block = provider.get_block_number().await.unwrap_or(0);
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        match provider.get_block_number().await {
            Ok(head) if head >= next_block => {
                match settle_blocks(store, provider, paymaster, next_block, head).await {
                    Ok(n) => {
                        if n > 0 {
                            tracing::info!(
                                settled = n,
                                from = next_block,
                                to = head,
                                "settled sponsored operations"
                            );
                        }
                        next_block = head + 1;
                    }
                    Err(e) => tracing::warn!(error = %e, "settlement failed; retrying"),
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "node unreachable for settlement"),
        }
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        match store.release_expired(now).await {
            Ok(n) if n > 0 => {
                tracing::info!(released = n, "released expired sponsorship reservations")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "releasing expired reservations failed"),
        }
    }
}
