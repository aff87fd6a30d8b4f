//! Signer leases: which bundler keys this process may sign with now. One process holds all of
//! its keys. Replicas sharing a Redis lease each key there (a key with this replica's name and
//! a TTL, renewed while the replica lives), so two replicas never sign with one key: a replica
//! configured with a key another holds keeps that lane idle, and takes it when the holder
//! stops renewing (it died) or gives it back (it stopped).

use alloy::primitives::Address;
use redis::Script;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};
use tora_redis::{Connection, RedisTarget, connect};

/// How long a lease lasts unless renewed; it is renewed every third of it.
pub const LEASE_TTL: Duration = Duration::from_secs(10);
/// How much sooner than Redis this process counts a lease as lapsed: its clock and Redis's may
/// run apart, and a bundle signed just before the local deadline still has to reach the node.
const LEASE_MARGIN: Duration = Duration::from_secs(2);

/// Takes the lease ARGV[1] for ARGV[2] ms if it is free or already ours. KEYS: the lease.
const TAKE: &str = r#"
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"#;

/// Gives the lease back if it is ours. KEYS: the lease.
const GIVE_BACK: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"#;

/// The keys this process may sign with.
pub struct SignerLeases {
    /// Each key held, and until when: a lease counts only until [`LEASE_MARGIN`] before it
    /// lapses in Redis, reckoned from when its last renewal was sent. So a replica cut off from
    /// Redis stops signing before another can take the key, and one failed renewal does not
    /// drop a lease that is still good.
    held: RwLock<HashMap<Address, Instant>>,
    redis: Option<LeaseStore>,
    /// Given back: renew no more.
    stopped: AtomicBool,
}

struct LeaseStore {
    connection: Connection,
    chain_id: u64,
    owner: String,
    signers: Vec<Address>,
    take: Script,
    give_back: Script,
}

impl LeaseStore {
    fn key(&self, signer: Address) -> String {
        format!("{{tora:lease:{}:{signer:#x}}}", self.chain_id)
    }

    /// Takes or renews every lease it can, into `held`: a lease taken counts until
    /// [`LEASE_MARGIN`] before its TTL from when it was asked for, a refused one (another
    /// replica holds it) is dropped, and one Redis did not answer for keeps its deadline.
    async fn renew(&self, held: &mut HashMap<Address, Instant>) {
        let ttl = u64::try_from(LEASE_TTL.as_millis()).unwrap_or(u64::MAX);
        for &signer in &self.signers {
            let asked = Instant::now();
            let taken: redis::RedisResult<i64> = self
                .take
                .key(self.key(signer))
                .arg(&self.owner)
                .arg(ttl)
                .invoke_async(&mut self.connection.clone())
                .await;
            match taken {
                Ok(1) => {
                    held.insert(signer, asked + LEASE_TTL - LEASE_MARGIN);
                }
                Ok(_) => {
                    held.remove(&signer);
                }
                Err(e) => tracing::warn!(%signer, error = %e, "could not renew the signer lease"),
            }
        }
    }
}

impl SignerLeases {
    /// One process: every key is its own.
    pub fn local(signers: &[Address]) -> Arc<Self> {
        // Never lapses: no other process signs with these keys.
        let forever = Instant::now() + Duration::from_secs(100 * 365 * 24 * 3_600);
        Arc::new(Self {
            held: RwLock::new(signers.iter().map(|&s| (s, forever)).collect()),
            redis: None,
            stopped: AtomicBool::new(false),
        })
    }

    /// Leases in Redis, taken now and renewed every third of [`LEASE_TTL`] until dropped.
    pub async fn in_redis(
        target: &RedisTarget,
        chain_id: u64,
        owner: String,
        signers: &[Address],
    ) -> redis::RedisResult<Arc<Self>> {
        let store = LeaseStore {
            connection: connect(target).await?,
            chain_id,
            owner,
            signers: signers.to_vec(),
            take: Script::new(TAKE),
            give_back: Script::new(GIVE_BACK),
        };
        let mut held = HashMap::new();
        store.renew(&mut held).await;
        tracing::info!(held = ?held.keys().collect::<Vec<_>>(), "signer leases");
        let leases =
            Arc::new(Self { held: RwLock::new(held), redis: Some(store), stopped: AtomicBool::new(false) });
        tokio::spawn(keep(Arc::downgrade(&leases)));
        Ok(leases)
    }

    /// Whether this process may sign with `signer` now.
    pub fn holds(&self, signer: Address) -> bool {
        self.held
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&signer)
            .is_some_and(|&until| Instant::now() < until)
    }

    /// Gives every lease back (a graceful stop), so another replica takes the keys at once.
    pub async fn give_back(&self) {
        let Some(store) = &self.redis else {
            return;
        };
        self.stopped.store(true, Ordering::SeqCst);
        let signers: Vec<Address> =
            std::mem::take(&mut *self.held.write().unwrap_or_else(PoisonError::into_inner))
                .into_keys()
                .collect();
        for signer in signers {
            let given: redis::RedisResult<i64> = store
                .give_back
                .key(store.key(signer))
                .arg(&store.owner)
                .invoke_async(&mut store.connection.clone())
                .await;
            if let Err(e) = given {
                tracing::warn!(%signer, error = %e, "could not give the signer lease back; it lapses");
            }
        }
    }
}

async fn keep(leases: Weak<SignerLeases>) {
    loop {
        tokio::time::sleep(LEASE_TTL / 3).await;
        let Some(leases) = leases.upgrade() else {
            return;
        };
        let Some(store) = &leases.redis else {
            return;
        };
        let before: HashMap<Address, Instant> =
            leases.held.read().unwrap_or_else(PoisonError::into_inner).clone();
        let mut held = before.clone();
        store.renew(&mut held).await;
        if leases.stopped.load(Ordering::SeqCst) {
            return;
        }
        let now = Instant::now();
        let good =
            |map: &HashMap<Address, Instant>, signer: &Address| map.get(signer).is_some_and(|&t| now < t);
        for &signer in &store.signers {
            match (good(&before, &signer), good(&held, &signer)) {
                (false, true) => tracing::info!(%signer, "took the signer lease"),
                (true, false) => tracing::warn!(%signer, "lost the signer lease"),
                _ => {}
            }
        }
        *leases.held.write().unwrap_or_else(PoisonError::into_inner) = held;
    }
}
