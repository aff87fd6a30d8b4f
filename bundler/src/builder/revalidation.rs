//! The second validation, at bundle time: state moved since an operation was accepted, so each
//! selected operation is validated again, and dropped when it fails or when the code of a
//! contract its validation touched changed in between (ERC-7562 COD-010). A paymaster is not
//! held to an operation that failed through its account or factory (EREP-015).

use super::Builder;
use crate::evm::PinnedBlock;
use crate::pool::{Mempool, PoolOperation};
use crate::validation::ValidationError;
use alloy::primitives::{Address, B256};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tora_core::UserOperation;

impl<P: Mempool> Builder<P> {
    /// The reputation side of an operation failing its second validation, and the reason it
    /// is dropped with: a paymaster gives back the opsSeen it was charged when the account or
    /// factory was at fault (EREP-015).
    pub(super) async fn failed_second_validation(&self, p: &PoolOperation, e: &ValidationError) -> String {
        if e.is_account_or_factory_fault()
            && let Some(paymaster) = p.paymaster
        {
            self.pool.unsee(paymaster.address).await;
        }
        format!("second validation failed: {e}")
    }

    /// Keeps in `chosen` the operations that pass again, with the contracts whose storage their
    /// second validation used (for STO-041); removes the others from the pool and returns them
    /// with the reason.
    pub(super) async fn revalidate(
        &self,
        chosen: &mut Vec<PoolOperation>,
        block: PinnedBlock,
    ) -> (Vec<(B256, String)>, HashMap<B256, BTreeSet<Address>>) {
        // What the validations will read, in a few batched round trips rather than each
        // operation's own; a failure here only means they fetch it themselves.
        let ops: Vec<&UserOperation> = chosen.iter().map(|p| &p.op).collect();
        if let Err(e) = self.validator.prefetch(&ops, block).await {
            tracing::warn!(error = %e, "could not prefetch the state of a bundle's operations");
        }
        // Bounded so that a bundle's worth of EVM runs does not take every core from the
        // validation of operations arriving meanwhile.
        let permits = Arc::new(Semaphore::new(self.settings.revalidation_concurrency.max(1)));
        let mut checks = JoinSet::new();
        for (index, p) in chosen.iter().enumerate() {
            let (validator, permits) = (self.validator.clone(), permits.clone());
            let op = p.op.clone();
            checks.spawn(async move {
                let _turn = permits.acquire_owned().await;
                (index, validator.validate_at(&op, block).await)
            });
        }
        let mut verdicts: Vec<_> = chosen.iter().map(|_| None).collect();
        while let Some(joined) = checks.join_next().await {
            if let Ok((index, verdict)) = joined {
                verdicts[index] = Some(verdict);
            }
        }
        let mut dropped = Vec::new();
        let mut kept = Vec::new();
        let mut touched = HashMap::new();
        for (p, verdict) in chosen.drain(..).zip(verdicts) {
            let reason = match verdict {
                // The check itself failed (a panic in the task): skip the operation this time.
                None => continue,
                Some(Err(e)) => Some(self.failed_second_validation(&p, &e).await),
                Some(Ok(outcome)) => {
                    touched.insert(p.hash, outcome.storage.keys().copied().collect());
                    let changed = p.changed_code(&outcome);
                    (!changed.is_empty()).then(|| {
                        let changed: Vec<String> = changed.iter().map(|a| a.to_string()).collect();
                        format!(
                            "COD-010: code of {} changed since the operation was accepted",
                            changed.join(", ")
                        )
                    })
                }
            };
            match reason {
                Some(reason) => {
                    tracing::info!(hash = %p.hash, %reason, "dropped an operation at bundle time");
                    self.pool.remove(p.hash).await;
                    dropped.push((p.hash, reason));
                }
                None => kept.push(p),
            }
        }
        *chosen = kept;
        (dropped, touched)
    }
}
