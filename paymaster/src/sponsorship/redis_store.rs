//! Budgets in Redis, shared by every paymaster replica. Each check-and-reserve runs as one Lua
//! script, so parallel requests on any number of replicas never overspend a budget.
//!
//! Keys of one policy share the hash tag `{policy id}`, so they live in one cluster slot and a
//! script may touch all of them; the op-hash index is the only cross-slot key.

use super::rules::check_per_op;
use alloy::primitives::{Address, B256};
use redis::{AsyncCommands, Script};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tora_core::sponsorship::{
    Budget, BudgetError, MicroTora, Reservation, Spend, SponsorshipPolicy, SponsorshipStore,
};

const PREFIX: &str = "tora:pm";

/// `rules::{displace, check_budget}` on the policy's counters, then the hold: a quote of an
/// operation already held (same slot) adds only what it exceeds the hold by, and no operation.
/// The holds a covered quote displaces leave the counters, and their hashes are kept as
/// displaced until they expire, so that settlement still counts a charge under one of them.
/// KEYS: spend, user, held, reservation, expiry, hashes, the user's holds, displaced. ARGV:
/// amount, global, per user, max ops, cover (-1: none), expires at, slot, period, user, hash,
/// policy prefix.
const RESERVE: &str = r#"
if redis.call('SISMEMBER', KEYS[6], ARGV[10]) == 1 then return {'ok', '0'} end
local amount = tonumber(ARGV[1])
local hold = redis.call('HGET', KEYS[4], 'amount')
local added, new_ops = amount, 1
if hold then
  added, new_ops = math.max(0, amount - tonumber(hold)), 0
end
local total = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
local ops = tonumber(redis.call('HGET', KEYS[1], 'ops') or '0')
local user = tonumber(redis.call('GET', KEYS[2]) or '0')
local held = tonumber(redis.call('GET', KEYS[3]) or '0')
local global_limit, user_limit, max_ops = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local cover = tonumber(ARGV[5])
local prefix = ARGV[11]
local displaced = {}
if cover >= 0 and held + added > cover then
  for _, other in ipairs(redis.call('ZRANGE', KEYS[7], 0, -1)) do
    if held + added <= cover then break end
    if other ~= ARGV[7] then
      local r = redis.call('HMGET', prefix .. 'res:' .. other, 'amount', 'period')
      local a = tonumber(r[1] or '0')
      held = held - a
      table.insert(displaced, {other, a, r[2]})
      if r[2] == ARGV[8] then
        total, ops, user = total - a, ops - 1, user - a
      end
    end
  end
  if held + added > cover then return {'cover', string.format('%d', held + added)} end
end
if global_limit >= 0 and total + added > global_limit then return {'global', string.format('%d', total)} end
if user_limit >= 0 and user + added > user_limit then return {'user', string.format('%d', user)} end
if max_ops >= 0 and ops + new_ops > max_ops then return {'ops', string.format('%d', ops)} end
for _, d in ipairs(displaced) do
  local other, a, period = d[1], d[2], d[3]
  local hashes = prefix .. 'reshashes:' .. other
  local expiry = redis.call('ZSCORE', KEYS[5], other) or '0'
  redis.call('HINCRBY', prefix .. 'spend:' .. period, 'total', -a)
  redis.call('HINCRBY', prefix .. 'spend:' .. period, 'ops', -1)
  redis.call('DECRBY', prefix .. 'user:' .. period .. ':' .. ARGV[9], a)
  redis.call('DECRBY', KEYS[3], a)
  for _, h in ipairs(redis.call('SMEMBERS', hashes)) do
    redis.call('ZADD', KEYS[8], expiry, h)
  end
  redis.call('DEL', prefix .. 'res:' .. other, hashes)
  redis.call('ZREM', KEYS[5], other)
  redis.call('ZREM', KEYS[7], other)
end
redis.call('HINCRBY', KEYS[1], 'total', added)
redis.call('HINCRBY', KEYS[1], 'ops', new_ops)
redis.call('INCRBY', KEYS[2], added)
redis.call('INCRBY', KEYS[3], added)
if not hold or amount > tonumber(hold) then
  redis.call('HSET', KEYS[4], 'amount', ARGV[1], 'period', ARGV[8], 'user', ARGV[9])
