//! Budgets in Redis, shared by every paymaster replica. Each check-and-reserve runs as one Lua
//! script, so parallel requests on any number of replicas never overspend a budget.
//!
//! Keys of one policy share the hash tag `{policy id}`, so they live in one cluster slot and a
//! script may touch all of them; the op-hash index is the only cross-slot key.

use super::memory::check_budget;
use alloy::primitives::{Address, B256};
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use tora_core::sponsorship::{
    Budget, BudgetError, MicroTora, Reservation, Spend, SponsorshipPolicy, SponsorshipStore,
};

const PREFIX: &str = "tora:pm";

/// Checks the budgets of one period against its counters and reserves, or says which failed.
const RESERVE: &str = r#"
local amount = tonumber(ARGV[1])
local total = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
local ops = tonumber(redis.call('HGET', KEYS[1], 'ops') or '0')
local user = tonumber(redis.call('GET', KEYS[2]) or '0')
local global_limit, user_limit, max_ops = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if global_limit >= 0 and total + amount > global_limit then return {'global', tostring(total)} end
if user_limit >= 0 and user + amount > user_limit then return {'user', tostring(user)} end
if max_ops >= 0 and ops + 1 > max_ops then return {'ops', tostring(ops)} end
redis.call('HINCRBY', KEYS[1], 'total', amount)
redis.call('HINCRBY', KEYS[1], 'ops', 1)
redis.call('INCRBY', KEYS[2], amount)
redis.call('HSET', KEYS[3], 'amount', ARGV[1], 'period', ARGV[7], 'user', ARGV[8])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[6])
return {'ok'}
"#;

/// Replaces a reservation by the actual cost (settle) or by nothing (release).
const UNRESERVE: &str = r#"
local r = redis.call('HMGET', KEYS[1], 'amount', 'period', 'user')
if not r[1] then return 0 end
local spend = ARGV[1] .. 'spend:' .. r[2]
local user = ARGV[1] .. 'user:' .. r[2] .. ':' .. r[3]
local delta = tonumber(ARGV[2]) - tonumber(r[1])
redis.call('HINCRBY', spend, 'total', delta)
redis.call('INCRBY', user, delta)
if ARGV[4] == 'release' then redis.call('HINCRBY', spend, 'ops', -1) end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[3])
return 1
"#;

#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    reserve: Script,
    unreserve: Script,
}

fn store_err(e: redis::RedisError) -> BudgetError {
    BudgetError::Store(e.to_string())
}

fn policy_prefix(policy_id: &str) -> String {
    format!("{PREFIX}:{{{policy_id}}}:")
}

fn spend_key(policy_id: &str, period: u64) -> String {
    format!("{}spend:{period}", policy_prefix(policy_id))
}

fn user_key(policy_id: &str, period: u64, user: Address) -> String {
    format!("{}user:{period}:{user:#x}", policy_prefix(policy_id))
}

fn reservation_key(policy_id: &str, hash: B256) -> String {
    format!("{}res:{hash}", policy_prefix(policy_id))
}

fn expiry_key(policy_id: &str) -> String {
    format!("{}expiry", policy_prefix(policy_id))
}

fn index_key(hash: B256) -> String {
    format!("{PREFIX}:resindex:{hash}")
}

/// Every id reservations are held under (policies, and the token mode's own limits), so that
/// expired reservations of each are found.
const POLICIES: &str = "tora:pm:policies";
const SETTLED_BLOCK: &str = "tora:pm:settled-block";

fn limit(value: Option<u64>) -> i64 {
    value.map_or(-1, |v| v as i64)
}

impl RedisStore {
    /// Connects (and reconnects on failure) to `url`, e.g. `redis://127.0.0.1:6379`.
    pub async fn connect(url: &str) -> Result<Self, BudgetError> {
        let client = redis::Client::open(url).map_err(store_err)?;
        let connection = ConnectionManager::new(client).await.map_err(store_err)?;
        Ok(Self { connection, reserve: Script::new(RESERVE), unreserve: Script::new(UNRESERVE) })
    }

    async fn unreserve(
        &self,
        policy_id: &str,
        hash: B256,
        actual: MicroTora,
        mode: &str,
    ) -> Result<bool, BudgetError> {
        let mut connection = self.connection.clone();
        let done: i64 = self
            .unreserve
            .key(reservation_key(policy_id, hash))
            .key(expiry_key(policy_id))
            .arg(policy_prefix(policy_id))
            .arg(actual.0)
            .arg(hash.to_string())
            .arg(mode)
            .invoke_async(&mut connection)
            .await
            .map_err(store_err)?;
        let _: i64 = connection.del(index_key(hash)).await.map_err(store_err)?;
        Ok(done == 1)
    }
}

