//! The Redis store: one pool shared by every bundler replica.
//!
//! The pool's changes are a numbered log in Redis (a stream, entry `n-0` for event n) and each
//! replica folds the log into its own [`PoolState`], so reads are local and cost no round trip.
//! A write checks its rules on the replica's state at event n and is appended only if the log
//! still ends at n (one Lua script: compare and append); otherwise the replica reads what the
//! others wrote and checks again. So the ERC-7562 rules hold exactly across replicas, with the
//! one rule implementation in `state`.
//!
//! Every `snapshot_every` events the writer of that event stores its state whole and trims the
//! log before it, so the log stays bounded and a new replica starts from the snapshot. Claims
//! (which builder holds an operation for a bundle) are a hash of owner and deadline, with
//! deadlines read from the Redis clock so replicas' clocks need not agree.
//!
//! Every key of one pool carries the hash tag `{tora:pool:<chain>:<entry point>}`: they share a
//! cluster slot, so the scripts work on Redis Cluster as on one server.

use super::{Applied, Mempool, PoolError, PoolEvent, PoolSettings, PoolSnapshot, PoolState};
use alloy::primitives::{Address, B256};
use redis::Script;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;
use tora_redis::{Connection, RedisTarget, connect, replica_name};

/// How often a replica reads what the others wrote: the most its reads trail them by.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(20);
/// Log entries read per round trip while catching up.
const READ_BATCH: usize = 1_000;
/// Compare-and-append attempts before a write gives up (each lost race means another replica
/// wrote in between; dozens in a row mean the store is unusable).
const MAX_ATTEMPTS: usize = 64;

/// Appends event ARGV[2] as number ARGV[1] + 1 if the log's last event is number ARGV[1].
/// KEYS: sequence, log. Returns the new number, or -(the last number) on a lost race.
const APPEND: &str = r#"
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if last ~= tonumber(ARGV[1]) then return -last end
local n = last + 1
redis.call('SET', KEYS[1], string.format('%d', n))
redis.call('XADD', KEYS[2], string.format('%d-0', n), 'e', ARGV[2])
return n
"#;

/// Stores snapshot ARGV[2] of event ARGV[1] unless a newer one is stored, and trims the log
/// before it. KEYS: snapshot, log.
const SNAPSHOT: &str = r#"
local stored = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if stored >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'state', ARGV[2])
redis.call('XTRIM', KEYS[2], 'MINID', ARGV[1] .. '-0')
return 1
"#;

/// Claims each hash ARGV[3..] for owner ARGV[1] for ARGV[2] ms, unless another owner's claim
/// is still live; returns the hashes claimed. KEYS: claims.
const CLAIM: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = string.format('%d', now + tonumber(ARGV[2]))
local got = {}
for i = 3, #ARGV do
  local held = redis.call('HGET', KEYS[1], ARGV[i])
  local free = true
  if held then
    local space = string.find(held, ' ')
    local owner, deadline = string.sub(held, 1, space - 1), tonumber(string.sub(held, space + 1))
    free = owner == ARGV[1] or deadline <= now
  end
  if free then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[1] .. ' ' .. until_ms)
    table.insert(got, ARGV[i])
  end
end
return got
"#;

