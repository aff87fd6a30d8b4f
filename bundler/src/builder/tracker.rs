//! A sent bundle until it settles. On each new head: if the lane's nonce moved, find which of
//! its transactions took it (a bundle: the operations are included; none: the cancellation or
//! someone else did, and the operations go back to the pool); if it has waited
//! `resubmit_after_blocks`, resend it with bumped fees, or cancel it when it is out of tries,
//! its operations no longer pass, or the bump would pass the fee cap.

use super::fees::BundleFees;
use super::lanes::Lane;
use super::reorg::{IncludedBundle, RecentBundles};
use super::submit::{Builder, BuilderError, BundleOutcome, bundle_request, node};
use crate::pool::{Mempool, PoolOperation};
use alloy::eips::BlockId;
use alloy::network::TransactionBuilder;
use alloy::primitives::{B256, Bytes, U256};
use alloy::providers::Provider;
use alloy::rpc::types::{Block, Filter, TransactionReceipt, TransactionRequest};
use alloy::sol_types::SolEvent;
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::oneshot;
use tora_core::contracts::EntryPoint;

/// How a bundle ended, for whoever waits on it.
pub(super) type Settled = Result<BundleOutcome, BuilderError>;

/// A plain transfer's gas.
const TRANSFER_GAS: u64 = 21_000;

/// The most blocks one head's inclusion scan reads back (nodes cap eth_getLogs ranges).
const MAX_INCLUSION_SCAN_BLOCKS: u64 = 1_000;

/// How often a caller of send_bundle_now looks for a new head while it waits.
const HEAD_POLL: Duration = Duration::from_millis(20);

/// A bundle sent at `nonce` and not yet settled.
pub(super) struct InFlight {
    pub nonce: u64,
    pub ops: Vec<PoolOperation>,
    pub gas: u64,
    pub calldata: Bytes,
    /// The fees of the latest transaction sent at this nonce (bundle or cancellation).
    pub fees: BundleFees,
    /// Every bundle transaction sent at this nonce, oldest first: any of them may land.
    pub sent: Vec<B256>,
    /// The cancellation, once sent.
    pub cancel: Option<B256>,
    pub last_sent_block: u64,
    pub resubmissions: u32,
    /// Operations dropped while building the bundle, for its outcome.
    pub dropped: Vec<(B256, String)>,
    pub done: Option<oneshot::Sender<Settled>>,
}

impl<P: Mempool> Builder<P> {
    /// Processes the newest block once: expiries in the pool, reorgs of included bundles, and
    /// every lane's bundle in flight. Returns the block, for the bundles built on it.
    pub(super) async fn on_new_head(&self) -> Result<Block, BuilderError> {
        let mut head = self.head.lock().await;
        let block = self.latest_block().await?;
        if block.header.hash == head.hash {
            return Ok(block);
        }
        let base_fee = u128::from(block.header.base_fee_per_gas.unwrap_or_default());
        self.on_block(block.header.timestamp, base_fee);
        // Blocks skipped between two polls also break the parent link; the check that follows
        // only costs a lookup per recent bundle.
        if block.header.parent_hash != head.hash {
            self.restore_vanished(&mut head.recent).await;
        }
        head.recent.forget_before(block.header.number);
        for lane in &self.lanes {
            let mut slot = lane.in_flight.lock().await;
            let Some(in_flight) = slot.as_mut() else {
                continue;
            };
            match self.advance(lane, in_flight, &block, &mut head.recent).await {
                Ok(None) => {}
                Ok(Some(settled)) => {
                    if let Some(done) = slot.take().and_then(|f| f.done) {
                        // Nobody may be waiting (auto mode, or the caller gave up).
                        let _ = done.send(settled);
                    }
                }
                Err(e) => {
                    tracing::warn!(signer = %lane.address, error = %e, "bundle tracking failed this block")
                }
            }
        }
        if head.number != 0 {
            self.count_inclusions(head.number + 1, block.header.number).await;
        }
        head.number = block.header.number;
        head.hash = block.header.hash;
        Ok(block)
    }

