//! The rule for serving a call: a new voucher must make room for the call's worst-case price
//! next to what the payer consumed (at least what the escrow already paid out) and what its
//! calls in flight hold, the deposit must cover the voucher, and the payer must have signed it
//! (see [`super::ledger`]); a payer whose withdrawal is pending, or whose voucher failed on
//! chain, is not served. Checked before compute, then the worst case is held (atomically,
//! in the store) so no call runs unpaid; once the work is done the hold is settled at the
//! exact price, which is what the payer is charged and the provider later claims.

use alloy::primitives::{Address, U256};
use tora_core::money::ToraUnits;

use super::escrow::{ChainError, Escrow};
use super::ledger::{Change, Outcome, Refusal, unix_now};
use super::price::PricePerToken;
use super::store::{StoreError, VoucherStore};
use super::voucher::SignedVoucher;

/// Why a call is not paid for.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// The request carries no voucher.
    #[error("this call costs {due} ({} base units): send a voucher in the X-Tora-Voucher header", due.0)]
    Missing {
        /// This call's worst-case price, in TORA base units.
        due: ToraUnits,
    },
    /// The `X-Tora-Voucher` header is not a voucher, with the parser's reason.
    #[error("{0}")]
    Malformed(String),
    /// The voucher's cumulative amount leaves no room for this call next to what was consumed and held.
    #[error(
        "the voucher's cumulative amount is {got}; this call costs up to {due} and needs at least {expected}"
    )]
    Underpaid {
        /// This call's worst-case price, in TORA base units.
        due: ToraUnits,
        /// The least cumulative amount, in TORA base units, a voucher must carry for this call.
        expected: U256,
        /// The voucher's cumulative amount.
        got: U256,
    },
    /// The payer's escrow deposit would not pay the voucher out in full.
    #[error("the escrow deposit covers cumulative amounts up to {covered}, less than the voucher's")]
    InsufficientDeposit {
        /// This call's worst-case price, in TORA base units.
        due: ToraUnits,
        /// The least cumulative amount, in TORA base units, a voucher must carry for this call.
        expected: U256,
        /// The largest cumulative amount the deposit covers: balance plus what was already redeemed.
        covered: U256,
    },
    /// The escrow would not accept the voucher's signature as the payer's.
    #[error(
        "the voucher is not signed by its payer {payer} as the escrow checks it (ECDSA with v 27/28 and low s, or ERC-1271)"
    )]
    InvalidSignature {
        /// This call's worst-case price, in TORA base units.
        due: ToraUnits,
        /// The least cumulative amount, in TORA base units, a voucher must carry for this call.
        expected: U256,
        /// The payer the voucher names.
        payer: Address,
    },
    /// The payer has asked the escrow for its deposit back, so nothing more is served.
    #[error(
        "payer {payer} asked the escrow for its deposit back (requestWithdrawal): call cancelWithdrawal to be served again"
    )]
    WithdrawalRequested {
        /// The payer whose withdrawal is pending.
        payer: Address,
    },
    /// The payer is suspended because one of its vouchers failed on chain.
    #[error("payer {payer} is not served: {reason}")]
    Suspended {
        /// The suspended payer.
        payer: Address,
        /// Why it was suspended.
        reason: String,
    },
    /// A price or cumulative amount does not fit 256 bits.
    #[error("the amounts do not fit 256 bits")]
    Overflow,
    /// The escrow could not be read.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The voucher store failed.
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

/// A call let in: its worst-case price is held in the payer's ledger until it is settled.
#[derive(Debug)]
#[must_use = "a hold not settled is charged in full when it expires"]
pub struct Reservation {
    payer: Address,
    hold: u64,
    held: ToraUnits,
}

impl Reservation {
    /// The worst-case price held.
    pub fn held(&self) -> ToraUnits {
        self.held
    }
}

/// A recorded payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// What this call was charged: its exact price.
    pub price: ToraUnits,
    /// Everything the payer was charged so far: what the provider may claim.
    pub cumulative_amount: U256,
}

