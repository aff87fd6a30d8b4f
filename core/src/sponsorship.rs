//! Dapp sponsorship: policies with TORA budgets, and the store that reserves against them
//! atomically. The trait lives here so the paymaster depends on it, not on Redis.

use crate::money::ToraUnits;
use alloy::primitives::{Address, B256, FixedBytes, U256};
use serde::{Deserialize, Serialize};
use std::future::Future;

/// Budgets are counted in micro-TORA (1e-6 TORA = 1e12 base units), rounded up: Redis counts
/// in 64-bit integers and Lua compares in doubles, exact to 2^53, i.e. 9e9 TORA.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MicroTora(pub u64);

/// The largest budget a store can count exactly.
pub const MAX_BUDGET: MicroTora = MicroTora(1 << 53);
const BASE_UNITS_PER_MICRO: u64 = 1_000_000_000_000;

impl MicroTora {
    /// Rounded up, so a budget is never overspent by rounding. `None` past [`MAX_BUDGET`].
    pub fn from_tora_ceil(amount: ToraUnits) -> Option<Self> {
        let micro = amount.0.div_ceil(U256::from(BASE_UNITS_PER_MICRO));
        u64::try_from(micro).ok().filter(|m| *m <= MAX_BUDGET.0).map(MicroTora)
    }

    /// Rounded down (a balance: never credit more than is there), capped at [`MAX_BUDGET`].
    pub fn from_tora_floor(amount: ToraUnits) -> Self {
        let micro = amount.0 / U256::from(BASE_UNITS_PER_MICRO);
        MicroTora(u64::try_from(micro).unwrap_or(u64::MAX).min(MAX_BUDGET.0))
    }

    /// The same amount in TORA base units (exact).
    pub fn to_tora(self) -> ToraUnits {
        ToraUnits(U256::from(self.0) * U256::from(BASE_UNITS_PER_MICRO))
    }
}

/// When a policy's budgets start again (UTC calendar periods).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResetInterval {
    /// Budgets never reset: one period for all time.
    Never,
    /// Every day at 00:00 UTC.
    Daily,
    /// Every Monday at 00:00 UTC.
    Weekly,
    /// On the first of every month at 00:00 UTC.
    Monthly,
}

impl ResetInterval {
    /// A number naming the period that contains `unix_secs`; budgets are counted per period.
    pub fn period(self, unix_secs: u64) -> u64 {
        let days = unix_secs / 86_400;
        match self {
            Self::Never => 0,
            Self::Daily => days,
            // 1970-01-01 was a Thursday: shift so weeks start on Monday.
            Self::Weekly => (days + 3) / 7,
            Self::Monthly => {
                let (year, month) = civil_year_month(days);
                year * 12 + month
            }
        }
    }
}

/// Year and month (1-12) of a day count since 1970-01-01 (Howard Hinnant's civil algorithm).
fn civil_year_month(days: u64) -> (u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month)
}

/// Budgets of one policy; `None` means unlimited.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Budget {
    /// Most the policy may spend per period, over all users.
    pub global: Option<MicroTora>,
    /// Most one user (operation sender) may spend under the policy per period.
    pub per_user: Option<MicroTora>,
    /// Most one operation may cost.
    pub per_op: Option<MicroTora>,
    /// Most operations the policy may pay for per period.
    pub max_ops: Option<u64>,
}

/// A dapp's sponsorship policy: who pays for which calls, within which budgets and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SponsorshipPolicy {
    /// The policy's id, as the ERC-7677 context's `sponsorshipPolicyId` names it.
    pub id: String,
    /// Shown to the user by wallets (ERC-7677 `sponsor`).
    pub name: String,
    /// Icon shown with `name` by wallets (ERC-7677 `sponsor.icon`).
    #[serde(default)]
    pub icon: Option<String>,
    /// The API key subject (dapp) allowed to use this policy.
    pub dapp: String,
    /// Whose TORA deposit in ToraPaymaster pays.
    pub sponsor: Address,
    /// The limits the policy's spending stays within.
    pub budget: Budget,
    /// When the per-period budgets start again.
    pub reset: ResetInterval,
    /// Contracts the wallet may call; empty allows any.
    #[serde(default)]
    pub allowed_targets: Vec<Address>,
    /// Function selectors the wallet may call on them; empty allows any.
    #[serde(default)]
    pub allowed_selectors: Vec<FixedBytes<4>>,
    /// Unix seconds; the policy is usable in `[valid_after, valid_until)`.
    pub valid_after: u64,
    /// Unix seconds from which the policy is no longer usable.
    pub valid_until: u64,
}

