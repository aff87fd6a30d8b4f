//! Budgets in process memory: the embedded default (`tora up`) and a reference for the Redis
//! store, which must behave the same.

use super::rules::{Increase, check_budget, check_per_op, displace};
use alloy::primitives::{Address, B256};
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use tora_core::sponsorship::{
    Budget, BudgetError, MicroTora, Reservation, Spend, SponsorshipPolicy, SponsorshipStore,
};

/// A [`SponsorshipStore`] in process memory, for one replica; its budgets are lost on restart.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

/// (policy, slot): one operation's hold.
type HoldKey = (String, String);

#[derive(Default)]
struct State {
    policies: HashMap<String, SponsorshipPolicy>,
    spend: HashMap<(String, u64), Spend>,
    users: HashMap<(String, u64, Address), MicroTora>,
    /// What each user holds reserved and unsettled per budget, checked against its cover.
    held: HashMap<(String, Address), MicroTora>,
    /// One hold per operation: the reservation (largest amount, latest expiry) and the hashes
    /// of every quote that shares it.
    reservations: HashMap<HoldKey, (Reservation, Vec<B256>)>,
    /// Each user's holds per budget in the order they expire, the order they are displaced in.
    holds_of: HashMap<(String, Address), BTreeSet<(u64, String)>>,
    by_hash: HashMap<B256, HoldKey>,
    /// Quotes whose hold a newer quote displaced: still valid on chain until they expire, so
    /// a charge under one of them is counted when it lands.
    displaced: HashMap<B256, Displaced>,
    settled_block: Option<u64>,
}

/// A displaced quote (its hold is `by_hash`'s entry): the period and user its charge is counted
/// under, and when it stops being valid.
struct Displaced {
    period: u64,
    user: Address,
    expires_at: u64,
}

impl State {
    /// Takes a hold off its counters, replacing it by `actual` (settle) or by nothing and its
    /// op (release), and answers its quotes' hashes, which no longer find it.
    fn unreserve(
        &mut self,
        key: &HoldKey,
        actual: MicroTora,
        count_op: bool,
    ) -> Option<(Reservation, Vec<B256>)> {
        let (r, hashes) = self.reservations.remove(key)?;
        for hash in &hashes {
            self.by_hash.remove(hash);
        }
        if let Some(holds) = self.holds_of.get_mut(&(r.policy_id.clone(), r.user)) {
            holds.remove(&(r.expires_at, key.1.clone()));
        }
        let spend = self.spend.entry((r.policy_id.clone(), r.period)).or_default();
        spend.total = MicroTora(spend.total.0.saturating_sub(r.amount.0) + actual.0);
        if !count_op {
            spend.ops = spend.ops.saturating_sub(1);
        }
        let user = self.users.entry((r.policy_id.clone(), r.period, r.user)).or_default();
        *user = MicroTora(user.0.saturating_sub(r.amount.0) + actual.0);
        let held = self.held.entry((r.policy_id.clone(), r.user)).or_default();
        *held = MicroTora(held.0.saturating_sub(r.amount.0));
        Some((r, hashes))
    }

    /// Counts the charge of a displaced quote of `policy` that landed: its operation, once.
    fn settle_displaced(&mut self, policy: &str, d: &Displaced, actual: MicroTora) {
        let spend = self.spend.entry((policy.to_owned(), d.period)).or_default();
        spend.total = MicroTora(spend.total.0 + actual.0);
        spend.ops += 1;
        let user = self.users.entry((policy.to_owned(), d.period, d.user)).or_default();
        *user = MicroTora(user.0 + actual.0);
    }
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave counters half-written: every update
        // below is a few integer writes with nothing that can panic in between.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl SponsorshipStore for MemoryStore {
    async fn put_policy(&self, policy: &SponsorshipPolicy) -> Result<(), BudgetError> {
        self.lock().policies.insert(policy.id.clone(), policy.clone());
        Ok(())
    }

    async fn policy(&self, id: &str) -> Result<Option<SponsorshipPolicy>, BudgetError> {
        Ok(self.lock().policies.get(id).cloned())
    }

