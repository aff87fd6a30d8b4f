//! The EVM layer that validation and estimation share: the node's state at a pinned block,
//! fetched on demand and cached per block (`state`), the chain's head (`head`), reads predicted
//! from earlier operations of the same shape (`prediction`), the EntryPoint's simulation code
//! and bindings (`bindings`) and how a simulation is set up and its refusal decoded
//! (`simulation`). Nothing here judges an operation: `validation` does, on top of this.

pub mod bindings;
pub mod head;
pub mod prediction;
pub mod simulation;
pub mod state;

pub use bindings::{EntryPointSimulations, ExecutionResult, StakeInfo, ValidationResult, deposit_slot};
pub use simulation::{SimulationEnv, SimulationRevert, revert_reason};
pub use state::{ChainReads, PinnedBlock, StateError, StateReads};
