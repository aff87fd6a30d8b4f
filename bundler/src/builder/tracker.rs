//! A sent bundle until it settles. On each new head: if the lane's nonce moved, find which of
//! its transactions took it (a bundle: the operations are included; none: the cancellation or
//! someone else did, and the operations go back to the pool); if it has waited
//! `resubmit_after_blocks`, resend it with bumped fees, or cancel it when it is out of tries,
//! its operations no longer pass, or the bump would pass the fee cap. What to do is decided by
//! [`plan`] and [`reprice`] from what was observed, with no node in sight; the builder only
//! gathers the observations and carries the step out.

use super::fees::BundleFees;
use super::lanes::{InFlight, Lane};
use super::reorg::{IncludedBundle, RecentBundles};
use super::submit::bundle_request;
use super::{Builder, BuilderError, BuilderSettings, BundleOutcome, Settled, node};
use crate::pool::Mempool;
use alloy::eips::BlockId;
use alloy::network::TransactionBuilder;
use alloy::primitives::{B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::{Block, TransactionReceipt, TransactionRequest};
use std::collections::HashSet;
use tora_core::contracts::EntryPoint;

/// A plain transfer's gas.
const TRANSFER_GAS: u64 = 21_000;

/// Why a stuck bundle is cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CancelReason {
    /// Resubmitted `max_resubmissions` times already.
    OutOfTries,
    /// Its `handleOps` no longer simulates: resending would pay for a revert.
    NoLongerPasses,
    /// The bump would pass `max_fee_per_gas_cap`.
    FeeCapReached,
    /// The cancellation itself is stuck: outbid it.
    CancellationStuck,
}

/// What a stuck bundle needs before its step is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Plan {
    /// Not stuck long enough yet.
    Wait,
    Cancel(CancelReason),
    /// Check it still simulates and price a resubmission ([`reprice`]).
    Reprice,
}

/// What to do with a lane's bundle in flight at this head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    Wait,
    Resubmit(BundleFees),
    Cancel(CancelReason),
}

/// The plan for `f` at block `head`: wait until `resubmit_after_blocks` passed since the last
/// send; then outbid a stuck cancellation, cancel when out of tries, or reprice.
pub(super) fn plan(f: &InFlight, head: u64, settings: &BuilderSettings) -> Plan {
    if head < f.last_sent_block.saturating_add(settings.resubmit_after_blocks) {
        Plan::Wait
    } else if f.cancel.is_some() {
        Plan::Cancel(CancelReason::CancellationStuck)
    } else if f.resubmissions >= settings.max_resubmissions {
        Plan::Cancel(CancelReason::OutOfTries)
    } else {
        Plan::Reprice
    }
}

/// A resubmission at least a replacement bump over `sent` and at today's price, or a
/// cancellation when that passes `cap`.
pub(super) fn reprice(sent: BundleFees, today: BundleFees, cap: u128) -> Step {
    match sent.resubmission(today, cap) {
        Some(fees) => Step::Resubmit(fees),
        None => Step::Cancel(CancelReason::FeeCapReached),
    }
}

impl<P: Mempool> Builder<P> {
    /// One head's step for one lane's bundle; `Some` once it settled.
    pub(super) async fn advance(
        &self,
        lane: &Lane,
        f: &mut InFlight,
        block: &Block,
        recent: &mut RecentBundles,
    ) -> Result<Option<Settled>, BuilderError> {
        let nonce_now = lane
            .provider
            .get_transaction_count(lane.address)
            .block_id(BlockId::latest())
            .await
            .map_err(node)?;
        if nonce_now > f.nonce {
            return self.nonce_taken(lane, f, recent).await.map(Some);
        }
        let head = block.header.number;
        let step = match plan(f, head, &self.settings) {
            Plan::Wait => Step::Wait,
            Plan::Cancel(reason) => Step::Cancel(reason),
            Plan::Reprice => match self.simulate(lane.address, &f.ops).await? {
                Some((index, reason)) => {
                    tracing::info!(op = index, %reason, "a stuck bundle no longer passes");
                    Step::Cancel(CancelReason::NoLongerPasses)
                }
                None => {
                    let base_fee = u128::from(block.header.base_fee_per_gas.unwrap_or_default());
                    reprice(f.fees, self.price(base_fee).await?, self.settings.max_fee_per_gas_cap)
                }
            },
        };
        match step {
            Step::Wait => {}
            Step::Resubmit(fees) => self.resubmit(lane, f, fees, head).await,
            Step::Cancel(reason) => {
                tracing::info!(signer = %lane.address, nonce = f.nonce, ?reason, "cancelling a stuck bundle");
                self.send_cancel(lane, f, head).await;
            }
        }
        Ok(None)
    }

