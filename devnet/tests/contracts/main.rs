//! End-to-end tests of the contracts on a real local chain (anvil with the canonical
//! EntryPoint v0.7). One test binary, so that alloy is linked once.

mod common;
mod entry_point;
mod escrow;
mod paymaster_postop;
mod paymaster_quotes;
mod paymaster_sponsor;
mod paymaster_token;
mod price_feed;
