//! ERC-7562 validation against a real chain: each test starts its own devnet (anvil with
//! EntryPoint v0.7 and the Tensora contracts) and validates operations with the in-process
//! validator.

mod common;
mod cross_check;
mod entity_rules;
mod opcode_rules;
mod setup;
mod state_cache;
mod valid_ops;