/// A signed quote's maximum cost held against the budgets until the operation settles.
///
/// Quotes of one operation (same user and nonce under one budget and period) share one
/// reservation: only one of them can land, since they spend the same nonce. A wallet that asks
/// again (a retry, a later `validUntil`) replaces its hold instead of adding one, so re-quoting
/// cannot fill a budget.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    /// The budget held against: a sponsorship policy's id, or the paymaster's token-mode budget.
    pub policy_id: String,
    /// The budget period, as [`ResetInterval::period`] numbers it.
    pub period: u64,
    /// The operation's sender.
    pub user: Address,
    /// The operation's EntryPoint nonce.
    pub nonce: U256,
    /// This quote's hash: settlement finds the reservation by the hash that landed.
    pub user_op_hash: B256,
    /// The quote's maximum cost, rounded up.
    pub amount: MicroTora,
    /// When the quote expires: an unused reservation is released after it.
    pub expires_at: u64,
    /// The most the user may hold reserved and unsettled under this budget at once, e.g. its
    /// TORA balance in token mode; `None` when nothing backs the holds (a sponsor pays).
    pub cover: Option<MicroTora>,
}

impl Reservation {
    /// Names the operation within its budget: the key its quotes share.
    pub fn slot(&self) -> String {
        format!("{}:{:#x}:{:#x}", self.period, self.user, self.nonce)
    }
}

/// What a policy has used in one period (reservations included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spend {
    /// Amount spent and held.
    pub total: MicroTora,
    /// Operations paid for or held.
    pub ops: u64,
}

/// Why a reservation was refused, or the store failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    /// The policy's [`Budget::global`] for this period would be exceeded.
    #[error("the policy's budget for this period is used up ({spent:?} of {limit:?})")]
    Global {
        /// What the policy had used this period before this reservation.
        spent: MicroTora,
        /// The budget.
        limit: MicroTora,
    },
    /// The user's [`Budget::per_user`] for this period would be exceeded.
    #[error("this user's budget under the policy is used up ({spent:?} of {limit:?})")]
    PerUser {
        /// What the user had used this period before this reservation.
        spent: MicroTora,
        /// The budget.
        limit: MicroTora,
    },
    /// The operation costs more than [`Budget::per_op`].
    #[error("the policy allows {limit:?} per operation")]
    PerOp {
        /// The per-operation limit.
        limit: MicroTora,
    },
    /// The policy's [`Budget::max_ops`] for this period is reached.
    #[error("the policy's operation count for this period is used up ({limit})")]
    OpCount {
        /// The most operations per period.
        limit: u64,
    },
    /// The user's open holds would exceed what covers them ([`Reservation::cover`]).
    #[error("the sender's balance ({balance:?}) does not cover its open quotes ({held:?} with this one)")]
    Uncovered {
        /// The user's holds including this reservation.
        held: MicroTora,
        /// What covers them, e.g. the sender's TORA balance.
        balance: MicroTora,
    },
    /// The store itself failed (e.g. Redis unreachable); the reason.
    #[error("sponsorship store: {0}")]
    Store(String),
}

