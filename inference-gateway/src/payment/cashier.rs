//! The rule for serving a call: the voucher must raise the payer's cumulative amount by at
//! least the call's price over both the latest accepted voucher and what is already redeemed,
//! the deposit must cover it, and the payer must have signed it. Checked before compute;
//! recorded (atomically, in the store) after compute and before the answer is sent, so no
//! call is served unpaid and no voucher pays for two calls.

use alloy::primitives::{Address, U256};
use tora_core::money::ToraUnits;

use super::escrow::{ChainError, Escrow};
use super::price::PricePerToken;
use super::store::{Acceptance, StoreError, VoucherStore};
use super::voucher::SignedVoucher;

/// Why a call is not paid for.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("this call costs {due} ({} base units): send a voucher in the X-Tora-Voucher header", due.0)]
    Missing { due: ToraUnits },
    #[error("{0}")]
    Malformed(String),
    #[error("the voucher's cumulative amount is {got}; this call costs {due} and needs at least {expected}")]
    Underpaid { due: ToraUnits, expected: U256, got: U256 },
    #[error("the escrow deposit covers cumulative amounts up to {covered}, less than the voucher's")]
    InsufficientDeposit { due: ToraUnits, expected: U256, covered: U256 },
    #[error("the voucher is not signed by its payer {payer} (ECDSA or ERC-1271)")]
    InvalidSignature { due: ToraUnits, expected: U256, payer: Address },
    #[error("the amounts do not fit 256 bits")]
    Overflow,
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PaymentError {
    /// This call's price and the cumulative amount a voucher must carry, where known: what a
    /// 402 tells the client to sign.
    pub fn amounts(&self) -> Option<(ToraUnits, Option<U256>)> {
        match self {
            Self::Missing { due } => Some((*due, None)),
            Self::Underpaid { due, expected, .. }
            | Self::InsufficientDeposit { due, expected, .. }
            | Self::InvalidSignature { due, expected, .. } => Some((*due, Some(*expected))),
            _ => None,
        }
    }
}

/// A voucher that passed every check for a call of `price`, not yet recorded.
#[derive(Debug)]
pub struct Authorized {
    voucher: SignedVoucher,
    price: ToraUnits,
}

/// A recorded payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub price: ToraUnits,
    pub cumulative_amount: U256,
}

pub struct Cashier<S> {
    store: S,
    escrow: Escrow,
    per_token: PricePerToken,
}

impl<S: VoucherStore> Cashier<S> {
    pub fn new(store: S, escrow: Escrow, per_token: PricePerToken) -> Self {
        Self { store, escrow, per_token }
    }

    pub fn per_token(&self) -> PricePerToken {
        self.per_token
    }

    pub fn escrow(&self) -> &Escrow {
        &self.escrow
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn price(&self, tokens: u64) -> Result<ToraUnits, PaymentError> {
        self.per_token.price(tokens).ok_or(PaymentError::Overflow)
    }

    /// Checks `voucher` for a call of `price` (cheapest checks first, the signature last).
    pub async fn authorize(
        &self,
        voucher: Option<SignedVoucher>,
        price: ToraUnits,
    ) -> Result<Authorized, PaymentError> {
        let voucher = voucher.ok_or(PaymentError::Missing { due: price })?;
        let (latest, account) =
            tokio::join!(self.store.latest(voucher.payer), self.escrow.account(voucher.payer));
        let (latest, account) = (latest?, account?);
        // Also over what is redeemed: a store that lost its vouchers must not take an old
        // amount that the escrow would pay nothing for.
        let floor = latest.map_or(U256::ZERO, |v| v.cumulative_amount).max(account.redeemed);
        let expected = floor.checked_add(price.0).ok_or(PaymentError::Overflow)?;
        let got = voucher.cumulative_amount;
        if got < expected {
            return Err(PaymentError::Underpaid { due: price, expected, got });
        }
        if got > account.covers_up_to() {
            return Err(PaymentError::InsufficientDeposit {
                due: price,
                expected,
                covered: account.covers_up_to(),
            });
        }
        if !self.escrow.signature_is_valid(&voucher).await? {
            return Err(PaymentError::InvalidSignature { due: price, expected, payer: voucher.payer });
        }
        Ok(Authorized { voucher, price })
    }

    /// Records the payment once the work is done; refused when another call took the voucher
    /// (or a higher one) meanwhile.
    pub async fn settle(&self, paid: Authorized) -> Result<Charge, PaymentError> {
        let Authorized { voucher, price } = paid;
        match self.store.accept(&voucher, price).await? {
            Acceptance::Accepted { .. } => Ok(Charge { price, cumulative_amount: voucher.cumulative_amount }),
            Acceptance::Stale { latest } => Err(PaymentError::Underpaid {
                due: price,
                expected: latest.saturating_add(price.0),
                got: voucher.cumulative_amount,
            }),
        }
    }
}
