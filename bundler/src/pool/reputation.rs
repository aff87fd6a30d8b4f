//! ERC-7562 reputation: per entity, how many operations the pool saw (opsSeen) and how many
//! bundles included (opsIncluded). An entity whose operations keep failing to land is throttled,
//! then banned, so it cannot make the bundler waste simulations.

use alloy::primitives::Address;
use std::collections::HashMap;

/// ERC-7562 MIN_INCLUSION_RATE_DENOMINATOR (bundler value).
pub const MIN_INCLUSION_RATE_DENOMINATOR: u64 = 10;
/// ERC-7562 THROTTLING_SLACK.
pub const THROTTLING_SLACK: u64 = 10;
/// ERC-7562 BAN_SLACK.
pub const BAN_SLACK: u64 = 50;
/// ERC-7562 BAN_OPS_SEEN_PENALTY (GREP-040): opsSeen added to an entity whose operation made
/// the bundle's `handleOps` fail after it passed validation twice: far past the ban line, so
/// the entity stays banned until the hourly decay has worked for days.
pub const CRASHED_HANDLE_OPS_SEEN: u64 = 10_000;
/// ERC-7562 SAME_UNSTAKED_ENTITY_MEMPOOL_COUNT (UREP-020).
pub const SAME_UNSTAKED_ENTITY_MEMPOOL_COUNT: u64 = 10;
/// ERC-7562 MAX_OPS_ALLOWED_UNSTAKED_ENTITY (UREP-020).
pub(crate) const MAX_OPS_ALLOWED_UNSTAKED_ENTITY: u64 = 10_000;

pub use tora_core::rpc_api::debug::{ReputationEntry, ReputationStatus};

/// The opsSeen / opsIncluded counters of every entity with a record.
#[derive(Default, Debug)]
pub struct Reputation {
    counters: HashMap<Address, (u64, u64)>,
}

/// ERC-7562 reputation calculation: `max_seen = opsSeen // MIN_INCLUSION_RATE_DENOMINATOR`
/// (integer division, as the ERC writes it); banned when `max_seen > opsIncluded + BAN_SLACK`,
/// throttled when `max_seen > opsIncluded + THROTTLING_SLACK`, else ok.
pub(crate) fn status_of(ops_seen: u64, ops_included: u64) -> ReputationStatus {
    let max_seen = ops_seen / MIN_INCLUSION_RATE_DENOMINATOR;
    if max_seen > ops_included.saturating_add(BAN_SLACK) {
        ReputationStatus::Banned
    } else if max_seen > ops_included.saturating_add(THROTTLING_SLACK) {
        ReputationStatus::Throttled
    } else {
        ReputationStatus::Ok
    }
}

/// ERC-7562 UREP-020: `opsAllowed = SAME_UNSTAKED_ENTITY_MEMPOOL_COUNT + inclusionRate *
/// min(opsIncluded, MAX_OPS_ALLOWED_UNSTAKED_ENTITY)`, with `inclusionRate = opsIncluded /
/// opsSeen`, computed exactly and rounded down.
pub fn unstaked_ops_allowed(ops_seen: u64, ops_included: u64) -> u64 {
    let earned = match ops_seen {
        0 => 0,
        seen => {
            let capped = u128::from(ops_included.min(MAX_OPS_ALLOWED_UNSTAKED_ENTITY));
            u64::try_from(u128::from(ops_included) * capped / u128::from(seen)).unwrap_or(u64::MAX)
        }
    };
    SAME_UNSTAKED_ENTITY_MEMPOOL_COUNT.saturating_add(earned)
}

impl Reputation {
    /// UREP-020's allowance for an unstaked entity.
    pub fn unstaked_allowance(&self, entity: Address) -> u64 {
        let (seen, included) = self.counters.get(&entity).copied().unwrap_or_default();
        unstaked_ops_allowed(seen, included)
    }

    /// The entity's status from its counters (ok when it has no record).
    pub fn status(&self, entity: Address) -> ReputationStatus {
        self.counters.get(&entity).map_or(ReputationStatus::Ok, |&(seen, included)| status_of(seen, included))
    }

    /// Counts one more opsSeen for the entity.
    pub fn seen(&mut self, entity: Address) {
        let entry = self.counters.entry(entity).or_default();
        entry.0 = entry.0.saturating_add(1);
    }

    /// Takes back one opsSeen: the operation it counted turned out not to be this entity's
    /// doing (EREP-015) or no longer references it (GREP-050).
    pub fn unsee(&mut self, entity: Address) {
        if let Some(entry) = self.counters.get_mut(&entity) {
            entry.0 = entry.0.saturating_sub(1);
        }
    }

    /// Counts one more opsIncluded for the entity.
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

    /// Overwrites the entity's counters (debug_bundler_setReputation).
    pub fn set(&mut self, entry: &ReputationEntry) {
        self.counters.insert(entry.address, (entry.ops_seen, entry.ops_included));
    }

    /// Forgets every record.
    pub fn clear(&mut self) {
        self.counters.clear();
    }

    /// Every record with its status (debug_bundler_dumpReputation).
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
        // max_seen = seen / 10 (rounded down) against included + 10 (throttle), + 50 (ban).
        assert_eq!(status_of(100, 0), Ok);
        // 119 / 10 = 11 > 10: the first throttled count is 110, not 101.
        assert_eq!(status_of(109, 0), Ok);
        assert_eq!(status_of(110, 0), Throttled);
        assert_eq!(status_of(509, 0), Throttled);
        assert_eq!(status_of(510, 0), Banned);
        // Inclusions buy headroom: 10 included allows up to 209 seen.
        assert_eq!(status_of(209, 10), Ok);
        assert_eq!(status_of(210, 10), Throttled);
        assert_eq!(status_of(609, 10), Throttled);
        assert_eq!(status_of(610, 10), Banned);
        assert_eq!(status_of(u64::MAX, u64::MAX), Ok);
    }

    #[test]
    fn unstaked_allowance_grows_with_the_inclusion_rate() {
        // A new entity: SAME_UNSTAKED_ENTITY_MEMPOOL_COUNT.
        assert_eq!(unstaked_ops_allowed(0, 0), 10);
        // 20 seen, 10 included: rate 1/2 of min(10, 10,000) = 5 more.
        assert_eq!(unstaked_ops_allowed(20, 10), 15);
        // 3 seen, 1 included: 1/3 rounds down to 0.
        assert_eq!(unstaked_ops_allowed(3, 1), 10);
        // The inclusions counted are capped at MAX_OPS_ALLOWED_UNSTAKED_ENTITY.
        assert_eq!(unstaked_ops_allowed(20_000, 20_000), 10_010);
        assert_eq!(unstaked_ops_allowed(u64::MAX, u64::MAX), 10_010);
    }

    #[test]
    fn unsee_takes_back_one_and_never_goes_below_zero() {
        let mut r = Reputation::default();
        let a = Address::repeat_byte(4);
        r.seen(a);
        r.unsee(a);
        r.unsee(a);
        assert_eq!(r.dump()[0].ops_seen, 0);
        r.unsee(Address::repeat_byte(5));
        assert_eq!(r.dump().len(), 1, "an entity never seen gets no record");
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
        for _ in 0..110 {
            r.seen(a);
        }
        assert_eq!(r.status(a), Throttled);
        r.included(a);
        assert_eq!(r.status(a), Ok);
        let json = serde_json::to_value(r.dump()).unwrap();
        assert_eq!(json[0]["opsSeen"], "0x6e");
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
