//! ERC-7562 validation in-process: `simulateValidation` runs in revm over the node's state at a
//! pinned block (the `evm` layer), a native inspector records what each entity's code did
//! (`tracer`, with the banned-opcode table) and `rules` judges it; `validator` puts them
//! together. One validation costs one node call for the block plus the state it reads that the
//! block's cache does not hold yet.

mod error;
mod outcome;
pub mod rules;
pub mod run;
pub mod tracer;
mod validator;

pub use error::ValidationError;
pub use outcome::{EntityInfo, SIG_VALIDATION_FAILED, TimeRange, ValidationData, ValidationOutcome, Wei};
pub use rules::{RuleContext, TraceVerdict, Violation};
pub use tracer::Phase;
pub use validator::{MIN_UNSTAKE_DELAY, NEW_HEAD_GRACE, ValidationSettings, Validator};
