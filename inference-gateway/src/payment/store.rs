//! Each payer's [`Ledger`]: the latest voucher, what was consumed, what is held. Behind a trait
//! so the in-memory and the Redis store are interchangeable; both apply [`Ledger::apply`]
//! atomically per payer, so two calls of one payer never spend the same headroom.

use std::collections::HashMap;
use std::sync::Mutex;

use alloy::primitives::Address;

use super::ledger::{Change, Ledger, Outcome, Refusal};

/// The voucher store failed (a Redis error, a poisoned lock, a ledger that does not parse).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("voucher store: {0}")]
pub struct StoreError(pub String);

/// Ledgers per payer, for one provider.
pub trait VoucherStore: Send + Sync + 'static {
    /// `payer`'s ledger; an empty one for a payer never seen.
    fn ledger(&self, payer: Address) -> impl Future<Output = Result<Ledger, StoreError>> + Send;

    /// Applies `change` to `payer`'s ledger atomically: no other change to it lands in between.
    fn change(
        &self,
        payer: Address,
        change: &Change,
    ) -> impl Future<Output = Result<Result<Outcome, Refusal>, StoreError>> + Send;

    /// Every payer's ledger: what a redemption claims.
    fn ledgers(&self) -> impl Future<Output = Result<Vec<Ledger>, StoreError>> + Send;
}

/// Ledgers in process memory: for the embedded default and tests. A restart loses them, so
/// the provider can claim only what it redeemed before, and the escrow's `redeemed` becomes
/// the only floor: a voucher redeemed in part (public on chain) could then let in calls for
/// the room left under it. Use Redis to keep them.
#[derive(Default)]
pub struct MemoryVoucherStore {
    ledgers: Mutex<HashMap<Address, Ledger>>,
}

impl MemoryVoucherStore {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<Address, Ledger>>, StoreError> {
        self.ledgers.lock().map_err(|_| StoreError("a thread panicked holding the store".into()))
    }
}

impl VoucherStore for MemoryVoucherStore {
    async fn ledger(&self, payer: Address) -> Result<Ledger, StoreError> {
        Ok(self.lock()?.get(&payer).cloned().unwrap_or_default())
    }

    async fn change(&self, payer: Address, change: &Change) -> Result<Result<Outcome, Refusal>, StoreError> {
        let mut ledgers = self.lock()?;
        let ledger = ledgers.get(&payer).cloned().unwrap_or_default();
        Ok(ledger.apply(change).map(|(ledger, outcome)| {
            ledgers.insert(payer, ledger);
            outcome
        }))
    }

    async fn ledgers(&self) -> Result<Vec<Ledger>, StoreError> {
        Ok(self.lock()?.values().cloned().collect())
    }
}
