//! The bundle builder: takes the best pending operations, validates them again, simulates
//! `handleOps` with `eth_call` and drops the ones the EntryPoint refuses, signs and submits the
//! transaction on a free key, follows it block by block (resubmitting with higher fees, or
//! cancelling), and reports each operation's fate back to the pool, reorgs included.
//!
//! [`Builder`] and its per-block loop live here: each new head expires operations in the pool,
//! checks included bundles for reorgs (`reorg`: which bundles left the chain is
//! `RecentBundles`' answer, the builder only puts their operations back), moves every lane's
//! bundle in flight a step (`tracker`: what to do is a pure function of what was observed),
//! and counts every inclusion for reputation. `submit` builds and sends one bundle on a free
//! lane (`lanes`) from the `selection`, after the second validation (`revalidation`).

mod drops;
mod fees;
mod lanes;
mod reorg;
mod revalidation;
mod selection;
mod submit;
mod tracker;

pub use drops::{DROP_RECORD_CAPACITY, DropRecord};
pub use fees::{BundleFees, REPLACEMENT_BUMP_PERCENT, bump, suggested_tiers};
pub use selection::{hold_back_storage_conflicts, select_bundle};

use crate::leases::SignerLeases;
use crate::pool::{Mempool, PoolBlock};
use crate::validation::Validator;
use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, B256};
use alloy::providers::Provider;
use alloy::rpc::types::{Block, Filter};
use alloy::sol_types::SolEvent;
use lanes::{Lane, lanes};
use reorg::RecentBundles;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::oneshot;
use tora_core::contracts::EntryPoint;

/// How a bundle ended, for whoever waits on it.
type Settled = Result<BundleOutcome, BuilderError>;

/// The most blocks one head's inclusion scan reads back (nodes cap eth_getLogs ranges).
const MAX_INCLUSION_SCAN_BLOCKS: u64 = 1_000;

/// How often a caller of send_bundle_now looks for a new head while it waits.
const HEAD_POLL: Duration = Duration::from_millis(20);

pub use tora_core::rpc_api::debug::BundlingMode;

/// Tuning of the bundle builder: bundle size, fees, resubmission and reorg watch.
#[derive(Clone, Debug)]
pub struct BuilderSettings {
    /// Gas target of one bundle (the chain spec's max_bundle_gas).
    pub max_bundle_gas: u64,
    /// The most user operations in one bundle.
    pub max_bundle_ops: usize,
    /// Gas the transaction needs on top of the operations' own limits (calldata, the loop).
    pub bundle_overhead_gas: u64,
    /// How long debug_bundler_sendBundleNow waits for its bundle to settle. The bundle stays
    /// tracked after that; only the caller stops waiting.
    pub receipt_timeout: Duration,
    /// The first price's max fee is the base fee plus this many percent, plus the priority fee.
    pub base_fee_margin_percent: u128,
    /// A bundle not mined after this many new blocks is resubmitted with higher fees.
    pub resubmit_after_blocks: u64,
    /// Operations of a bundle validated again at once (each an EVM run on a core).
    pub revalidation_concurrency: usize,
    /// Resubmissions of one bundle before it is cancelled.
    pub max_resubmissions: u32,
    /// The highest maxFeePerGas a resubmission may pay, in wei.
    pub max_fee_per_gas_cap: u128,
    /// Blocks during which an included bundle is watched for a reorg that drops it.
    pub reorg_depth: u64,
}

impl Default for BuilderSettings {
    fn default() -> Self {
        Self {
            // The chain spec's max_bundle_gas caps it (the server takes the smaller).
            max_bundle_gas: 30_000_000,
            max_bundle_ops: 256,
            bundle_overhead_gas: 100_000,
            receipt_timeout: Duration::from_secs(60),
            // Twice the base fee: room for six full blocks of 12.5% rises.
            base_fee_margin_percent: 100,
            resubmit_after_blocks: 3,
            revalidation_concurrency: 1,
            max_resubmissions: 3,
            // 1,000 gwei.
            max_fee_per_gas_cap: 1_000_000_000_000,
            reorg_depth: 64,
        }
    }
}

