//! The shared harness lives in `tora_devnet::harness`, for other crates' tests too.

pub use tora_devnet::harness::*;
