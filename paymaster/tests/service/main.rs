//! The paymaster service end to end on the devnet, over HTTP JSON-RPC: alone, and with the
//! bundler as a wallet would use them together. One binary, so the stack is linked once.

mod common;
mod quotes;
mod rate_limits;
mod running;
mod settlement;
mod signing_bounds;
mod through_bundler;