/// Why the builder could not start, or a bundle did not land.
#[derive(Debug, thiserror::Error)]
pub enum BuilderError {
    /// The node's RPC URL does not parse.
    #[error("invalid RPC URL {0}")]
    Url(String),
    /// A bundler signing key is missing, invalid or given twice.
    #[error("{0}")]
    Keys(String),
    /// A node call failed, or the node answered something unusable.
    #[error("node: {0}")]
    Node(String),
    /// sendBundleNow stopped waiting after `receipt_timeout`; the bundle is still followed.
    #[error("the bundle did not settle in time; it stays tracked")]
    NotMined,
    /// The bundle transaction with this hash was mined and reverted; its operations stay pending.
    #[error("bundle transaction {0} reverted")]
    Reverted(B256),
    /// The bundle was replaced by a cancellation (or another transaction) at its nonce.
    #[error("the bundle at nonce {nonce} of {signer} was cancelled; its operations are back in the pool")]
    Cancelled {
        /// The lane's bundler account.
        signer: Address,
        /// The account nonce the bundle was sent at.
        nonce: u64,
    },
    /// No lane is free: every key already has a bundle in flight.
    #[error("every bundler key has a bundle in flight")]
    AllKeysBusy,
}

fn node<E: std::fmt::Display>(e: E) -> BuilderError {
    BuilderError::Node(e.to_string())
}

/// A bundle that landed: its transaction and the fate of each operation in it.
#[derive(Clone, Debug)]
pub struct BundleOutcome {
    /// The hash of the bundle transaction that was mined.
    pub transaction_hash: B256,
    /// userOpHashes of the operations whose UserOperationEvent the bundle emitted.
    pub included: Vec<B256>,
    /// Operations dropped while building it (re-validation or simulation), with the reason.
    pub dropped: Vec<(B256, String)>,
}

/// What the chain looked like at the last head the builder processed.
struct Head {
    pub number: u64,
    pub hash: B256,
    pub recent: RecentBundles,
}

/// The bundle builder of one EntryPoint: picks operations from the pool `P`, sends bundles on
/// its signer lanes and follows them until they land, are cancelled or are reorged out.
pub struct Builder<P> {
    lanes: Vec<Lane>,
    /// Which lanes' keys this process may sign with now.
    leases: Arc<SignerLeases>,
    entry_point: Address,
    pool: Arc<P>,
    validator: Arc<Validator>,
    settings: BuilderSettings,
    auto: AtomicBool,
    /// One bundle built at a time, so that two lanes never pick the same operations.
    building: tokio::sync::Mutex<()>,
    /// Operations in a bundle that is in flight on some lane: no other bundle takes them.
    in_flight_ops: Mutex<HashSet<B256>>,
    /// One head processed at a time.
    head: tokio::sync::Mutex<Head>,
    /// When the claims on operations in flight were last renewed.
    claims_renewed: Mutex<std::time::Instant>,
    /// Why recent operations were dropped, for the status method.
    drops: DropRecord,
}

impl<P: Mempool> Builder<P> {
    /// A builder with one lane per key in `keys`, each signing through its own client to `rpc_url`.
    pub fn new(
        rpc_url: &str,
        keys: &[B256],
        entry_point: Address,
        pool: Arc<P>,
        validator: Arc<Validator>,
        settings: BuilderSettings,
        mode: BundlingMode,
    ) -> Result<Self, BuilderError> {
        let recent = RecentBundles::new(settings.reorg_depth);
        let lanes = lanes(rpc_url, keys)?;
        Ok(Self {
            leases: SignerLeases::local(&lanes.iter().map(|l| l.address).collect::<Vec<_>>()),
            lanes,
            entry_point,
            pool,
            validator,
            settings,
            auto: AtomicBool::new(mode == BundlingMode::Auto),
            building: tokio::sync::Mutex::new(()),
            in_flight_ops: Mutex::new(HashSet::new()),
            head: tokio::sync::Mutex::new(Head { number: 0, hash: B256::ZERO, recent }),
            claims_renewed: Mutex::new(std::time::Instant::now()),
            drops: DropRecord::default(),
        })
    }

