//! Budgets in process memory: the embedded default (`tora up`) and a reference for the Redis
//! store, which must behave the same.

use super::rules::{Increase, check_budget, check_cover, check_per_op};
use alloy::primitives::{Address, B256};
use std::collections::HashMap;
use std::sync::Mutex;
use tora_core::sponsorship::{
    Budget, BudgetError, MicroTora, Reservation, Spend, SponsorshipPolicy, SponsorshipStore,
};

/// A [`SponsorshipStore`] in process memory, for one replica; its budgets are lost on restart.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    policies: HashMap<String, SponsorshipPolicy>,
    spend: HashMap<(String, u64), Spend>,
    users: HashMap<(String, u64, Address), MicroTora>,
    /// What each user holds reserved and unsettled per budget, checked against its cover.
    held: HashMap<(String, Address), MicroTora>,
    /// One hold per operation: (policy, slot) to the reservation (largest amount, latest
    /// expiry) and the hashes of every quote that shares it.
    reservations: HashMap<(String, String), (Reservation, Vec<B256>)>,
    by_hash: HashMap<B256, (String, String)>,
    settled_block: Option<u64>,
}

impl State {
    /// Takes a hold off its counters, replacing it by `actual` (settle) or by nothing and its
    /// op (release), and forgets its quotes' hashes.
    fn unreserve(&mut self, key: &(String, String), actual: MicroTora, count_op: bool) -> bool {
        let Some((r, hashes)) = self.reservations.remove(key) else {
            return false;
        };
        for hash in hashes {
            self.by_hash.remove(&hash);
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
        true
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
        let key = (r.policy_id.clone(), r.slot());
        let held_before = state.reservations.get(&key);
        if held_before.is_some_and(|(_, hashes)| hashes.contains(&r.user_op_hash)) {
            return Ok(MicroTora(0));
        }
        let increase = Increase::over(held_before.map(|(held, _)| held), r);
        let spend = state.spend.get(&(r.policy_id.clone(), r.period)).copied().unwrap_or_default();
        let user = state.users.get(&(r.policy_id.clone(), r.period, r.user)).copied().unwrap_or_default();
        let held = state.held.get(&(r.policy_id.clone(), r.user)).copied().unwrap_or_default();
        check_budget(budget, spend, user, increase)?;
        check_cover(r.cover, held, increase)?;

        let entry = state.spend.entry((r.policy_id.clone(), r.period)).or_default();
        entry.total = MicroTora(entry.total.0 + increase.amount.0);
        entry.ops += increase.ops;
        let user = state.users.entry((r.policy_id.clone(), r.period, r.user)).or_default();
        *user = MicroTora(user.0 + increase.amount.0);
        let held = state.held.entry((r.policy_id.clone(), r.user)).or_default();
        *held = MicroTora(held.0 + increase.amount.0);
        let (hold, hashes) = state.reservations.entry(key.clone()).or_insert_with(|| (r.clone(), vec![]));
        hold.amount = hold.amount.max(r.amount);
        hold.expires_at = hold.expires_at.max(r.expires_at);
        hashes.push(r.user_op_hash);
        state.by_hash.insert(r.user_op_hash, key);
        Ok(increase.amount)
    }

    async fn settle(&self, user_op_hash: B256, actual: MicroTora) -> Result<Option<String>, BudgetError> {
        let mut state = self.lock();
        let Some(key) = state.by_hash.get(&user_op_hash).cloned() else {
            return Ok(None);
        };
        Ok(state.unreserve(&key, actual, true).then_some(key.0))
    }

    async fn release_expired(&self, now: u64) -> Result<u64, BudgetError> {
        let mut state = self.lock();
        let expired: Vec<(String, String)> = state
            .reservations
            .iter()
            .filter(|(_, (r, _))| r.expires_at < now)
            .map(|(key, _)| key.clone())
            .collect();
        for key in &expired {
            state.unreserve(key, MicroTora(0), false);
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
