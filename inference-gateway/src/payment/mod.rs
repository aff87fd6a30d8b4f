//! Paying for calls with cumulative escrow vouchers: pricing, the checks before and the record
//! after each call, the stores that keep each payer's latest voucher, and redemption.

pub mod cashier;
pub mod escrow;
pub mod price;
pub mod redeem;
pub mod redis_store;
pub mod store;
pub mod voucher;

pub use cashier::{Authorized, Cashier, Charge, PaymentError};
pub use escrow::{ChainError, Escrow, EscrowAccount};
pub use price::PricePerToken;
pub use redeem::{RedeemError, Redeemer, Redemption};
pub use redis_store::RedisVoucherStore;
pub use store::{Acceptance, MemoryVoucherStore, StoreError, VoucherStore};
pub use voucher::{SignedVoucher, VOUCHER_HEADER};
