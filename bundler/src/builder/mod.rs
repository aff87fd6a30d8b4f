//! The bundle builder: takes the best pending operations, simulates `handleOps` with `eth_call`
//! and drops the ones the EntryPoint refuses, signs and submits the transaction with the
//! bundler's key, waits for it, and reports each operation's fate back to the pool.

mod selection;
mod submit;

pub use selection::select_bundle;
pub use submit::{Builder, BuilderError, BuilderSettings, BundleOutcome, BundlingMode};