/// Where policies, budget counters and reservations are kept (Redis in production, memory in
/// tests); every reservation is checked and counted atomically.
pub trait SponsorshipStore: Send + Sync {
    /// Creates or replaces a policy.
    fn put_policy(&self, policy: &SponsorshipPolicy) -> impl Future<Output = Result<(), BudgetError>> + Send;
    /// The policy with this id, `None` if there is none.
    fn policy(&self, id: &str)
    -> impl Future<Output = Result<Option<SponsorshipPolicy>, BudgetError>> + Send;
    /// Checks every budget of `reservation.period` and reserves its amount, atomically. A
    /// reservation of an operation already held (its [`Reservation::slot`]) replaces the hold:
    /// the larger amount and the later expiry, settled by any of its quotes' hashes. With a
    /// [`Reservation::cover`], the user's oldest other holds are displaced until this one fits.
    fn reserve(
        &self,
        budget: &Budget,
        reservation: &Reservation,
    ) -> impl Future<Output = Result<MicroTora, BudgetError>> + Send;
    /// Replaces the reservation that the quote `user_op_hash` belongs to by the actual cost;
    /// the budget id it was held under, `None` if none is held.
    fn settle(
        &self,
        user_op_hash: B256,
        actual: MicroTora,
    ) -> impl Future<Output = Result<Option<String>, BudgetError>> + Send;
    /// Returns reservations whose quotes expired before `now` to their budgets; how many.
    /// `now` is the time of the last settled block, not the clock: an operation can land up to
    /// its quote's expiry, so its reservation goes only once the blocks up to then are read.
    fn release_expired(&self, now: u64) -> impl Future<Output = Result<u64, BudgetError>> + Send;
    /// What the policy (or budget) `policy_id` has used in `period`, reservations included.
    fn spend(&self, policy_id: &str, period: u64) -> impl Future<Output = Result<Spend, BudgetError>> + Send;
    /// The last block whose charges are settled: settlement resumes after it, so blocks mined
    /// while the service was down are still read. `None` before the first.
    fn settled_block(&self) -> impl Future<Output = Result<Option<u64>, BudgetError>> + Send;
    /// Records `block` as the last block whose charges are settled.
    fn set_settled_block(&self, block: u64) -> impl Future<Output = Result<(), BudgetError>> + Send;
    /// What `user` has used under `policy_id` in `period`, reservations included.
    fn user_spend(
        &self,
        policy_id: &str,
        period: u64,
        user: Address,
    ) -> impl Future<Output = Result<MicroTora, BudgetError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_follow_the_utc_calendar() {
        // 2026-11-25 12:00 UTC, a Wednesday.
        let wed = 1_795_608_000;
        assert_eq!(ResetInterval::Never.period(wed), 0);
        assert_eq!(ResetInterval::Daily.period(wed), wed / 86_400);
        assert_eq!(ResetInterval::Monthly.period(wed), 2026 * 12 + 11);
        assert_eq!(ResetInterval::Monthly.period(1_798_761_600), 2027 * 12 + 1, "2027-01-01");
        assert_eq!(ResetInterval::Monthly.period(1_798_761_599), 2026 * 12 + 12, "a second before");
        let week = ResetInterval::Weekly.period(wed);
        assert_eq!(ResetInterval::Weekly.period(wed - 2 * 86_400), week, "Monday the 23rd");
        assert_eq!(ResetInterval::Weekly.period(wed - 3 * 86_400), week - 1, "Sunday the 22nd");
    }

    #[test]
    fn micro_tora_rounds_up_and_bounds_budgets() {
        assert_eq!(MicroTora::from_tora_ceil(ToraUnits(U256::from(1))), Some(MicroTora(1)));
        assert_eq!(
            MicroTora::from_tora_ceil(ToraUnits(U256::from(1_000_000_000_000u64))),
            Some(MicroTora(1))
        );
        assert_eq!(
            MicroTora::from_tora_ceil(ToraUnits(U256::from(1_000_000_000_001u64))),
            Some(MicroTora(2))
        );
        assert_eq!(MicroTora::from_tora_ceil(ToraUnits(U256::ZERO)), Some(MicroTora(0)));
        assert_eq!(MicroTora::from_tora_ceil(ToraUnits(U256::MAX)), None);
        assert_eq!(MicroTora(3).to_tora(), ToraUnits(U256::from(3_000_000_000_000u64)));
    }
}
