//! The latest voucher of each payer: what the gateway may redeem, and the floor the next
//! voucher must clear. Behind a trait so the in-memory and the Redis store are interchangeable.

use std::collections::HashMap;
use std::sync::Mutex;

use alloy::primitives::{Address, U256};
use tora_core::money::ToraUnits;

use super::voucher::SignedVoucher;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("voucher store: {0}")]
pub struct StoreError(pub String);

/// What [`VoucherStore::accept`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acceptance {
    /// The voucher is now the payer's latest; `previous` was the amount before it.
    Accepted { previous: U256 },
    /// The voucher does not exceed the latest one by the price; `latest` is that amount.
    Stale { latest: U256 },
}

/// Latest vouchers per payer, for one provider.
pub trait VoucherStore: Send + Sync + 'static {
    /// The latest voucher accepted from `payer`, if any.
    fn latest(
        &self,
        payer: Address,
    ) -> impl Future<Output = Result<Option<SignedVoucher>, StoreError>> + Send;

    /// Makes `next` the payer's latest voucher if its amount is at least the latest one's plus
    /// `price`, atomically: of two requests carrying the same voucher, one is accepted.
    fn accept(
        &self,
        next: &SignedVoucher,
        price: ToraUnits,
    ) -> impl Future<Output = Result<Acceptance, StoreError>> + Send;

    /// Every payer's latest voucher: what a redemption pays out.
    fn all_latest(&self) -> impl Future<Output = Result<Vec<SignedVoucher>, StoreError>> + Send;
}

/// Vouchers in process memory: for the embedded default and tests. A restart loses them, so
/// the provider can redeem only what it redeemed before; use Redis to keep them.
#[derive(Default)]
pub struct MemoryVoucherStore {
    latest: Mutex<HashMap<Address, SignedVoucher>>,
}

impl MemoryVoucherStore {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<Address, SignedVoucher>>, StoreError> {
        self.latest.lock().map_err(|_| StoreError("a thread panicked holding the store".into()))
    }
}

impl VoucherStore for MemoryVoucherStore {
    async fn latest(&self, payer: Address) -> Result<Option<SignedVoucher>, StoreError> {
        Ok(self.lock()?.get(&payer).cloned())
    }

    async fn accept(&self, next: &SignedVoucher, price: ToraUnits) -> Result<Acceptance, StoreError> {
        let mut latest = self.lock()?;
        let previous = latest.get(&next.payer).map_or(U256::ZERO, |v| v.cumulative_amount);
        match previous.checked_add(price.0) {
            Some(floor) if next.cumulative_amount >= floor => {
                latest.insert(next.payer, next.clone());
                Ok(Acceptance::Accepted { previous })
            }
            _ => Ok(Acceptance::Stale { latest: previous }),
        }
    }

    async fn all_latest(&self) -> Result<Vec<SignedVoucher>, StoreError> {
        Ok(self.lock()?.values().cloned().collect())
    }
}
