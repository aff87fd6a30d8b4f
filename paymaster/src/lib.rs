//! The TORA paymaster service (ERC-7677): prices a user operation's gas in TORA from an
//! on-chain oracle with exact integer math, signs the quote `ToraPaymaster` verifies, and
//! serves `pm_getPaymasterStubData`, `pm_getPaymasterData` and `tora_getTokenQuote`.

pub mod admin;
pub mod config;
pub mod gas_bounds;
pub mod pricing;
pub mod quote;
pub mod rpc;
pub mod server;
pub mod settlement;
pub mod signer_key;
pub mod sponsorship;

pub use config::PaymasterConfig;
pub use rpc::{PaymasterRpc, Sponsorship};

use std::sync::Arc;
use tora_core::price::PriceSource;
use tora_core::sponsorship::SponsorshipStore;

/// The whole HTTP surface: JSON-RPC for wallets, `/admin` for policies, health and metrics.
pub fn app<P: PriceSource + 'static, S: SponsorshipStore + 'static>(
    rpc: Arc<PaymasterRpc<P, S>>,
    limits: tora_jsonrpc::Limits,
) -> axum::Router {
    let admin = admin::router(rpc.sponsorship.store.clone(), rpc.sponsorship.keys.clone());
    tora_jsonrpc::router(rpc, limits).merge(admin)
}
