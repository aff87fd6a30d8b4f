//! The TORA paymaster service (ERC-7677): prices a user operation's gas in TORA from an
//! on-chain oracle with exact integer math, signs the quote `ToraPaymaster` verifies, and
//! serves `pm_getPaymasterStubData`, `pm_getPaymasterData` and `tora_getTokenQuote`.

pub mod admin;
pub mod config;
pub mod gas_bounds;
mod metrics;
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

/// The whole HTTP surface on one port: [`public_app`] and `/admin` (the embedded default).
pub fn app<P: PriceSource + 'static, S: SponsorshipStore + 'static>(
    rpc: Arc<PaymasterRpc<P, S>>,
    limits: tora_jsonrpc::Limits,
) -> axum::Router {
    let admin = admin_app(&rpc);
    public_app(rpc, limits).merge(admin)
}

/// What wallets reach: JSON-RPC (`pm_*`, `tora_getTokenQuote`), /health, /ready, /metrics.
pub fn public_app<P: PriceSource + 'static, S: SponsorshipStore + 'static>(
    rpc: Arc<PaymasterRpc<P, S>>,
    limits: tora_jsonrpc::Limits,
) -> axum::Router {
    tora_jsonrpc::router(rpc, limits)
}

/// `/admin`: policies and their spend, for operators only. Served on its own port when
/// `--admin-listen` is set, so a public load balancer never routes it.
pub fn admin_app<P: PriceSource + 'static, S: SponsorshipStore + 'static>(
    rpc: &PaymasterRpc<P, S>,
) -> axum::Router {
    admin::router(rpc.sponsorship.store.clone(), rpc.sponsorship.keys.clone())
}
