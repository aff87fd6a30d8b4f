//! The TORA paymaster service (ERC-7677): prices a user operation's gas in TORA from an
//! on-chain oracle with exact integer math, signs the quote `ToraPaymaster` verifies, and
//! serves `pm_getPaymasterStubData`, `pm_getPaymasterData` and `tora_getTokenQuote`.

pub mod config;
pub mod pricing;
pub mod quote;
pub mod rpc;
pub mod signer_key;
pub mod sponsorship;

pub use config::PaymasterConfig;
pub use rpc::PaymasterRpc;