    /// Signs only with the keys `leases` holds (replicas sharing a Redis).
    pub fn with_leases(mut self, leases: Arc<SignerLeases>) -> Self {
        self.leases = leases;
        self
    }

    /// Why the builder dropped the operation `hash`, while it remembers (see [`DropRecord`]).
    pub fn drop_reason(&self, hash: &B256) -> Option<String> {
        self.drops.reason(hash)
    }

    /// The pool's step for a new block, remembering the operations it expired.
    async fn on_block(&self, block: PoolBlock) {
        for (hash, expiry) in self.pool.on_block(block).await {
            self.drops.record(hash, expiry.reason());
        }
    }

    /// The first bundler account: it signs bundles and receives the operations' fees.
    pub fn address(&self) -> Address {
        self.lanes[0].address
    }

    /// Every bundler account, one per key, in the order the keys were given.
    pub fn addresses(&self) -> Vec<Address> {
        self.lanes.iter().map(|l| l.address).collect()
    }

    /// Whether the builder bundles on its own (auto) or only on request (manual).
    pub fn mode(&self) -> BundlingMode {
        if self.auto.load(Ordering::Relaxed) { BundlingMode::Auto } else { BundlingMode::Manual }
    }

    /// Switches between auto and manual bundling (debug_bundler_setBundlingMode).
    pub fn set_mode(&self, mode: BundlingMode) {
        self.auto.store(mode == BundlingMode::Auto, Ordering::Relaxed);
    }

    /// Builds one bundle from the pool on a free key and waits until it settles (landed, or
    /// cancelled), driving the resubmissions itself as blocks come; `None` when nothing is
    /// pending.
    pub async fn send_bundle_now(&self) -> Result<Option<BundleOutcome>, BuilderError> {
        let block = self.on_new_head().await?;
        let Some(settled) = self.start_bundle(&block).await? else {
            return Ok(None);
        };
        self.wait(settled).await.map(Some)
    }

