//! ERC-7562 validation in-process: `simulateValidation` runs in revm over the node's state at a
//! pinned block (`state`, `simulation`), a native inspector records what each entity's code did
//! (`tracer`) and `rules` judges it. One validation costs one node call for the block plus the
//! state it reads that the block's cache does not hold yet.

mod bindings;
mod error;
pub mod head;
mod outcome;
pub mod prediction;
pub mod rules;
pub mod simulation;
pub mod state;
pub mod tracer;
mod validator;

pub use bindings::{EntryPointSimulations, ExecutionResult, StakeInfo, ValidationResult, deposit_slot};
pub use error::ValidationError;
pub use outcome::{EntityInfo, SIG_VALIDATION_FAILED, TimeRange, ValidationData, ValidationOutcome, Wei};
pub use rules::{RuleContext, TraceVerdict, Violation};
pub use simulation::{SimulationEnv, SimulationRevert, revert_reason};
pub use state::{ChainReads, PinnedBlock, StateError};
pub use tracer::Phase;
pub use validator::{MIN_UNSTAKE_DELAY, ValidationSettings, Validator};
