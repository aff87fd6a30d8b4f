//! Closing the loop on budgets: the actual charge in ToraPaymaster's `GasChargedInToken` event
//! replaces each reservation (sponsored operations, and token-mode ones under the token
//! limits), and reservations whose quotes expired unused go back to their budgets.
//!
//! The store keeps a cursor, the last block read, so a restart resumes where settlement
//! stopped. Blocks are read only once `confirmations` deep, and a reservation is released only
//! when the last block read is later than its quote's expiry: an operation can land up to that
//! instant, so by then its log has been read if it landed at all. A tick whose read fails
//! releases nothing.

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use std::time::Duration;
use tora_core::contracts::ToraPaymaster::GasChargedInToken;
use tora_core::money::ToraUnits;
use tora_core::sponsorship::{MAX_BUDGET, MicroTora, SponsorshipStore};

/// The most blocks one `eth_getLogs` asks for: nodes refuse wide ranges, and a service back
/// from a long stop catches up over several ticks.
pub const MAX_BLOCKS_PER_READ: u64 = 2_000;

/// Where settlement reads and how carefully.
#[derive(Clone, Copy, Debug)]
pub struct SettlementSettings {
    /// The ToraPaymaster whose logs are read.
    pub paymaster: Address,
    /// Time between settlement ticks.
    pub interval: Duration,
    /// Blocks are read once this many newer ones exist (0: as soon as they are mined).
    pub confirmations: u64,
}

/// What one tick did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tick {
    /// Reservations replaced by the charge a `GasChargedInToken` log reported.
    pub settled: u64,
    /// Reservations given back to their budgets because their quotes expired unused.
    pub released: u64,
    /// The last block read, when the tick read any.
    pub through: Option<u64>,
}

fn failed(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Settles every charge the paymaster logged in blocks `from..=to`; how many.
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
        // Rounded up like every reservation: the budget never shows less than was spent.
        let actual = MicroTora::from_tora_ceil(ToraUnits(event.charge)).unwrap_or(MAX_BUDGET);
        if let Some(budget) = store.settle(event.userOpHash, actual).await.map_err(failed)? {
            crate::metrics::settled(budget, actual);
            settled += 1;
        }
    }
    Ok(settled)
}

/// The newest block deep enough to read.
async fn confirmed_head(provider: &DynProvider, confirmations: u64) -> Result<u64, String> {
    let head = provider.get_block_number().await.map_err(|e| format!("block number: {e}"))?;
    Ok(head.saturating_sub(confirmations))
}

/// Sets the cursor of a store that has none to just before the confirmed head: nothing was
/// quoted through it before, so nothing older can be owed to it.
pub async fn start_cursor<S: SponsorshipStore>(
    store: &S,
    provider: &DynProvider,
    confirmations: u64,
) -> Result<(), String> {
    if store.settled_block().await.map_err(failed)?.is_none() {
        let head = confirmed_head(provider, confirmations).await?;
        store.set_settled_block(head.saturating_sub(1)).await.map_err(failed)?;
    }
    Ok(())
}

async fn block_time(provider: &DynProvider, block: u64) -> Result<u64, String> {
    let block = provider
        .get_block_by_number(BlockNumberOrTag::Number(block))
        .await
        .map_err(|e| format!("block {block}: {e}"))?
        .ok_or_else(|| format!("block {block} not found"))?;
    Ok(block.header.timestamp)
}

/// One step: reads the next confirmed blocks after the cursor, settles their charges, moves the
/// cursor, then releases what expired before the last block read. An error leaves the store
/// as it was, except for charges already settled (settling twice is a no-op).
pub async fn tick<S: SponsorshipStore>(
    store: &S,
    provider: &DynProvider,
    settings: &SettlementSettings,
) -> Result<Tick, String> {
    let Some(cursor) = store.settled_block().await.map_err(failed)? else {
        return Err("settlement has no cursor (start_cursor first)".into());
    };
    let from = cursor + 1;
    let to = confirmed_head(provider, settings.confirmations).await?.min(cursor + MAX_BLOCKS_PER_READ);
    if to < from {
        return Ok(Tick::default());
    }
    let settled = settle_blocks(store, provider, settings.paymaster, from, to).await?;
    let read_until = block_time(provider, to).await?;
    store.set_settled_block(to).await.map_err(failed)?;
    let released = store.release_expired(read_until).await.map_err(failed)?;
    Ok(Tick { settled, released, through: Some(to) })
}

/// Follows the chain every `interval` until the task is dropped; errors are logged and the
/// same blocks retried on the next tick.
pub async fn run<S: SponsorshipStore>(store: &S, provider: &DynProvider, settings: SettlementSettings) {
    let mut interval = tokio::time::interval(settings.interval);
    loop {
        interval.tick().await;
        match tick(store, provider, &settings).await {
            Ok(done) if done.settled > 0 || done.released > 0 => tracing::info!(
                settled = done.settled,
                released = done.released,
                through = done.through,
                "settled paymaster charges"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "settlement failed; retrying the same blocks"),
        }
    }
}
