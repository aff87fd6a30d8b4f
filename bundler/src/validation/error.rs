//! Why an operation is refused, or could not be judged. What went wrong only: the RPC layer
//! (`rpc::error`) gives each its ERC-4337 code.

use super::outcome::TimeRange;
use super::rules::Violation;
use crate::evm::simulation::SimulationRevert;
use crate::evm::state::StateError;
use alloy::primitives::Address;

/// Why an operation is refused, or could not be judged.
#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    /// The EntryPoint's simulation reverted (`AAxx` reason, and the entity's own revert).
    #[error("{0}")]
    Rejected(SimulationRevert),
    /// The operation broke an ERC-7562 rule.
    #[error(transparent)]
    Rule(#[from] Violation),
    /// The account's (or the paymaster's) validationData reports a failed signature.
    #[error(
        "Invalid UserOp signature or paymaster signature: the {} signature check failed",
        if *.paymaster { "paymaster" } else { "account" }
    )]
    Signature {
        /// The paymaster's signature failed, not the account's.
        paymaster: bool,
    },
    /// The account names a signature aggregator, which this bundler does not support.
    #[error("Currently not supporting aggregator {0}")]
    UnsupportedAggregator(Address),
    /// The operation is not yet valid at the block, or expires within `margin` seconds of it.
    #[error("{}", time_range_problem(.range, *.now, *.margin))]
    OutOfTimeRange {
        /// The account's and paymaster's windows together.
        range: TimeRange,
        /// The pinned block's timestamp, in seconds.
        now: u64,
        /// Seconds the operation must stay valid after `now`.
        margin: u64,
    },
    /// A node call failed (the head, the chain id, or the validation task).
    #[error("node: {0}")]
    Node(String),
    /// The simulation could not read the state it needed from the node.
    #[error(transparent)]
    State(#[from] StateError),
    /// The node serves another chain than the chain spec's.
    #[error("the node's chain id is {node}, but the chain spec says {spec}")]
    ChainIdMismatch {
        /// The chain id the node reports.
        node: u64,
        /// The chain id of the chain spec.
        spec: u64,
    },
    /// The node's RPC URL does not parse.
    #[error("invalid RPC URL {0}")]
    Url(String),
}

/// The reference bundler's wording for each way a time range fails at block time `now`.
fn time_range_problem(range: &TimeRange, now: u64, margin: u64) -> String {
    match range.valid_until {
        _ if range.valid_after > now => {
            format!("time-range in the future time {}, now={now}", range.valid_after)
        }
        Some(until) if until < now => format!("already expired: validUntil {until}, now={now}"),
        Some(until) => format!("expires too soon: validUntil {until}, now={now}, needs {margin} s more"),
        None => format!("time-range invalid at {now}"),
    }
}

impl ValidationError {
    /// Whether the same operation could pass at a newer block: every verdict but a
    /// misconfiguration comes from the chain's state or time.
    pub fn depends_on_state(&self) -> bool {
        !matches!(self, ValidationError::ChainIdMismatch { .. } | ValidationError::Url(_))
    }

    /// Whether the operation failed because of its account or factory (a revert in their
    /// AA1x/AA2x validation, or a rule their code broke): ERC-7562 EREP-015 then spares the
    /// paymaster the opsSeen it was charged.
    pub fn is_account_or_factory_fault(&self) -> bool {
        use super::tracer::Phase;
        match self {
            ValidationError::Rejected(revert) => matches!(revert.reason.get(..3), Some("AA1" | "AA2")),
            ValidationError::Rule(v) => matches!(v.phase(), Some(Phase::Factory | Phase::Account)),
            ValidationError::Signature { paymaster } => !paymaster,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::Bytes;
    use alloy::sol_types::{Revert, SolError};

    #[test]
    fn a_rejection_says_the_entry_points_reason_and_the_entitys_own() {
        let inner = Revert::from("testWallet: dead signature").abi_encode();
        let err = ValidationError::Rejected(SimulationRevert {
            reason: "AA23 reverted".into(),
            inner: inner.into(),
        });
        assert_eq!(err.to_string(), "AA23 reverted: testWallet: dead signature");
        let bare = ValidationError::Rejected(SimulationRevert {
            reason: "AA21 didn't pay prefund".into(),
            inner: Bytes::new(),
        });
        assert_eq!(bare.to_string(), "AA21 didn't pay prefund");
        let custom =
            SimulationRevert { reason: "AA33 reverted".into(), inner: Bytes::from_static(&[0xde, 0xad]) };
        assert_eq!(custom.to_string(), "AA33 reverted: 0xdead");
    }

    #[test]
    fn time_ranges_are_described_as_the_reference_does() {
        let range = |valid_after, valid_until| TimeRange { valid_after, valid_until };
        let msg = |r, now| ValidationError::OutOfTimeRange { range: r, now, margin: 30 }.to_string();
        assert_eq!(msg(range(200, None), 100), "time-range in the future time 200, now=100");
        assert_eq!(msg(range(0, Some(99)), 100), "already expired: validUntil 99, now=100");
        assert_eq!(
            msg(range(0, Some(110)), 100),
            "expires too soon: validUntil 110, now=100, needs 30 s more"
        );
    }

    #[test]
    fn the_account_or_factory_is_at_fault_for_their_own_reverts_and_rules() {
        let rejected = |reason: &str| {
            ValidationError::Rejected(SimulationRevert { reason: reason.into(), inner: Bytes::new() })
        };
        assert!(rejected("AA23 reverted").is_account_or_factory_fault());
        assert!(rejected("AA13 initCode failed or OOG").is_account_or_factory_fault());
        assert!(!rejected("AA33 reverted").is_account_or_factory_fault());
        let oog = |phase| ValidationError::Rule(Violation::OutOfGas { phase, contract: Address::ZERO });
        assert!(oog(super::super::tracer::Phase::Account).is_account_or_factory_fault());
        assert!(!oog(super::super::tracer::Phase::Paymaster).is_account_or_factory_fault());
    }
}