    /// One tick of the bundling loop: follow the chain, and in auto mode fill every free key
    /// with a bundle (without waiting for them).
    pub async fn on_tick(&self) -> Result<(), BuilderError> {
        let block = self.on_new_head().await?;
        while self.mode() == BundlingMode::Auto {
            match self.start_bundle(&block).await {
                Ok(Some(_)) => {}
                Ok(None) | Err(BuilderError::AllKeysBusy) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether the operation is in a bundle sent and not yet settled (for a status answer).
    pub fn is_submitted(&self, hash: &B256) -> bool {
        self.in_flight_ops.lock().unwrap_or_else(PoisonError::into_inner).contains(hash)
    }

    /// Marks operations as in a bundle of ours; they are claimed in the pool already.
    fn set_in_flight(&self, hashes: impl IntoIterator<Item = B256>) {
        self.in_flight_ops.lock().unwrap_or_else(PoisonError::into_inner).extend(hashes);
    }

    /// Their bundle settled: other builders may take them again.
    async fn settle_in_flight(&self, hashes: impl IntoIterator<Item = B256>) {
        let hashes: Vec<B256> = {
            let mut set = self.in_flight_ops.lock().unwrap_or_else(PoisonError::into_inner);
            hashes.into_iter().filter(|hash| set.remove(hash)).collect()
        };
        self.pool.release(&hashes).await;
    }

    /// Renews the claims on the operations of our bundles every quarter of the claim TTL until
    /// the task is aborted. On its own timer, not only at each head: a tick stalled on a slow
    /// node (its requests may take the whole NODE_TIMEOUT, as long as a claim lasts) or a long
    /// bundle interval would otherwise let the claims lapse while the bundle is in flight,
    /// and another replica bundle the same operations.
    pub async fn keep_claims(self: Arc<Self>) {
        loop {
            tokio::time::sleep(self.pool.claim_ttl() / 4).await;
            self.renew_claims().await;
        }
    }

    /// Claims again, every quarter of the claim TTL, every operation in a bundle of ours, so
    /// the claims outlive the bundle however slow the blocks; a builder that dies stops
    /// renewing and its operations go back to the pool's other builders after the TTL.
    async fn renew_claims(&self) {
        {
            let mut renewed = self.claims_renewed.lock().unwrap_or_else(PoisonError::into_inner);
            if renewed.elapsed() < self.pool.claim_ttl() / 4 {
                return;
            }
            *renewed = std::time::Instant::now();
        }
        let hashes: Vec<B256> =
            self.in_flight_ops.lock().unwrap_or_else(PoisonError::into_inner).iter().copied().collect();
        let renewed = self.pool.claim(&hashes).await;
        if renewed.len() < hashes.len() {
            tracing::warn!(
                lost = hashes.len() - renewed.len(),
                "claims on operations in flight lapsed and another builder took them"
            );
        }
    }

    async fn latest_block(&self) -> Result<Block, BuilderError> {
        self.lanes[0]
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(node)?
            .ok_or_else(|| BuilderError::Node("the node has no latest block".to_owned()))
    }

    /// What wallets are told to offer at `base_fee`: see [`fees::suggested_tiers`].
    pub async fn suggested_fees(&self, base_fee: u128) -> Result<[BundleFees; 3], BuilderError> {
        let priority = self.lanes[0].provider.get_max_priority_fee_per_gas().await.map_err(node)?;
        Ok(fees::suggested_tiers(base_fee, priority, self.settings.base_fee_margin_percent))
    }

    /// Today's first price of a bundle: the slow tier wallets are told, so the two never drift.
    async fn price(&self, base_fee: u128) -> Result<BundleFees, BuilderError> {
        let [slow, ..] = self.suggested_fees(base_fee).await?;
        Ok(slow)
    }

    /// Processes the newest block once: expiries in the pool, reorgs of included bundles, and
    /// every lane's bundle in flight. Returns the block, for the bundles built on it.
    async fn on_new_head(&self) -> Result<Block, BuilderError> {
        let mut head = self.head.lock().await;
        self.renew_claims().await;
        let block = self.latest_block().await?;
        if block.header.hash == head.hash {
            return Ok(block);
        }
        let base_fee = u128::from(block.header.base_fee_per_gas.unwrap_or_default());
        // Other replicas' writes first: the expiries and the claims below act on the whole pool.
        self.pool.sync().await;
        self.on_block(PoolBlock { number: block.header.number, timestamp: block.header.timestamp, base_fee })
            .await;
        crate::metrics::pool_size(self.pool.len());
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
            if !self.leases.holds(lane.address) {
                // Another replica holds the key now and follows its nonce: this one lets go of
                // the bundle, and its operations' claims, so it never signs at that nonce again.
                tracing::warn!(signer = %lane.address, nonce = in_flight.nonce, "lease lost with a bundle in flight; leaving it to the key's new holder");
                let ops: Vec<B256> = in_flight.ops.iter().map(|p| p.hash).collect();
                slot.take();
                self.settle_in_flight(ops).await;
                continue;
            }
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
                        self.pool.mark_included(event.inner.data.userOpHash).await;
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, from, to, "could not read the blocks' UserOperationEvents"),
        }
    }

    /// Waits for the bundle behind `settled`, processing heads meanwhile.
    async fn wait(&self, mut settled: oneshot::Receiver<Settled>) -> Settled {
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
}