    /// Resends the bundle at `fees`, at the same nonce.
    async fn resubmit(&self, lane: &Lane, f: &mut InFlight, fees: BundleFees, head: u64) {
        let request =
            bundle_request(lane.address, self.entry_point, f.nonce, f.gas, f.calldata.clone(), fees);
        f.resubmissions += 1;
        f.last_sent_block = head;
        match lane.provider.send_transaction(request).await {
            Ok(pending) => {
                tracing::info!(tx = %pending.tx_hash(), nonce = f.nonce, ?fees, "bundle resubmitted");
                f.sent.push(*pending.tx_hash());
                f.fees = fees;
            }
            Err(e) => tracing::warn!(error = %e, nonce = f.nonce, "bundle resubmission refused"),
        }
    }

    /// The lane's nonce moved past the bundle: settle it by which transaction took the nonce.
    async fn nonce_taken(
        &self,
        lane: &Lane,
        f: &InFlight,
        recent: &mut RecentBundles,
    ) -> Result<Settled, BuilderError> {
        // Newest first: a later resubmission is the likelier to have landed.
        let mut receipts = Vec::new();
        for &tx in f.sent.iter().rev() {
            let receipt = lane.provider.get_transaction_receipt(tx).await.map_err(node)?;
            let found = receipt.is_some();
            receipts.push(receipt);
            if found {
                break;
            }
        }
        self.settle_in_flight(f.ops.iter().map(|p| p.hash)).await;
        Ok(match receipts.into_iter().flatten().next() {
            Some(receipt) if receipt.status() => Ok(self.landed(f, &receipt, recent).await),
            // The operations stay in the pool; the next bundle re-validates them.
            Some(receipt) => Err(BuilderError::Reverted(receipt.transaction_hash)),
            None => {
                // The cancellation (or another sender of this key) took the nonce: the
                // operations are free again, and the next bundle re-validates them first.
                tracing::info!(signer = %lane.address, nonce = f.nonce, "bundle cancelled; its operations are pending again");
                Err(BuilderError::Cancelled { signer: lane.address, nonce: f.nonce })
            }
        })
    }

    /// Turns the bundle's UserOperationEvent logs into the pool's inclusions, and remembers the
    /// bundle's block for the reorg check.
    async fn landed(
        &self,
        f: &InFlight,
        receipt: &TransactionReceipt,
        recent: &mut RecentBundles,
    ) -> BundleOutcome {
        let landed: HashSet<B256> = receipt
            .inner
            .logs()
            .iter()
            .filter(|log| log.address() == self.entry_point)
            .filter_map(|log| log.log_decode::<EntryPoint::UserOperationEvent>().ok())
            .map(|log| log.inner.data.userOpHash)
            .collect();
        let mut included = Vec::new();
        for op in &f.ops {
            if landed.contains(&op.hash) {
                self.pool.mark_included(op.hash).await;
                included.push(op.clone());
            } else {
                self.pool.remove(op.hash).await;
            }
        }
        tracing::info!(tx = %receipt.transaction_hash, ops = included.len(), "bundle included");
        crate::metrics::bundle_landed(included.len(), f.first_sent.elapsed());
        let outcome = BundleOutcome {
            transaction_hash: receipt.transaction_hash,
            included: included.iter().map(|p| p.hash).collect(),
            dropped: f.dropped.clone(),
        };
        if let (Some(block_number), Some(block_hash)) = (receipt.block_number, receipt.block_hash) {
            recent.remember(IncludedBundle {
                block_number,
                block_hash,
                transaction_hash: receipt.transaction_hash,
                ops: included,
            });
        }
        outcome
    }

