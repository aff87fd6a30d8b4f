//! ERC-7562 reputation: per entity, how many operations the pool saw (opsSeen) and how many
//! bundles included (opsIncluded). An entity whose operations keep failing to land is throttled,
//! then banned, so it cannot make the bundler waste simulations.

use alloy::primitives::Address;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// ERC-7562 MIN_INCLUSION_RATE_DENOMINATOR (bundler value).
pub const MIN_INCLUSION_RATE_DENOMINATOR: u64 = 10;
/// ERC-7562 THROTTLING_SLACK.
pub const THROTTLING_SLACK: u64 = 10;
/// ERC-7562 BAN_SLACK.
pub const BAN_SLACK: u64 = 50;
/// opsSeen added to an entity whose operation made the bundle's `handleOps` fail after it
/// passed validation twice (the eth-infinitism bundler's `crashedHandleOps`): far past the ban
/// line, so the entity stays banned until the hourly decay has worked for days.
pub const CRASHED_HANDLE_OPS_SEEN: u64 = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReputationStatus {
    Ok,
    Throttled,
    Banned,
}

/// One entity's record, in the shape debug_bundler_dumpReputation / setReputation use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReputationEntry {
    pub address: Address,
    #[serde(with = "alloy::serde::quantity")]
    pub ops_seen: u64,
    #[serde(with = "alloy::serde::quantity")]
    pub ops_included: u64,
    /// Derived from the counters; ignored on input.
    #[serde(default, skip_deserializing)]
    pub status: Option<ReputationStatus>,
}

#[derive(Default, Debug)]
pub struct Reputation {
    counters: HashMap<Address, (u64, u64)>,
}

/// ERC-7562: `maxSeen = opsSeen / MIN_INCLUSION_RATE_DENOMINATOR`; ok while
/// `maxSeen <= opsIncluded + THROTTLING_SLACK`, banned past `opsIncluded + BAN_SLACK`.
/// Multiplied out so that no division rounds (101 seen, 0 included is throttled).
pub fn status_of(ops_seen: u64, ops_included: u64) -> ReputationStatus {
    let limit =
        |slack: u64| ops_included.saturating_add(slack).saturating_mul(MIN_INCLUSION_RATE_DENOMINATOR);
    if ops_seen <= limit(THROTTLING_SLACK) {
        ReputationStatus::Ok
    } else if ops_seen <= limit(BAN_SLACK) {
        ReputationStatus::Throttled
    } else {
        ReputationStatus::Banned
    }
}

impl Reputation {
    pub fn status(&self, entity: Address) -> ReputationStatus {
        self.counters.get(&entity).map_or(ReputationStatus::Ok, |&(seen, included)| status_of(seen, included))
    }

    pub fn seen(&mut self, entity: Address) {
        let entry = self.counters.entry(entity).or_default();
        entry.0 = entry.0.saturating_add(1);
    }

    pub fn included(&mut self, entity: Address) {
        let entry = self.counters.entry(entity).or_default();
        entry.1 = entry.1.saturating_add(1);
    }

    /// The entity's operation failed in the bundle after passing validation: ban it, and
    /// forget its inclusions so that past good behaviour does not buy the ban off.
    pub fn crashed_handle_ops(&mut self, entity: Address) {
        let entry = self.counters.entry(entity).or_default();
        entry.0 = entry.0.saturating_add(CRASHED_HANDLE_OPS_SEEN);
        entry.1 = 0;
    }

    /// The hourly decay: both counters times 23/24, rounded down; records at zero are dropped.
    pub fn decay(&mut self) {
        for (seen, included) in self.counters.values_mut() {
            *seen = *seen * 23 / 24;
            *included = *included * 23 / 24;
        }
        self.counters.retain(|_, &mut (seen, included)| seen > 0 || included > 0);
    }

    pub fn set(&mut self, entry: &ReputationEntry) {
        self.counters.insert(entry.address, (entry.ops_seen, entry.ops_included));
    }

    pub fn clear(&mut self) {
        self.counters.clear();
    }

    pub fn dump(&self) -> Vec<ReputationEntry> {
        let mut entries: Vec<_> = self
            .counters
            .iter()
            .map(|(&address, &(ops_seen, ops_included))| ReputationEntry {
                address,
                ops_seen,
                ops_included,
                status: Some(status_of(ops_seen, ops_included)),
            })
            .collect();
        entries.sort_by_key(|e| e.address);
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReputationStatus::*;

    #[test]
    fn status_follows_the_inclusion_rate_with_slack() {
        // maxSeen = seen / 10 against included + 10 (throttle) and included + 50 (ban).
        assert_eq!(status_of(100, 0), Ok);
        assert_eq!(status_of(101, 0), Throttled);
        assert_eq!(status_of(500, 0), Throttled);
        assert_eq!(status_of(501, 0), Banned);
        // Inclusions buy headroom: 10 included allows 200 seen.
        assert_eq!(status_of(200, 10), Ok);
        assert_eq!(status_of(201, 10), Throttled);
        assert_eq!(status_of(600, 10), Throttled);
        assert_eq!(status_of(601, 10), Banned);
        assert_eq!(status_of(u64::MAX, u64::MAX), Ok);
    }

    #[test]
    fn hourly_decay_is_23_24ths_rounded_down() {
        let mut r = Reputation::default();
        let a = Address::repeat_byte(1);
        r.set(&ReputationEntry { address: a, ops_seen: 600, ops_included: 10, status: None });
        r.decay();
        // 600 * 23 / 24 = 575, 10 * 23 / 24 = 9 (9.58 rounded down).
        assert_eq!(r.dump()[0].ops_seen, 575);
        assert_eq!(r.dump()[0].ops_included, 9);
        assert_eq!(r.status(a), Throttled);
        // 1 decays to 0 and the record goes.
        r.set(&ReputationEntry { address: a, ops_seen: 1, ops_included: 0, status: None });
        r.decay();
        assert!(r.dump().is_empty());
        assert_eq!(r.status(a), Ok);
    }

    #[test]
    fn counters_move_status_and_dump_in_wire_shape() {
        let mut r = Reputation::default();
        let a = Address::repeat_byte(2);
        for _ in 0..101 {
            r.seen(a);
        }
        assert_eq!(r.status(a), Throttled);
        r.included(a);
        assert_eq!(r.status(a), Ok);
        let json = serde_json::to_value(r.dump()).unwrap();
        assert_eq!(json[0]["opsSeen"], "0x65");
        assert_eq!(json[0]["opsIncluded"], "0x1");
        assert_eq!(json[0]["status"], "ok");
    }

    #[test]
    fn a_crashed_handle_ops_bans_even_a_well_included_entity() {
        let mut r = Reputation::default();
        let a = Address::repeat_byte(3);
        r.set(&ReputationEntry { address: a, ops_seen: 5, ops_included: 1_000, status: None });
        r.crashed_handle_ops(a);
        assert_eq!(r.dump()[0].ops_seen, 10_005);
        assert_eq!(r.dump()[0].ops_included, 0);
        assert_eq!(r.status(a), Banned);
    }
}
