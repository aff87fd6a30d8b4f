//! ERC-4337 v0.7 bundler: JSON-RPC, ERC-7562 validation in revm, mempool, bundle builder.
//!
//! Today it holds the validation core: [`validation::Validator`] simulates a user operation
//! in-process (revm over the node's state at a pinned block) and checks the ERC-7562 rules on
//! the trace, instead of asking the node for a JS trace per operation.

pub mod validation;

pub use validation::{ValidationError, ValidationOutcome, ValidationSettings, Validator};