end
local expiry = redis.call('ZSCORE', KEYS[5], ARGV[7])
if not expiry or tonumber(ARGV[6]) > tonumber(expiry) then
  redis.call('ZADD', KEYS[5], ARGV[6], ARGV[7])
  redis.call('ZADD', KEYS[7], ARGV[6], ARGV[7])
end
redis.call('SADD', KEYS[6], ARGV[10])
redis.call('ZREM', KEYS[8], ARGV[10])
return {'ok', string.format('%d', added)}
"#;

/// Replaces a hold by the actual cost (settle) or by nothing (release); answers the hashes of
/// its quotes, whose index entries the caller deletes (they live outside the policy's slot).
/// Settling by a displaced quote's hash settles its operation's hold if it has one again, and
/// otherwise counts the charge alone.
/// KEYS: reservation, expiry, hashes, displaced. ARGV: policy prefix, actual, slot, mode, the
/// hash that landed (empty on release).
const UNRESERVE: &str = r#"
local r = redis.call('HMGET', KEYS[1], 'amount', 'period', 'user')
local landed = ARGV[5]
if not r[1] then
  if ARGV[4] ~= 'settle' or not redis.call('ZSCORE', KEYS[4], landed) then return {'none'} end
  local period, user = string.match(ARGV[3], '^(%d+):(0x%x+):')
  redis.call('HINCRBY', ARGV[1] .. 'spend:' .. period, 'total', ARGV[2])
  redis.call('HINCRBY', ARGV[1] .. 'spend:' .. period, 'ops', 1)
  redis.call('INCRBY', ARGV[1] .. 'user:' .. period .. ':' .. user, ARGV[2])
  redis.call('ZREM', KEYS[4], landed)
  return {'done', landed}
end
local spend = ARGV[1] .. 'spend:' .. r[2]
local user = ARGV[1] .. 'user:' .. r[2] .. ':' .. r[3]
local held = ARGV[1] .. 'held:' .. r[3]
local delta = tonumber(ARGV[2]) - tonumber(r[1])
redis.call('HINCRBY', spend, 'total', delta)
redis.call('INCRBY', user, delta)
redis.call('DECRBY', held, r[1])
if ARGV[4] == 'release' then redis.call('HINCRBY', spend, 'ops', -1) end
local hashes = redis.call('SMEMBERS', KEYS[3])
redis.call('DEL', KEYS[1], KEYS[3])
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('ZREM', ARGV[1] .. 'holds:' .. r[3], ARGV[3])
if landed ~= '' and redis.call('ZREM', KEYS[4], landed) == 1 then table.insert(hashes, landed) end
table.insert(hashes, 1, 'done')
return hashes
"#;

/// A [`SponsorshipStore`] in Redis, shared by every paymaster replica.
#[derive(Clone)]
pub struct RedisStore {
    connection: tora_redis::Connection,
    reserve: Script,
    unreserve: Script,
    /// Budget ids this process already added to [`POLICIES`]: once each, not once per quote.
    listed: Arc<Mutex<HashSet<String>>>,
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

fn held_key(policy_id: &str, user: Address) -> String {
    format!("{}held:{user:#x}", policy_prefix(policy_id))
}

fn reservation_key(policy_id: &str, slot: &str) -> String {
    format!("{}res:{slot}", policy_prefix(policy_id))
}

fn hashes_key(policy_id: &str, slot: &str) -> String {
    format!("{}reshashes:{slot}", policy_prefix(policy_id))
}

fn holds_key(policy_id: &str, user: Address) -> String {
    format!("{}holds:{user:#x}", policy_prefix(policy_id))
}

fn displaced_key(policy_id: &str) -> String {
    format!("{}displaced", policy_prefix(policy_id))
}

fn expiry_key(policy_id: &str) -> String {
    format!("{}expiry", policy_prefix(policy_id))
}

/// A quote's hash to its hold, as `"{slot} {policy id}"` (a slot has no spaces).
fn index_key(hash: B256) -> String {
    format!("{PREFIX}:resindex:{hash}")
}

/// How long a quote's index entry lives before its reservation is granted: long enough for
/// the reserve script, short enough that refused requests leave nothing for long.
const PENDING_INDEX_TTL_SECS: u64 = 300;

/// Every id reservations are held under (policies, and the token mode's own limits), so that
/// expired reservations of each are found.
const POLICIES: &str = "tora:pm:policies";
const SETTLED_BLOCK: &str = "tora:pm:settled-block";

fn limit(value: Option<u64>) -> i64 {
    value.map_or(-1, |v| v as i64)
}

impl RedisStore {
    /// Connects (and reconnects on failure) to `url`, e.g. `redis://127.0.0.1:6379`, or to a
    /// Redis Cluster (`redis+cluster://host:port`, or several seed URLs comma-separated).
    pub async fn connect(url: &str) -> Result<Self, BudgetError> {
        let connection =
            tora_redis::connect(&tora_redis::RedisTarget::parse(url)).await.map_err(store_err)?;
        Ok(Self {
            connection,
            reserve: Script::new(RESERVE),
            unreserve: Script::new(UNRESERVE),
            listed: Arc::default(),
        })
    }

