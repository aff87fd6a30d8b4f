//! The shared harness lives in `tora_devnet::harness`, for other crates' tests too.

pub(crate) use tora_devnet::harness::*;
