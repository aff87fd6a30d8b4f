//! JSON-RPC 2.0 over HTTP, shared by the bundler and the paymaster, and the one client of their
//! typed methods (`tora_core::rpc_api`): request envelopes with
//! batches and notifications, bounded request sizes, rate limits per verified key or client
//! address (a tower layer), typed parameter parsing that answers -32602, a trace span per request and per call, and the
//! routes every service has (`/health`, `/ready`, `/metrics`).

mod answer;
mod caller;
mod client;
mod envelope;
mod params;
mod rate_limit;
mod server;

pub use answer::{answer, encode};
pub use caller::CallMeta;
pub use client::{CallError, Client, ErrorObject};
pub use envelope::{Id, Response};
pub use params::Params;
pub use rate_limit::RateLimit;
pub use server::{Limits, READY_WITHIN, RpcService, router};