    async fn reserve(&self, budget: &Budget, r: &Reservation) -> Result<MicroTora, BudgetError> {
        check_per_op(budget, r.amount)?;
        let mut guard = self.lock();
        let state = &mut *guard;
        let slot = r.slot();
        let key = (r.policy_id.clone(), slot.clone());
        let user_key = (r.policy_id.clone(), r.user);
        let held_before = state.reservations.get(&key);
        if held_before.is_some_and(|(_, hashes)| hashes.contains(&r.user_op_hash)) {
            return Ok(MicroTora(0));
        }
        let increase = Increase::over(held_before.map(|(held, _)| held), r);
        let held = state.held.get(&user_key).copied().unwrap_or_default();
        let others =
            state.holds_of.get(&user_key).into_iter().flatten().filter(|(_, s)| *s != slot).map(|(_, s)| {
                let other = (r.policy_id.clone(), s.clone());
                (other.clone(), state.reservations.get(&other).map_or(MicroTora(0), |(h, _)| h.amount))
            });
        let displaced = displace(r.cover, held, increase, others)?;
        // The budget is checked as it stands once those holds are gone.
        let mut spend = state.spend.get(&(r.policy_id.clone(), r.period)).copied().unwrap_or_default();
        let mut user = state.users.get(&(r.policy_id.clone(), r.period, r.user)).copied().unwrap_or_default();
        for (h, _) in
            displaced.iter().filter_map(|k| state.reservations.get(k)).filter(|(h, _)| h.period == r.period)
        {
            spend = Spend {
                total: MicroTora(spend.total.0.saturating_sub(h.amount.0)),
                ops: spend.ops.saturating_sub(1),
            };
            user = MicroTora(user.0.saturating_sub(h.amount.0));
        }
        check_budget(budget, spend, user, increase)?;

        for other in &displaced {
            let Some((hold, hashes)) = state.unreserve(other, MicroTora(0), false) else { continue };
            for hash in hashes {
                let d = Displaced { period: hold.period, user: hold.user, expires_at: hold.expires_at };
                state.by_hash.insert(hash, other.clone());
                state.displaced.insert(hash, d);
            }
        }
        let entry = state.spend.entry((r.policy_id.clone(), r.period)).or_default();
        entry.total = MicroTora(entry.total.0 + increase.amount.0);
        entry.ops += increase.ops;
        let user = state.users.entry((r.policy_id.clone(), r.period, r.user)).or_default();
        *user = MicroTora(user.0 + increase.amount.0);
        let held = state.held.entry(user_key.clone()).or_default();
        *held = MicroTora(held.0 + increase.amount.0);
        let (hold, hashes) = state.reservations.entry(key.clone()).or_insert_with(|| (r.clone(), vec![]));
        let holds = state.holds_of.entry(user_key).or_default();
        holds.remove(&(hold.expires_at, slot.clone()));
        hold.amount = hold.amount.max(r.amount);
        hold.expires_at = hold.expires_at.max(r.expires_at);
        holds.insert((hold.expires_at, slot));
        hashes.push(r.user_op_hash);
        state.displaced.remove(&r.user_op_hash);
        state.by_hash.insert(r.user_op_hash, key);
        Ok(increase.amount)
    }

    async fn settle(&self, user_op_hash: B256, actual: MicroTora) -> Result<Option<String>, BudgetError> {
        let mut state = self.lock();
        let Some(key) = state.by_hash.get(&user_op_hash).cloned() else {
            return Ok(None);
        };
        let displaced = state.displaced.remove(&user_op_hash);
        if state.unreserve(&key, actual, true).is_some() {
            // The operation landed: a newer hold of the same operation is settled by it too.
            state.by_hash.remove(&user_op_hash);
        } else if let Some(d) = displaced {
            state.by_hash.remove(&user_op_hash);
            state.settle_displaced(&key.0, &d, actual);
        } else {
            return Ok(None);
        }
        Ok(Some(key.0))
    }

    async fn release_expired(&self, now: u64) -> Result<u64, BudgetError> {
        let mut state = self.lock();
        let expired: Vec<HoldKey> = state
            .reservations
            .iter()
            .filter(|(_, (r, _))| r.expires_at < now)
            .map(|(key, _)| key.clone())
            .collect();
        for key in &expired {
            state.unreserve(key, MicroTora(0), false);
        }
        let gone: Vec<B256> =
            state.displaced.iter().filter(|(_, d)| d.expires_at < now).map(|(hash, _)| *hash).collect();
        for hash in gone {
            // Expired, it can no longer land.
            state.displaced.remove(&hash);
            state.by_hash.remove(&hash);
        }
        Ok(expired.len() as u64)
    }

    async fn spend(&self, policy_id: &str, period: u64) -> Result<Spend, BudgetError> {
        Ok(self.lock().spend.get(&(policy_id.to_owned(), period)).copied().unwrap_or_default())
    }

    async fn settled_block(&self) -> Result<Option<u64>, BudgetError> {
        Ok(self.lock().settled_block)
    }

    async fn set_settled_block(&self, block: u64) -> Result<(), BudgetError> {
        self.lock().settled_block = Some(block);
        Ok(())
    }

    async fn user_spend(
        &self,
        policy_id: &str,
        period: u64,
        user: Address,
    ) -> Result<MicroTora, BudgetError> {
        Ok(self.lock().users.get(&(policy_id.to_owned(), period, user)).copied().unwrap_or_default())
    }
}