/// Decides whether a call is paid for and records what it is charged, in the voucher store `S`.
pub struct Cashier<S> {
    store: S,
    escrow: Escrow,
    per_token: PricePerToken,
}

impl<S: VoucherStore> Cashier<S> {
    /// A cashier keeping ledgers in `store`, checking vouchers against `escrow`, charging `per_token`.
    pub fn new(store: S, escrow: Escrow, per_token: PricePerToken) -> Self {
        Self { store, escrow, per_token }
    }

    /// The embedding model's price per token.
    pub fn per_token(&self) -> PricePerToken {
        self.per_token
    }

    /// The escrow vouchers are checked against.
    pub fn escrow(&self) -> &Escrow {
        &self.escrow
    }

    /// The store holding every payer's ledger.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The price of `tokens` embedding tokens, or [`PaymentError::Overflow`].
    pub fn price(&self, tokens: u64) -> Result<ToraUnits, PaymentError> {
        self.per_token.price(tokens).ok_or(PaymentError::Overflow)
    }

    /// Checks `voucher` for a call costing up to `price` (cheapest checks first, the signature
    /// last) and holds `price` in the payer's ledger.
    pub async fn authorize(
        &self,
        voucher: Option<SignedVoucher>,
        price: ToraUnits,
    ) -> Result<Reservation, PaymentError> {
        let voucher = voucher.ok_or(PaymentError::Missing { due: price })?;
        let (ledger, account) =
            tokio::join!(self.store.ledger(voucher.payer), self.escrow.account(voucher.payer));
        let (ledger, account) = (ledger?, account?);
        let payer = voucher.payer;
        // The notice period is the provider's time to redeem, not to serve more.
        if account.withdrawal_requested {
            return Err(PaymentError::WithdrawalRequested { payer });
        }
        if let Some(reason) = ledger.suspended {
            return Err(PaymentError::Suspended { payer, reason });
        }
        let expected = ledger.required(price.0, account.redeemed).ok_or(PaymentError::Overflow)?;
        let got = voucher.cumulative_amount;
        if got < expected {
            return Err(PaymentError::Underpaid { due: price, expected, got });
        }
        // The whole ceiling, not only what this call may use: whatever the provider claims
        // under a voucher it accepted, the deposit pays.
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
        let change = Change::Hold { voucher, price: price.0, redeemed: account.redeemed, now: unix_now() };
        match self.store.change(payer, &change).await? {
            Ok(Outcome::Held { hold }) => Ok(Reservation { payer, hold, held: price }),
            // Another call of the same payer took the headroom (or a newer voucher) meanwhile.
            Err(Refusal::Underpaid { required }) => {
                Err(PaymentError::Underpaid { due: price, expected: required, got })
            }
            Err(Refusal::Overflow) => Err(PaymentError::Overflow),
            Err(Refusal::Suspended(reason)) => Err(PaymentError::Suspended { payer, reason }),
            Ok(other) => Err(StoreError(format!("a hold answered {other:?}")).into()),
        }
    }

    /// Ends the call: charges `exact` (its price for the tokens it ran, at most what was held)
    /// and frees the rest of the hold.
    pub async fn settle(&self, reservation: Reservation, exact: ToraUnits) -> Result<Charge, PaymentError> {
        let Reservation { payer, hold, held } = reservation;
        let change = Change::Settle { hold, exact: exact.0, now: unix_now() };
        match self.store.change(payer, &change).await? {
            Ok(Outcome::Settled { charged, consumed }) => Ok(Charge {
                // None: the hold outlived its lifetime and was charged in full.
                price: ToraUnits(charged.unwrap_or(held.0)),
                cumulative_amount: consumed,
            }),
            other => Err(StoreError(format!("a settlement answered {other:?}")).into()),
        }
    }

    /// Ends a call that served nothing: the hold is freed and nothing charged.
    pub async fn release(&self, reservation: Reservation) {
        if let Err(e) = self.settle(reservation, ToraUnits::default()).await {
            tracing::warn!(error = %e, "a hold could not be released; it is charged when it expires");
        }
    }
}