    /// Lists `policy_id` among those whose expired holds are released, before its first hold.
    async fn list_policy(&self, policy_id: &str) -> Result<(), BudgetError> {
        if self.listed.lock().unwrap_or_else(|p| p.into_inner()).contains(policy_id) {
            return Ok(());
        }
        let mut connection = self.connection.clone();
        let _: i64 = connection.sadd(POLICIES, policy_id).await.map_err(store_err)?;
        self.listed.lock().unwrap_or_else(|p| p.into_inner()).insert(policy_id.to_owned());
        Ok(())
    }

    async fn unreserve(
        &self,
        policy_id: &str,
        slot: &str,
        actual: MicroTora,
        landed: Option<B256>,
    ) -> Result<bool, BudgetError> {
        let mut connection = self.connection.clone();
        let answer: Vec<String> = self
            .unreserve
            .key(reservation_key(policy_id, slot))
            .key(expiry_key(policy_id))
            .key(hashes_key(policy_id, slot))
            .key(displaced_key(policy_id))
            .arg(policy_prefix(policy_id))
            .arg(actual.0)
            .arg(slot)
            .arg(if landed.is_some() { "settle" } else { "release" })
            .arg(landed.map(|h| h.to_string()).unwrap_or_default())
            .invoke_async(&mut connection)
            .await
            .map_err(store_err)?;
        let Some((first, hashes)) = answer.split_first() else {
            return Err(BudgetError::Store("empty unreserve answer".into()));
        };
        if first != "done" {
            return Ok(false);
        }
        self.forget(hashes.iter().filter_map(|h| h.parse::<B256>().ok())).await;
        Ok(true)
    }

