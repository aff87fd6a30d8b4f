//! Reorgs: an included bundle is remembered with its block for `reorg_depth` blocks; when the
//! chain's continuity is in doubt, a bundle whose block is no longer canonical and whose
//! transaction is in no block of the new chain gives its operations back to the pool, after a
//! fresh validation against the new chain. [`RecentBundles`] says which bundles left, from what
//! the builder read of the chain; the builder puts their operations back.

use super::{Builder, BuilderError, node};
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

/// What the chain says of a remembered bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Inclusion {
    /// Still in its block.
    Same,
    /// A reorg re-included its transaction in another block.
    MovedTo { block_number: u64, block_hash: B256 },
    /// Its transaction is in no block of the canonical chain.
    Gone,
}

impl RecentBundles {
    pub(super) fn new(depth: u64) -> Self {
        Self { depth, bundles: Vec::new() }
    }

    pub(super) fn remember(&mut self, bundle: IncludedBundle) {
        self.bundles.push(bundle);
    }

    /// Forgets bundles deeper than the window below `head`: a reorg that deep is out of scope.
    pub(super) fn forget_before(&mut self, head: u64) {
        let depth = self.depth;
        self.bundles.retain(|b| b.block_number.saturating_add(depth) >= head);
    }

    /// The bundles remembered, for checking against the chain.
    pub(super) fn bundles(&self) -> &[IncludedBundle] {
        &self.bundles
    }

    /// Applies what the chain says of each bundle, in [`RecentBundles::bundles`]' order (`None`
    /// where the check failed: that bundle is checked again later): keeps those still included,
    /// following one a reorg moved, and returns those that left the chain, whose operations go
    /// back to the pool.
    pub(super) fn apply(&mut self, found: Vec<Option<Inclusion>>) -> Vec<IncludedBundle> {
        let mut gone = Vec::new();
        let mut kept = Vec::new();
        for (mut bundle, inclusion) in std::mem::take(&mut self.bundles).into_iter().zip(found) {
            match inclusion {
                Some(Inclusion::Gone) => gone.push(bundle),
                Some(Inclusion::MovedTo { block_number, block_hash }) => {
                    bundle.block_number = block_number;
                    bundle.block_hash = block_hash;
                    kept.push(bundle);
                }
                Some(Inclusion::Same) | None => kept.push(bundle),
            }
        }
        self.bundles = kept;
        gone
    }
}

impl<P: Mempool> Builder<P> {
    /// Checks every remembered bundle against the canonical chain; puts back the operations of
    /// those that vanished.
    pub(super) async fn restore_vanished(&self, recent: &mut RecentBundles) {
        let mut found = Vec::new();
        for bundle in recent.bundles() {
            match self.inclusion(bundle).await {
                Ok(inclusion) => found.push(Some(inclusion)),
                Err(e) => {
                    // Checked again at the next head whose parent link is in doubt.
                    tracing::warn!(error = %e, "reorg check failed");
                    found.push(None);
                }
            }
        }
        for bundle in recent.apply(found) {
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
    }

    /// Where the bundle's transaction is on the canonical chain now.
    async fn inclusion(&self, bundle: &IncludedBundle) -> Result<Inclusion, BuilderError> {
        let provider = &self.lanes[0].provider;
        let canonical = provider.get_block_by_number(bundle.block_number.into()).await.map_err(node)?;
        if canonical.is_some_and(|b| b.header.hash == bundle.block_hash) {
            return Ok(Inclusion::Same);
        }
        let receipt = provider.get_transaction_receipt(bundle.transaction_hash).await.map_err(node)?;
        Ok(match receipt.and_then(|r| Some((r.block_number?, r.block_hash?))) {
            Some((block_number, block_hash)) => Inclusion::MovedTo { block_number, block_hash },
            None => Inclusion::Gone,
        })
    }

    /// Validates `op` against the new chain and adds it back, or drops it with the reason.
    async fn restore(&self, op: PoolOperation) {
        let hash = op.hash;
        match self.validator.validate(&op.op).await {
            Ok(outcome) => match self.pool.add(PoolOperation::new(op.op, &outcome)).await {
                Ok(_) => tracing::info!(%hash, "operation back in the pool after a reorg"),
                Err(e) => {
                    tracing::info!(%hash, error = %e, "the pool refused an operation a reorg gave back")
                }
            },
            Err(e) => tracing::info!(%hash, error = %e, "an operation a reorg gave back no longer validates"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(block_number: u64, byte: u8) -> IncludedBundle {
        IncludedBundle {
            block_number,
            block_hash: B256::repeat_byte(byte),
            transaction_hash: B256::repeat_byte(byte ^ 0xff),
            ops: Vec::new(),
        }
    }

    #[test]
    fn bundles_that_left_the_chain_are_returned_and_the_rest_kept_or_followed() {
        let mut recent = RecentBundles::new(64);
        for (number, byte) in [(10, 1), (11, 2), (12, 3), (13, 4)] {
            recent.remember(bundle(number, byte));
        }
        let moved = Inclusion::MovedTo { block_number: 14, block_hash: B256::repeat_byte(9) };
        let gone = recent.apply(vec![Some(Inclusion::Same), Some(Inclusion::Gone), Some(moved), None]);
        assert_eq!(gone.iter().map(|b| b.block_number).collect::<Vec<_>>(), vec![11]);
        let kept: Vec<(u64, B256)> =
            recent.bundles().iter().map(|b| (b.block_number, b.block_hash)).collect();
        // The moved one follows its new block; the unchecked one stays for the next check.
        assert_eq!(
            kept,
            vec![(10, B256::repeat_byte(1)), (14, B256::repeat_byte(9)), (13, B256::repeat_byte(4))]
        );
        // The window forgets bundles deeper than reorg_depth below the head.
        recent.forget_before(10 + 64 + 1);
        assert_eq!(recent.bundles().len(), 2);
    }
}
