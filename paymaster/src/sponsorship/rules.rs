//! The budget rules both stores apply: the memory store in Rust under its lock, the Redis
//! store in its reserve script (which mirrors these functions line by line) and here.

use tora_core::sponsorship::{Budget, BudgetError, MicroTora, Reservation, Spend};

/// What a reservation adds to the counters: all of it for a new operation; for another quote
/// of an operation already held, only what it exceeds the hold by, and no operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Increase {
    /// Micro-TORA added to the budget's and the user's counters.
    pub amount: MicroTora,
    /// Operations added to the op count: 1 for a new operation, 0 for another quote of one held.
    pub ops: u64,
}

impl Increase {
    /// What `r` adds over `held`, the hold already kept for the same operation, if any.
    pub fn over(held: Option<&Reservation>, r: &Reservation) -> Self {
        match held {
            None => Self { amount: r.amount, ops: 1 },
            Some(held) => Self { amount: MicroTora(r.amount.0.saturating_sub(held.amount.0)), ops: 0 },
        }
    }
}

/// The per-operation limit, which needs no counter.
pub fn check_per_op(budget: &Budget, amount: MicroTora) -> Result<(), BudgetError> {
    match budget.per_op {
        Some(limit) if amount > limit => Err(BudgetError::PerOp { limit }),
        _ => Ok(()),
    }
}

/// The counted budget rules, in the order a dapp would want them reported. The Redis store's
/// Lua script applies the same rules to its own counters.
pub fn check_budget(
    budget: &Budget,
    spend: Spend,
    user: MicroTora,
    increase: Increase,
) -> Result<(), BudgetError> {
    if let Some(limit) = budget.global
        && spend.total.0 + increase.amount.0 > limit.0
    {
        return Err(BudgetError::Global { spent: spend.total, limit });
    }
    if let Some(limit) = budget.per_user
        && user.0 + increase.amount.0 > limit.0
    {
        return Err(BudgetError::PerUser { spent: user, limit });
    }
    if let Some(limit) = budget.max_ops
        && spend.ops + increase.ops > limit
    {
        return Err(BudgetError::OpCount { limit });
    }
    Ok(())
}

/// Which of the user's other holds a new quote displaces so that all its holds stay within the
/// cover (its balance in token mode): the oldest first (`others` in order of expiry), only as
/// many as needed, none when no cover applies. Uncovered when even displacing every other hold
/// leaves the quote over the cover.
///
/// Why displace rather than refuse: anyone may ask for a token-mode quote naming any sender, so
/// refusing would let a stranger block a wallet by holding quotes on nonce keys it never uses.
/// The newest quote wins instead. A displaced quote stays valid on chain but cannot take more
/// than the sender's balance (ToraPaymaster pre-charges it in validation); if it lands,
/// settlement counts its charge by its hash like any other.
pub fn displace<S>(
    cover: Option<MicroTora>,
    held: MicroTora,
    increase: Increase,
    others: impl IntoIterator<Item = (S, MicroTora)>,
) -> Result<Vec<S>, BudgetError> {
    let Some(balance) = cover else {
        return Ok(vec![]);
    };
    let mut held = held.0;
    let mut out = Vec::new();
    let mut others = others.into_iter();
    while held + increase.amount.0 > balance.0 {
        let Some((slot, amount)) = others.next() else {
            return Err(BudgetError::Uncovered { held: MicroTora(held + increase.amount.0), balance });
        };
        held = held.saturating_sub(amount.0);
        out.push(slot);
    }
    Ok(out)
}
