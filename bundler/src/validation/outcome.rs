//! What a successful validation reports: entities with their stake, the time range, gas and
//! prefund, and the storage and code the operation depends on (for the mempool's checks).

use alloy::primitives::{Address, B256, Bytes, U256};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
/// The money type every service shares, re-exported where the outcome uses it.
pub use tora_core::money::Wei;

/// An entity of the operation and its stake, as the EntryPoint reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EntityInfo {
    /// The entity's address.
    pub address: Address,
    /// Its stake in the EntryPoint, in wei.
    pub stake: Wei,
    /// Its stake's unstake delay, in seconds.
    pub unstake_delay_secs: u64,
    /// Meets both MIN_STAKE_VALUE and MIN_UNSTAKE_DELAY (ERC-7562 SREP-010).
    pub staked: bool,
}

/// When the operation is valid; `valid_until` None means forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeRange {
    /// Earliest block timestamp the operation is valid at, in seconds (validAfter).
    pub valid_after: u64,
    /// Last block timestamp the operation is valid at, in seconds (validUntil).
    pub valid_until: Option<u64>,
}

/// A valid operation, with what the mempool and the bundle builder need later.
#[derive(Clone, Debug)]
pub struct ValidationOutcome {
    /// The userOpHash, for this EntryPoint and chain.
    pub user_op_hash: B256,
    /// The block the verdict holds for.
    pub block_number: u64,
    /// The hash of that block.
    pub block_hash: B256,
    /// Gas used before the call phase: validation plus preVerificationGas (`returnInfo.preOpGas`).
    pub pre_op_gas: U256,
    /// What the EntryPoint takes up front from the sender's or paymaster's deposit, in wei.
    pub prefund: Wei,
    /// The account's and the paymaster's validity windows together.
    pub time_range: TimeRange,
    /// The account's raw `validationData` word.
    pub account_validation_data: U256,
    /// The paymaster's raw `validationData` word.
    pub paymaster_validation_data: U256,
    /// The context the paymaster returned for its postOp (empty for none).
    pub paymaster_context: Bytes,
    /// The paymaster's EntryPoint deposit at the pinned block (ERC-7562 EREP-010).
    pub paymaster_deposit: Option<Wei>,
    /// The sender and its stake.
    pub sender: EntityInfo,
    /// The factory and its stake, when the operation deploys its account.
    pub factory: Option<EntityInfo>,
    /// The paymaster and its stake, when it has one.
    pub paymaster: Option<EntityInfo>,
    /// Storage slots read or written, per contract (mempool conflict checks).
    pub storage: BTreeMap<Address, BTreeSet<U256>>,
    /// Contracts whose storage was used through association (ERC-7562 STO-041).
    pub associated_storage: BTreeSet<Address>,
    /// Code hash at the pinned block of every contract the validation touched (COD-010).
    pub code_hashes: BTreeMap<Address, B256>,
    /// Node requests this validation made (block lookup included).
    pub rpc_calls: u64,
    /// Times validation waited on the node (block lookup included); concurrent calls count once.
    pub rpc_round_trips: u64,
    /// Wall time the validation took, retries on a newer head included.
    pub elapsed: Duration,
}

/// ERC-4337 SIG_VALIDATION_FAILED: the aggregator field set to 1.
pub const SIG_VALIDATION_FAILED: Address = Address::with_last_byte(1);

/// A v0.7 `validationData` word: `aggregator (160) | validUntil (48) | validAfter (48)`,
/// low bits first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValidationData {
    /// The aggregator: zero for none, [`SIG_VALIDATION_FAILED`] for a failed signature.
    pub aggregator: Address,
    /// The validAfter / validUntil window.
    pub time_range: TimeRange,
}

impl ValidationData {
    /// Splits a `validationData` word; a validUntil of 0 reads as no expiry.
    pub fn parse(word: U256) -> Self {
        let mask48: U256 = (U256::from(1) << 48) - U256::from(1);
        let mask160: U256 = (U256::from(1) << 160) - U256::from(1);
        let aggregator = Address::from_word(B256::from(word & mask160));
        let valid_until: u64 = ((word >> 160usize) & mask48).to();
        let valid_after: u64 = ((word >> 208usize) & mask48).to();
        Self {
            aggregator,
            time_range: TimeRange {
                valid_after,
                // 0 means "no expiry" (the EntryPoint reads it as type(uint48).max).
                valid_until: (valid_until != 0).then_some(valid_until),
            },
        }
    }
}

impl TimeRange {
    /// Both ranges at once: the later start, the earlier end.
    pub fn intersect(self, other: TimeRange) -> TimeRange {
        let valid_until = match (self.valid_until, other.valid_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        TimeRange { valid_after: self.valid_after.max(other.valid_after), valid_until }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(aggregator: u64, valid_until: u64, valid_after: u64) -> U256 {
        U256::from(aggregator) | (U256::from(valid_until) << 160) | (U256::from(valid_after) << 208)
    }

    #[test]
    fn validation_data_splits_aggregator_and_time_range() {
        let parsed = ValidationData::parse(word(1, 2_000, 1_000));
        assert_eq!(parsed.aggregator, SIG_VALIDATION_FAILED);
        assert_eq!(parsed.time_range, TimeRange { valid_after: 1_000, valid_until: Some(2_000) });
        let forever = ValidationData::parse(U256::ZERO);
        assert_eq!(forever.aggregator, Address::ZERO);
        assert_eq!(forever.time_range.valid_until, None);
        // All ones: every field saturates, nothing overflows.
        let max = ValidationData::parse(U256::MAX);
        assert_eq!(max.time_range.valid_until, Some((1 << 48) - 1));
        assert_eq!(max.time_range.valid_after, (1 << 48) - 1);
    }

    #[test]
    fn time_ranges_intersect_to_the_later_start_and_earlier_end() {
        let a = TimeRange { valid_after: 10, valid_until: None };
        let b = TimeRange { valid_after: 5, valid_until: Some(100) };
        let c = TimeRange { valid_after: 0, valid_until: Some(50) };
        assert_eq!(a.intersect(b), TimeRange { valid_after: 10, valid_until: Some(100) });
        assert_eq!(b.intersect(c).valid_until, Some(50));
    }
}