impl SponsorshipStore for RedisStore {
    async fn put_policy(&self, policy: &SponsorshipPolicy) -> Result<(), BudgetError> {
        let json = serde_json::to_string(policy).expect("policies serialise");
        let mut connection = self.connection.clone();
        let _: () = redis::pipe()
            .atomic()
            .set(format!("{PREFIX}:policy:{}", policy.id), json)
            .sadd(POLICIES, &policy.id)
            .query_async(&mut connection)
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn policy(&self, id: &str) -> Result<Option<SponsorshipPolicy>, BudgetError> {
        let mut connection = self.connection.clone();
        let json: Option<String> =
            connection.get(format!("{PREFIX}:policy:{id}")).await.map_err(store_err)?;
        json.map(|j| {
            serde_json::from_str(&j).map_err(|e| BudgetError::Store(format!("corrupt policy {id}: {e}")))
        })
        .transpose()
    }

    async fn reserve(&self, budget: &Budget, r: &Reservation) -> Result<(), BudgetError> {
        // Per-op needs no counter; checking it first keeps the script to the shared state.
        check_budget(
            &Budget { per_op: budget.per_op, ..Budget::default() },
            Spend::default(),
            MicroTora(0),
            r.amount,
        )?;
        let mut connection = self.connection.clone();
        let claimed: bool =
            connection.set_nx(index_key(r.user_op_hash), &r.policy_id).await.map_err(store_err)?;
        if !claimed {
            return Err(BudgetError::Duplicate);
        }
        let outcome: Vec<String> = self
            .reserve
            .key(spend_key(&r.policy_id, r.period))
            .key(user_key(&r.policy_id, r.period, r.user))
            .key(reservation_key(&r.policy_id, r.user_op_hash))
            .key(expiry_key(&r.policy_id))
            .arg(r.amount.0)
            .arg(limit(budget.global.map(|m| m.0)))
            .arg(limit(budget.per_user.map(|m| m.0)))
            .arg(limit(budget.max_ops))
            .arg(r.expires_at)
            .arg(r.user_op_hash.to_string())
            .arg(r.period)
            .arg(format!("{:#x}", r.user))
            .invoke_async(&mut connection)
            .await
            .map_err(store_err)?;
        if outcome.first().map(String::as_str) == Some("ok") {
            let _: i64 = connection.sadd(POLICIES, &r.policy_id).await.map_err(store_err)?;
        }
        let used = |i: usize| MicroTora(outcome.get(i).and_then(|v| v.parse().ok()).unwrap_or(0));
        let refused = match outcome.first().map(String::as_str) {
            Some("ok") => return Ok(()),
            Some("global") => {
                BudgetError::Global { spent: used(1), limit: budget.global.unwrap_or_default() }
            }
            Some("user") => {
                BudgetError::PerUser { spent: used(1), limit: budget.per_user.unwrap_or_default() }
            }
            Some("ops") => BudgetError::OpCount { limit: budget.max_ops.unwrap_or_default() },
            other => BudgetError::Store(format!("unexpected script answer {other:?}")),
        };
        let _: i64 = connection.del(index_key(r.user_op_hash)).await.map_err(store_err)?;
        Err(refused)
    }

    async fn settle(&self, user_op_hash: B256, actual: MicroTora) -> Result<bool, BudgetError> {
        let mut connection = self.connection.clone();
        let policy: Option<String> = connection.get(index_key(user_op_hash)).await.map_err(store_err)?;
        match policy {
            Some(policy_id) => self.unreserve(&policy_id, user_op_hash, actual, "settle").await,
            None => Ok(false),
        }
    }

    async fn release_expired(&self, now: u64) -> Result<u64, BudgetError> {
        let mut connection = self.connection.clone();
        let policies: Vec<String> = connection.smembers(POLICIES).await.map_err(store_err)?;
        let mut released = 0;
        for policy_id in policies {
            // Scores are expiry times; strictly before `now`, as the memory store does.
            let expired: Vec<String> = connection
                .zrangebyscore(expiry_key(&policy_id), "-inf", format!("({now}"))
                .await
                .map_err(store_err)?;
            for hash in expired {
                let Ok(hash) = hash.parse::<B256>() else {
                    continue;
                };
                if self.unreserve(&policy_id, hash, MicroTora(0), "release").await? {
                    released += 1;
                }
            }
        }
        Ok(released)
    }

    async fn spend(&self, policy_id: &str, period: u64) -> Result<Spend, BudgetError> {
        let mut connection = self.connection.clone();
        let (total, ops): (Option<u64>, Option<u64>) = redis::cmd("HMGET")
            .arg(spend_key(policy_id, period))
            .arg("total")
            .arg("ops")
            .query_async(&mut connection)
            .await
            .map_err(store_err)?;
        Ok(Spend { total: MicroTora(total.unwrap_or(0)), ops: ops.unwrap_or(0) })
    }

    async fn settled_block(&self) -> Result<Option<u64>, BudgetError> {
        let mut connection = self.connection.clone();
        connection.get(SETTLED_BLOCK).await.map_err(store_err)
    }

    async fn set_settled_block(&self, block: u64) -> Result<(), BudgetError> {
        let mut connection = self.connection.clone();
        connection.set(SETTLED_BLOCK, block).await.map_err(store_err)
    }

    async fn user_spend(
        &self,
        policy_id: &str,
        period: u64,
        user: Address,
    ) -> Result<MicroTora, BudgetError> {
        let mut connection = self.connection.clone();
        let spent: Option<u64> =
            connection.get(user_key(policy_id, period, user)).await.map_err(store_err)?;
        Ok(MicroTora(spent.unwrap_or(0)))
    }
}
