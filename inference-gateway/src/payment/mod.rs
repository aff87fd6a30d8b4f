//! Paying for calls with cumulative escrow vouchers: pricing, the checks before and the record
//! after each call (and its Prometheus counters), each payer's ledger (latest voucher,
//! consumed, held) and the stores that keep it, and redemption of exactly what was consumed.

pub mod cashier;
pub mod escrow;
pub mod ledger;
pub(crate) mod metrics;
pub mod price;
pub mod redeem;
pub mod redis_store;
pub mod store;
pub mod voucher;

pub use cashier::{Cashier, Charge, PaymentError, Reservation};
pub use escrow::{ChainError, Escrow, EscrowAccount, strict_ecdsa_signer};
pub use ledger::{Change, HOLD_LIFETIME_SECS, Hold, Ledger, Outcome, Refusal};
pub use price::PricePerToken;
pub use redeem::{Due, RedeemError, Redeemer, Redemption};
pub use redis_store::RedisVoucherStore;
pub use store::{MemoryVoucherStore, StoreError, VoucherStore};
pub use voucher::{SignedVoucher, VOUCHER_HEADER};
