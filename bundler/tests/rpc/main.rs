//! The bundler end to end over HTTP JSON-RPC on a devnet: each test starts anvil with the
//! stack deployed and a bundler on it (manual bundling, debug API on).

mod bundling;
mod chain;
mod common;
mod errors;
mod estimation;
mod expiry;
mod faults;
mod flow;
mod head_feed;
mod l1_fee;
mod lanes;
mod reorg;
mod revalidation;
mod status;
mod submission;