    /// Frees the nonce with a 0-value transfer to the signer itself, outbidding whatever sits
    /// at that nonce in the node's pool.
    async fn send_cancel(&self, lane: &Lane, f: &mut InFlight, block_number: u64) {
        let fees = f.fees.cancellation();
        let request = TransactionRequest::default()
            .with_from(lane.address)
            .with_to(lane.address)
            .with_value(U256::ZERO)
            .with_nonce(f.nonce)
            .with_gas_limit(TRANSFER_GAS)
            .with_max_fee_per_gas(fees.max_fee_per_gas)
            .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas);
        f.last_sent_block = block_number;
        match lane.provider.send_transaction(request).await {
            Ok(pending) => {
                tracing::info!(tx = %pending.tx_hash(), nonce = f.nonce, ?fees, "bundle cancellation sent");
                f.cancel = Some(*pending.tx_hash());
                f.fees = fees;
            }
            Err(e) => tracing::warn!(error = %e, nonce = f.nonce, "bundle cancellation refused"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::Bytes;

    const GWEI: u128 = 1_000_000_000;

    fn in_flight(last_sent_block: u64, resubmissions: u32, cancelled: bool) -> InFlight {
        InFlight {
            nonce: 7,
            ops: Vec::new(),
            gas: 100_000,
            calldata: Bytes::new(),
            fees: BundleFees { max_fee_per_gas: 10 * GWEI, max_priority_fee_per_gas: GWEI },
            sent: vec![B256::repeat_byte(1)],
            cancel: cancelled.then(|| B256::repeat_byte(2)),
            last_sent_block,
            first_sent: std::time::Instant::now(),
            resubmissions,
            dropped: Vec::new(),
            done: None,
        }
    }

    #[test]
    fn a_bundle_waits_resubmit_after_blocks_then_reprices_until_out_of_tries() {
        let settings =
            BuilderSettings { resubmit_after_blocks: 3, max_resubmissions: 2, ..Default::default() };
        // Sent at block 10: blocks 10..=12 wait, 13 acts.
        for head in 10..13 {
            assert_eq!(plan(&in_flight(10, 0, false), head, &settings), Plan::Wait, "block {head}");
        }
        assert_eq!(plan(&in_flight(10, 0, false), 13, &settings), Plan::Reprice);
        assert_eq!(plan(&in_flight(10, 1, false), 13, &settings), Plan::Reprice);
        assert_eq!(plan(&in_flight(10, 2, false), 13, &settings), Plan::Cancel(CancelReason::OutOfTries));
        // A stuck cancellation is outbid once it has waited as long.
        assert_eq!(plan(&in_flight(10, 0, true), 12, &settings), Plan::Wait);
        assert_eq!(
            plan(&in_flight(10, 0, true), 13, &settings),
            Plan::Cancel(CancelReason::CancellationStuck)
        );
    }

    #[test]
    fn a_resubmission_bumps_at_least_ten_percent_and_follows_the_market_up_to_the_cap() {
        let sent = BundleFees { max_fee_per_gas: 10 * GWEI, max_priority_fee_per_gas: GWEI };
        let calm = BundleFees { max_fee_per_gas: 5 * GWEI, max_priority_fee_per_gas: GWEI / 2 };
        // The market fell: the replacement bump decides (+10%, rounded up).
        assert_eq!(
            reprice(sent, calm, 100 * GWEI),
            Step::Resubmit(BundleFees {
                max_fee_per_gas: 11 * GWEI,
                max_priority_fee_per_gas: 1_100_000_000
            })
        );
        // The market rose past the bump: today's price decides.
        let busy = BundleFees { max_fee_per_gas: 20 * GWEI, max_priority_fee_per_gas: 3 * GWEI };
        assert_eq!(reprice(sent, busy, 100 * GWEI), Step::Resubmit(busy));
        // Past the cap: cancelled instead.
        assert_eq!(reprice(sent, busy, 19 * GWEI), Step::Cancel(CancelReason::FeeCapReached));
        assert_eq!(reprice(sent, calm, 11 * GWEI - 1), Step::Cancel(CancelReason::FeeCapReached));
    }
}
