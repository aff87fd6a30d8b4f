//! Budgets in process memory: the embedded default (`tora up`) and a reference for the Redis
//! store, which must behave the same.

use alloy::primitives::{Address, B256};
use std::collections::HashMap;
use std::sync::Mutex;
use tora_core::sponsorship::{
    Budget, BudgetError, MicroTora, Reservation, Spend, SponsorshipPolicy, SponsorshipStore,
};

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    policies: HashMap<String, SponsorshipPolicy>,
    spend: HashMap<(String, u64), Spend>,
    users: HashMap<(String, u64, Address), MicroTora>,
    reservations: HashMap<B256, Reservation>,
    settled_block: Option<u64>,
}

impl State {
    /// Moves a reservation's amount out of its counters (and its op, when released unused).
    fn unreserve(&mut self, r: &Reservation, replace_with: MicroTora, count_op: bool) {
        let spend = self.spend.entry((r.policy_id.clone(), r.period)).or_default();
        spend.total = MicroTora(spend.total.0.saturating_sub(r.amount.0) + replace_with.0);
        if !count_op {
            spend.ops = spend.ops.saturating_sub(1);
        }
        let user = self.users.entry((r.policy_id.clone(), r.period, r.user)).or_default();
        *user = MicroTora(user.0.saturating_sub(r.amount.0) + replace_with.0);
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

    async fn reserve(&self, budget: &Budget, r: &Reservation) -> Result<(), BudgetError> {
        let mut state = self.lock();
        if state.reservations.contains_key(&r.user_op_hash) {
            return Err(BudgetError::Duplicate);
        }
        let spend = state.spend.get(&(r.policy_id.clone(), r.period)).copied().unwrap_or_default();
        let user = state.users.get(&(r.policy_id.clone(), r.period, r.user)).copied().unwrap_or_default();
        check_budget(budget, spend, user, r.amount)?;
        let entry = state.spend.entry((r.policy_id.clone(), r.period)).or_default();
        entry.total = MicroTora(entry.total.0 + r.amount.0);
        entry.ops += 1;
        let user = state.users.entry((r.policy_id.clone(), r.period, r.user)).or_default();
        *user = MicroTora(user.0 + r.amount.0);
        state.reservations.insert(r.user_op_hash, r.clone());
        Ok(())
    }

    async fn settle(&self, user_op_hash: B256, actual: MicroTora) -> Result<bool, BudgetError> {
        let mut state = self.lock();
        let Some(r) = state.reservations.remove(&user_op_hash) else {
            return Ok(false);
        };
        state.unreserve(&r, actual, true);
        Ok(true)
    }

    async fn release_expired(&self, now: u64) -> Result<u64, BudgetError> {
        let mut state = self.lock();
        let expired: Vec<B256> =
            state.reservations.values().filter(|r| r.expires_at < now).map(|r| r.user_op_hash).collect();
        for hash in &expired {
            let r = state.reservations.remove(hash).expect("listed above");
            state.unreserve(&r, MicroTora(0), false);
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

/// The budget rules, in the order a dapp would want them reported. The Redis store's Lua script
/// applies the same rules to its own counters.
pub fn check_budget(
    budget: &Budget,
    spend: Spend,
    user: MicroTora,
    amount: MicroTora,
) -> Result<(), BudgetError> {
    if let Some(limit) = budget.per_op
        && amount > limit
    {
        return Err(BudgetError::PerOp { limit });
    }
    if let Some(limit) = budget.global
        && spend.total.0 + amount.0 > limit.0
    {
        return Err(BudgetError::Global { spent: spend.total, limit });
    }
    if let Some(limit) = budget.per_user
        && user.0 + amount.0 > limit.0
    {
        return Err(BudgetError::PerUser { spent: user, limit });
    }
    if let Some(limit) = budget.max_ops
        && spend.ops + 1 > limit
    {
        return Err(BudgetError::OpCount { limit });
    }
    Ok(())
}
