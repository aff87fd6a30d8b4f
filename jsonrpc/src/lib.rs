//! JSON-RPC 2.0 over HTTP, shared by the bundler and the paymaster: request envelopes with
//! batches and notifications, bounded request sizes, rate limits per verified key or client
//! address (a tower layer), typed parameter parsing that answers -32602, a trace span per request and per call, and the
//! routes every service has (`/health`, `/ready`, `/metrics`).

mod caller;
mod envelope;
mod params;
mod rate_limit;
mod server;

pub use caller::CallMeta;
pub use envelope::{Id, Response};
pub use params::Params;
pub use rate_limit::RateLimit;
pub use server::{Limits, READY_WITHIN, RpcService, router};