    /// ERC-7562 opsIncluded counts every UserOperationEvent of an operation this bundler saw,
    /// whoever's bundle carried it: a paymaster popular with other bundlers must not drift to
    /// banned here. The operation also leaves the pool, before a bundle of ours can fail on it.
    async fn count_inclusions(&self, from: u64, to: u64) {
        if from > to {
            return;
        }
        let filter = Filter::new()
            .address(self.entry_point)
            .event_signature(EntryPoint::UserOperationEvent::SIGNATURE_HASH)
            .from_block(from.max(to.saturating_sub(MAX_INCLUSION_SCAN_BLOCKS)))
            .to_block(to);
        match self.lanes[0].provider.get_logs(&filter).await {
            Ok(logs) => {
                for log in logs {
                    if let Ok(event) = log.log_decode::<EntryPoint::UserOperationEvent>() {
                        self.pool.mark_included(event.inner.data.userOpHash);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, from, to, "could not read the blocks' UserOperationEvents"),
        }
    }

    /// Waits for the bundle behind `settled`, processing heads meanwhile.
    pub(super) async fn wait(&self, mut settled: oneshot::Receiver<Settled>) -> Settled {
        let deadline = tokio::time::Instant::now() + self.settings.receipt_timeout;
        loop {
            tokio::select! {
                outcome = &mut settled => {
                    return outcome.unwrap_or_else(|_| Err(BuilderError::Node("bundle tracking stopped".into())));
                }
                () = tokio::time::sleep(HEAD_POLL) => {
                    if tokio::time::Instant::now() > deadline {
                        return Err(BuilderError::NotMined);
                    }
                    if let Err(e) = self.on_new_head().await {
                        tracing::warn!(error = %e, "reading the new head failed");
                    }
                }
            }
        }
    }

    /// One head's step for one lane's bundle; `Some` once it settled.
    async fn advance(
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
        if block.header.number < f.last_sent_block.saturating_add(self.settings.resubmit_after_blocks) {
            return Ok(None);
        }
        if f.cancel.is_some() {
            // The cancellation is stuck too: outbid it.
            self.send_cancel(lane, f, block.header.number).await;
            return Ok(None);
        }
        let base_fee = u128::from(block.header.base_fee_per_gas.unwrap_or_default());
        let next = if f.resubmissions >= self.settings.max_resubmissions {
            None
        } else if let Some((index, reason)) = self.simulate(lane.address, &f.ops).await? {
            tracing::info!(op = index, %reason, "a stuck bundle no longer passes; cancelling it");
            None
        } else {
            f.fees.resubmission(self.price(base_fee).await?, self.settings.max_fee_per_gas_cap)
        };
        match next {
            Some(fees) => {
                let request =
                    bundle_request(lane.address, self.entry_point, f.nonce, f.gas, f.calldata.clone(), fees);
                f.resubmissions += 1;
                f.last_sent_block = block.header.number;
                match lane.provider.send_transaction(request).await {
                    Ok(pending) => {
                        tracing::info!(tx = %pending.tx_hash(), nonce = f.nonce, ?fees, "bundle resubmitted");
                        f.sent.push(*pending.tx_hash());
                        f.fees = fees;
                    }
                    Err(e) => tracing::warn!(error = %e, nonce = f.nonce, "bundle resubmission refused"),
                }
            }
            None => self.send_cancel(lane, f, block.header.number).await,
        }
        Ok(None)
    }

    /// The lane's nonce moved past the bundle: settle it by which transaction took the nonce.
    async fn nonce_taken(
        &self,
        lane: &Lane,
        f: &InFlight,
        recent: &mut RecentBundles,
    ) -> Result<Settled, BuilderError> {
        for &tx in f.sent.iter().rev() {
            let Some(receipt) = lane.provider.get_transaction_receipt(tx).await.map_err(node)? else {
                continue;
            };
            self.set_in_flight(f.ops.iter().map(|p| p.hash), false);
            if !receipt.status() {
                // The operations stay in the pool; the next bundle re-validates them.
                return Ok(Err(BuilderError::Reverted(tx)));
            }
            return Ok(Ok(self.landed(f, &receipt, recent)));
        }
        // The cancellation (or another sender of this key) took the nonce: the operations are
        // free again, and the next bundle re-validates them before it takes them.
        self.set_in_flight(f.ops.iter().map(|p| p.hash), false);
        tracing::info!(signer = %lane.address, nonce = f.nonce, "bundle cancelled; its operations are pending again");
        Ok(Err(BuilderError::Cancelled { signer: lane.address, nonce: f.nonce }))
    }

    /// Turns the bundle's UserOperationEvent logs into the pool's inclusions, and remembers the
    /// bundle's block for the reorg check.
    fn landed(
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
                self.pool.mark_included(op.hash);
                included.push(op.clone());
            } else {
                self.pool.remove(op.hash);
            }
        }
        tracing::info!(tx = %receipt.transaction_hash, ops = included.len(), "bundle included");
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
