//! The bundle builder: takes the best pending operations, validates them again, simulates
//! `handleOps` with `eth_call` and drops the ones the EntryPoint refuses, signs and submits the
//! transaction on a free key, follows it block by block (resubmitting with higher fees, or
//! cancelling), and reports each operation's fate back to the pool, reorgs included.

mod drops;
mod fees;
mod lanes;
mod reorg;
mod revalidation;
mod selection;
mod submit;
mod tracker;

pub use drops::{DROP_RECORD_CAPACITY, DropRecord};
pub use fees::{BundleFees, REPLACEMENT_BUMP_PERCENT, bump};
pub use selection::{hold_back_storage_conflicts, select_bundle};
pub use submit::{Builder, BuilderError, BuilderSettings, BundleOutcome, BundlingMode};