    /// Deletes the index entries of quotes that can no longer settle anything. After the
    /// script has committed, so a failure only leaves an entry behind (logged), never undoes or
    /// fails what was settled or released.
    async fn forget(&self, hashes: impl Iterator<Item = B256>) {
        let mut connection = self.connection.clone();
        // One DEL each, not a pipeline: index keys hash to different cluster slots, and a
        // cluster connection refuses a pipeline that spans slots.
        for hash in hashes {
            let deleted: redis::RedisResult<i64> = connection.del(index_key(hash)).await;
            if let Err(e) = deleted {
                tracing::warn!(%hash, error = %e, "could not delete a settled quote's index entry");
            }
        }
    }
}

impl SponsorshipStore for RedisStore {
    async fn put_policy(&self, policy: &SponsorshipPolicy) -> Result<(), BudgetError> {
        let json = serde_json::to_string(policy).expect("policies serialise");
        let mut connection = self.connection.clone();
        // Two writes, not one transaction: the keys live in different cluster slots, and the
        // listing is idempotent (the policy's first hold lists it again if this one failed).
        let () = connection.set(format!("{PREFIX}:policy:{}", policy.id), json).await.map_err(store_err)?;
        let _: i64 = connection.sadd(POLICIES, &policy.id).await.map_err(store_err)?;
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

    async fn reserve(&self, budget: &Budget, r: &Reservation) -> Result<MicroTora, BudgetError> {
        check_per_op(budget, r.amount)?;
        self.list_policy(&r.policy_id).await?;
        let slot = r.slot();
        let mut connection = self.connection.clone();
        // The index first, so that a hold is never without the way to settle it, and only
        // kept once the hold is: a refused request leaves nothing behind. Refusals do not
        // delete it, since a parallel request for the same quote may have been granted.
        let index = index_key(r.user_op_hash);
        // NX: an entry already there says the same (one hash, one slot) and may be one a granted
        // request persisted; overwriting it would put a live quote's index back on a timer.
        let _: Option<String> = redis::cmd("SET")
            .arg(&index)
            .arg(format!("{slot} {}", r.policy_id))
            .arg("NX")
            .arg("EX")
            .arg(PENDING_INDEX_TTL_SECS)
            .query_async(&mut connection)
            .await
            .map_err(store_err)?;
        let outcome: Vec<String> = self
            .reserve
            .key(spend_key(&r.policy_id, r.period))
            .key(user_key(&r.policy_id, r.period, r.user))
            .key(held_key(&r.policy_id, r.user))
            .key(reservation_key(&r.policy_id, &slot))
            .key(expiry_key(&r.policy_id))
            .key(hashes_key(&r.policy_id, &slot))
            .key(holds_key(&r.policy_id, r.user))
            .key(displaced_key(&r.policy_id))
            .arg(r.amount.0)
            .arg(limit(budget.global.map(|m| m.0)))
            .arg(limit(budget.per_user.map(|m| m.0)))
            .arg(limit(budget.max_ops))
            .arg(limit(r.cover.map(|m| m.0)))
            .arg(r.expires_at)
            .arg(&slot)
            .arg(r.period)
            .arg(format!("{:#x}", r.user))
            .arg(r.user_op_hash.to_string())
            .arg(policy_prefix(&r.policy_id))
            .invoke_async(&mut connection)
            .await
            .map_err(store_err)?;
        let used = |i: usize| MicroTora(outcome.get(i).and_then(|v| v.parse().ok()).unwrap_or(0));
        let refused = match outcome.first().map(String::as_str) {
            Some("ok") => {
                // Until this answers, the quote has not reached its caller, so it cannot land.
                let _: bool = connection.persist(&index).await.map_err(store_err)?;
                return Ok(used(1));
            }
            Some("global") => {
                BudgetError::Global { spent: used(1), limit: budget.global.unwrap_or_default() }
            }
            Some("user") => {
                BudgetError::PerUser { spent: used(1), limit: budget.per_user.unwrap_or_default() }
            }
            Some("ops") => BudgetError::OpCount { limit: budget.max_ops.unwrap_or_default() },
            Some("cover") => BudgetError::Uncovered { held: used(1), balance: r.cover.unwrap_or_default() },
            other => BudgetError::Store(format!("unexpected script answer {other:?}")),
        };
        Err(refused)
    }

    async fn settle(&self, user_op_hash: B256, actual: MicroTora) -> Result<Option<String>, BudgetError> {
        let mut connection = self.connection.clone();
        let entry: Option<String> = connection.get(index_key(user_op_hash)).await.map_err(store_err)?;
        let Some((slot, policy_id)) = entry.as_deref().and_then(|e| e.split_once(' ')) else {
            return Ok(None);
        };
        let settled = self.unreserve(policy_id, slot, actual, Some(user_op_hash)).await?;
        Ok(settled.then(|| policy_id.to_owned()))
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
            for slot in expired {
                if self.unreserve(&policy_id, &slot, MicroTora(0), None).await? {
                    released += 1;
                }
            }
            // Displaced quotes past their expiry can no longer land.
            let gone: Vec<String> = connection
                .zrangebyscore(displaced_key(&policy_id), "-inf", format!("({now}"))
                .await
                .map_err(store_err)?;
            if !gone.is_empty() {
                self.forget(gone.iter().filter_map(|h| h.parse::<B256>().ok())).await;
                // Only those read: one displaced meanwhile keeps its index until the next pass.
                let _: i64 = connection.zrem(displaced_key(&policy_id), &gone).await.map_err(store_err)?;
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
