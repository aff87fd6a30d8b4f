//! ERC-4337 v0.7 bundler: JSON-RPC, ERC-7562 validation in revm, mempool, bundle builder.
//!
//! The flow runs one way: `rpc` parses and validates ([`validation::Validator`], in-process
//! revm (`evm`) with the ERC-7562 rules) and adds to the `pool` ([`pool::Mempool`]); the `builder`
//! takes the best operations, simulates `handleOps`, signs and submits it, and reports
//! inclusion back to the pool. `estimation` answers eth_estimateUserOperationGas.
//! [`server::start`] wires them to one node.

pub mod builder;
pub mod estimation;
pub mod evm;
pub mod leases;
mod metrics;
pub mod node;
pub mod pool;
pub mod rpc;
pub mod server;
pub mod validation;

pub use server::{BundlerOptions, BundlerSettings, RunningBundler, StartError, start};
pub use tora_redis::RedisTarget;
pub use validation::{ValidationError, ValidationOutcome, ValidationSettings, Validator};