/// Drops owner ARGV[1]'s claims on hashes ARGV[2..], and every lapsed claim of anyone on
/// them. KEYS: claims.
const RELEASE: &str = r#"
for i = 2, #ARGV do
  local held = redis.call('HGET', KEYS[1], ARGV[i])
  if held and string.sub(held, 1, #ARGV[1] + 1) == ARGV[1] .. ' ' then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return 1
"#;

/// Drops every lapsed claim (of a builder that died, or of operations that left the pool
/// under another builder's claim). KEYS: claims.
const SWEEP: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local space = string.find(all[i + 1], ' ')
  if tonumber(string.sub(all[i + 1], space + 1)) <= now then redis.call('HDEL', KEYS[1], all[i]) end
end
return 1
"#;

fn store_err(e: impl std::fmt::Display) -> PoolError {
    PoolError::Store(e.to_string())
}

/// The keys of one pool, all in one cluster slot.
struct Keys {
    seq: String,
    log: String,
    snapshot: String,
    claims: String,
}

impl Keys {
    fn new(chain_id: u64, entry_point: Address) -> Self {
        let tag = format!("{{tora:pool:{chain_id}:{entry_point:#x}}}");
        Self {
            seq: format!("{tag}:seq"),
            log: format!("{tag}:log"),
            snapshot: format!("{tag}:snapshot"),
            claims: format!("{tag}:claims"),
        }
    }
}

/// This replica's copy of the shared state: the fold of the log's first `applied` events.
struct Replica {
    state: PoolState,
    applied: u64,
}

/// The [`Mempool`] of one EntryPoint kept in Redis and shared by every replica that names
/// the same chain and EntryPoint.
pub struct RedisPool {
    settings: PoolSettings,
    keys: Keys,
    connection: Connection,
    /// This replica's name on its claims: unique per process start.
    owner: String,
    replica: Mutex<Replica>,
    /// One reader or writer of the log at a time in this process, so that an event is applied
    /// once and a writer's own event reaches it with its result.
    log: tokio::sync::Mutex<()>,
    append: Script,
    snapshot: Script,
    claim: Script,
    release: Script,
    sweep: Script,
}

impl RedisPool {
    /// Connects, loads the pool as the other replicas left it, and keeps reading their
    /// writes every [`SYNC_INTERVAL`] until the pool is dropped.
    pub async fn connect(
        target: &RedisTarget,
        chain_id: u64,
        entry_point: Address,
        settings: PoolSettings,
    ) -> Result<Arc<Self>, PoolError> {
        let pool = Arc::new(Self {
            settings,
            keys: Keys::new(chain_id, entry_point),
            connection: connect(target).await.map_err(store_err)?,
            owner: replica_name(),
            replica: Mutex::new(Replica { state: PoolState::new(settings), applied: 0 }),
            log: tokio::sync::Mutex::new(()),
            append: Script::new(APPEND),
            snapshot: Script::new(SNAPSHOT),
            claim: Script::new(CLAIM),
            release: Script::new(RELEASE),
            sweep: Script::new(SWEEP),
        });
        pool.catch_up().await?;
        tokio::spawn(follow(Arc::downgrade(&pool)));
        Ok(pool)
    }

    fn lock(&self) -> MutexGuard<'_, Replica> {
        // Applying an event leaves the state consistent before it can panic.
        self.replica.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn conn(&self) -> Connection {
        self.connection.clone()
    }

    /// Applies every event other replicas appended since the last one applied here. Callers
    /// hold `self.log`.
    async fn catch_up(&self) -> Result<(), PoolError> {
        loop {
            let from = self.lock().applied + 1;
            let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
                .arg(&self.keys.log)
                .arg(format!("{from}-0"))
                .arg("+")
                .arg("COUNT")
                .arg(READ_BATCH)
                .query_async(&mut self.conn())
                .await
                .map_err(store_err)?;
            let read = entries.len();
            if entries.first().is_some_and(|(id, _)| sequence(id) != Some(from)) {
                // Trimmed away before this replica read it: start from the snapshot.
                self.restore().await?;
                continue;
            }
            let mut replica = self.lock();
            for (id, fields) in entries {
                let (Some(n), Some(json)) = (sequence(&id), fields.get(1)) else {
                    return Err(store_err(format!("malformed pool log entry {id}")));
                };
                let event: PoolEvent = serde_json::from_str(json).map_err(store_err)?;
                replica.state.apply(event);
                replica.applied = n;
            }
            if read < READ_BATCH {
                return Ok(());
            }
        }
    }

    /// Replaces this replica's state by the stored snapshot.
    async fn restore(&self) -> Result<(), PoolError> {
        let (seq, json): (Option<u64>, Option<String>) = redis::cmd("HMGET")
            .arg(&self.keys.snapshot)
            .arg("seq")
            .arg("state")
            .query_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        let (Some(seq), Some(json)) = (seq, json) else {
            return Err(store_err("the pool log was trimmed but no snapshot is stored"));
        };
        let snapshot: PoolSnapshot = serde_json::from_str(&json).map_err(store_err)?;
        let mut replica = self.lock();
        if seq < replica.applied {
            return Err(store_err(format!(
                "the stored pool (event {seq}) is older than this replica's (event {}): was Redis restarted without persistence?",
                replica.applied
            )));
        }
        *replica = Replica { state: PoolState::restore(self.settings, snapshot), applied: seq };
        Ok(())
    }

    async fn store_snapshot(&self, seq: u64, json: String) {
        let stored: redis::RedisResult<i64> = self
            .snapshot
            .key(&self.keys.snapshot)
            .key(&self.keys.log)
            .arg(seq)
            .arg(json)
            .invoke_async(&mut self.conn())
            .await;
        if let Err(e) = stored {
            // The log keeps growing until the next snapshot works; nothing is lost.
            tracing::warn!(error = %e, seq, "could not store the pool snapshot");
        }
    }
}

/// The event number of stream entry id `n-0`.
fn sequence(id: &str) -> Option<u64> {
    id.split_once('-').and_then(|(n, _)| n.parse().ok())
}

/// Reads the other replicas' writes until the pool is dropped; now and then drops lapsed
/// claims.
async fn follow(pool: Weak<RedisPool>) {
    let mut ticks = 0u64;
    loop {
        tokio::time::sleep(SYNC_INTERVAL).await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        pool.sync().await;
        ticks += 1;
        if ticks.is_multiple_of(500) {
            let swept: redis::RedisResult<i64> =
                pool.sweep.key(&pool.keys.claims).invoke_async(&mut pool.conn()).await;
            if let Err(e) = swept {
                tracing::debug!(error = %e, "could not sweep lapsed claims");
            }
        }
    }
}

impl Mempool for RedisPool {
    fn read<R>(&self, f: impl FnOnce(&PoolState) -> R) -> R {
        f(&self.lock().state)
    }

    async fn write(
        &self,
        mut make: impl FnMut(&PoolState) -> Result<PoolEvent, PoolError> + Send,
    ) -> Result<Applied, PoolError> {
        let _log = self.log.lock().await;
        // The follower keeps this replica within SYNC_INTERVAL of the log, so the first try goes
        // straight to the compare-and-append (one round trip): a stale state cannot slip a
        // write through, since the append is refused unless the log still ends where this
        // replica's state does. A refusal by the rules is only trusted on a state just read.
        let mut caught_up = false;
        for _ in 0..MAX_ATTEMPTS {
            let (made, expected) = {
                let replica = self.lock();
                (make(&replica.state), replica.applied)
            };
            let event = match made {
                Ok(event) => event,
                Err(refusal) if caught_up => return Err(refusal),
                Err(_) => {
                    self.catch_up().await?;
                    caught_up = true;
                    continue;
                }
            };
            let json = serde_json::to_string(&event).map_err(store_err)?;
            let n: i64 = self
                .append
                .key(&self.keys.seq)
                .key(&self.keys.log)
                .arg(expected)
                .arg(json)
                .invoke_async(&mut self.conn())
                .await
                .map_err(store_err)?;
            let Ok(n) = u64::try_from(n) else {
                if n.unsigned_abs() < expected {
                    return Err(store_err(format!(
                        "the pool log ends at event {} but this replica applied {expected}: was Redis restarted without persistence?",
                        n.unsigned_abs()
                    )));
                }
                // Another replica wrote first: read it and check the rules again.
                self.catch_up().await?;
                caught_up = true;
                continue;
            };
            let (applied, snapshot) = {
                let mut replica = self.lock();
                let applied = replica.state.apply(event);
                replica.applied = n;
                let snapshot = n
                    .is_multiple_of(self.settings.snapshot_every.max(1))
                    .then(|| serde_json::to_string(&replica.state.snapshot()));
                (applied, snapshot)
            };
            if let Some(json) = snapshot {
                self.store_snapshot(n, json.map_err(store_err)?).await;
            }
            return Ok(applied);
        }
        Err(store_err(format!("{MAX_ATTEMPTS} writes in a row lost the race to other replicas")))
    }

    async fn sync(&self) {
        let _log = self.log.lock().await;
        if let Err(e) = self.catch_up().await {
            tracing::warn!(error = %e, "could not read the shared pool's new events");
        }
    }

    async fn claim(&self, hashes: &[B256]) -> HashSet<B256> {
        if hashes.is_empty() {
            return HashSet::new();
        }
        let mut invocation = self.claim.key(&self.keys.claims);
        invocation
            .arg(&self.owner)
            .arg(u64::try_from(self.settings.claim_ttl.as_millis()).unwrap_or(u64::MAX));
        for hash in hashes {
            invocation.arg(format!("{hash:#x}"));
        }
        let claimed: redis::RedisResult<Vec<String>> = invocation.invoke_async(&mut self.conn()).await;
        match claimed {
            Ok(claimed) => claimed.iter().filter_map(|h| h.parse().ok()).collect(),
            Err(e) => {
                // Unclaimed means not bundled now: the operations wait for the next try.
                tracing::warn!(error = %e, "could not claim operations for a bundle");
                HashSet::new()
            }
        }
    }

    fn claim_ttl(&self) -> Duration {
        self.settings.claim_ttl
    }

    async fn store_ready(&self) -> Result<(), String> {
        let last: redis::RedisResult<Option<u64>> =
            redis::cmd("GET").arg(&self.keys.seq).query_async(&mut self.conn()).await;
        last.map(|_| ()).map_err(|e| format!("mempool store: {e}"))
    }

    async fn release(&self, hashes: &[B256]) {
        if hashes.is_empty() {
            return;
        }
        let mut invocation = self.release.key(&self.keys.claims);
        invocation.arg(&self.owner);
        for hash in hashes {
            invocation.arg(format!("{hash:#x}"));
        }
        let released: redis::RedisResult<i64> = invocation.invoke_async(&mut self.conn()).await;
        if let Err(e) = released {
            // The claims lapse after CLAIM_TTL.
            tracing::warn!(error = %e, "could not release claimed operations");
        }
    }
}

#[cfg(test)]
#[path = "redis_tests.rs"]
mod tests;
