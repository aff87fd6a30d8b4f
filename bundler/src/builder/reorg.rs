//! Reorgs: an included bundle is remembered with its block for `reorg_depth` blocks; when the
//! chain's continuity is in doubt, a bundle whose block is no longer canonical and whose
//! transaction is in no block of the new chain gives its operations back to the pool, after a
//! fresh validation against the new chain.

use super::submit::{Builder, BuilderError, node};
use crate::pool::{Mempool, PoolOperation};
use alloy::primitives::B256;
use alloy::providers::Provider;

/// A bundle that landed, and the operations it included.
pub(super) struct IncludedBundle {
    pub block_number: u64,
    pub block_hash: B256,
    pub transaction_hash: B256,
    pub ops: Vec<PoolOperation>,
}

pub(super) struct RecentBundles {
    depth: u64,
    bundles: Vec<IncludedBundle>,
}

impl RecentBundles {
    pub fn new(depth: u64) -> Self {
        Self { depth, bundles: Vec::new() }
    }

    pub fn remember(&mut self, bundle: IncludedBundle) {
        self.bundles.push(bundle);
    }

    /// Forgets bundles deeper than the window below `head`: a reorg that deep is out of scope.
    pub fn forget_before(&mut self, head: u64) {
        let depth = self.depth;
        self.bundles.retain(|b| b.block_number.saturating_add(depth) >= head);
    }
}

impl<P: Mempool> Builder<P> {
    /// Checks every remembered bundle against the canonical chain; puts back the operations of
    /// those that vanished.
    pub(super) async fn restore_vanished(&self, recent: &mut RecentBundles) {
        let mut kept = Vec::new();
        for mut bundle in std::mem::take(&mut recent.bundles) {
            match self.still_included(&mut bundle).await {
                Ok(true) => kept.push(bundle),
                Ok(false) => {
                    tracing::warn!(
                        tx = %bundle.transaction_hash,
                        block = %bundle.block_hash,
                        ops = bundle.ops.len(),
                        "a reorg dropped a bundle; its operations go back to the pool"
                    );
                    for op in bundle.ops {
                        self.restore(op).await;
                    }
                }
                Err(e) => {
                    // Checked again at the next head whose parent link is in doubt.
                    tracing::warn!(error = %e, "reorg check failed");
                    kept.push(bundle);
                }
            }
        }
        recent.bundles.extend(kept);
    }

    /// Whether the bundle is still in the chain, following it to a new block when the reorg
    /// re-included its transaction.
    async fn still_included(&self, bundle: &mut IncludedBundle) -> Result<bool, BuilderError> {
        let provider = &self.lanes[0].provider;
        let canonical = provider.get_block_by_number(bundle.block_number.into()).await.map_err(node)?;
        if canonical.is_some_and(|b| b.header.hash == bundle.block_hash) {
            return Ok(true);
        }
        let receipt = provider.get_transaction_receipt(bundle.transaction_hash).await.map_err(node)?;
        match receipt.and_then(|r| Some((r.block_number?, r.block_hash?))) {
            Some((number, hash)) => {
                bundle.block_number = number;
                bundle.block_hash = hash;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Validates `op` against the new chain and adds it back, or drops it with the reason.
    async fn restore(&self, op: PoolOperation) {
        let hash = op.hash;
        match self.validator.validate(&op.op).await {
            Ok(outcome) => match self.pool.add(PoolOperation::new(op.op, &outcome)) {
                Ok(_) => tracing::info!(%hash, "operation back in the pool after a reorg"),
                Err(e) => {
                    tracing::info!(%hash, error = %e, "the pool refused an operation a reorg gave back")
                }
            },
            Err(e) => tracing::info!(%hash, error = %e, "an operation a reorg gave back no longer validates"),
        }
    }
}
