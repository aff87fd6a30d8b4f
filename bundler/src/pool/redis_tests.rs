//! What only the shared store has: replicas racing on one pool, claims, snapshots, a Redis
//! crash, and Redis Cluster. Real redis-server processes throughout.

use super::*;
use crate::pool::PoolOperation;
use crate::pool::store_tests::GWEI;
use tora_devnet::redis_server::{RedisCluster, RedisServer};
use tora_redis::RedisTarget;

const ENTRY_POINT: Address = Address::repeat_byte(0xe0);

fn op(sender: u8, nonce: u64) -> PoolOperation {
    crate::pool::store_tests::op(sender, nonce, GWEI, GWEI)
}

async fn replica(target: &RedisTarget, settings: PoolSettings) -> Arc<RedisPool> {
    RedisPool::connect(target, 1, ENTRY_POINT, settings).await.unwrap()
}

fn hashes(ops: Vec<PoolOperation>) -> Vec<B256> {
    ops.into_iter().map(|p| p.hash).collect()
}

/// Eight operations of one unstaked sender sent at once, alternately to two replicas: the
/// sender limit (UREP-010: four) holds across them, and both see the same pool.
async fn replicas_race_on_one_sender(target: RedisTarget) {
    let (a, b) =
        (replica(&target, PoolSettings::default()).await, replica(&target, PoolSettings::default()).await);
    let mut sends = tokio::task::JoinSet::new();
    for nonce in 0..8u64 {
        let pool = if nonce % 2 == 0 { a.clone() } else { b.clone() };
        sends.spawn(async move { pool.add(op(7, nonce)).await });
    }
    let results = sends.join_all().await;
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    let refused: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(accepted, 4, "{results:?}");
    assert!(refused.iter().all(|e| matches!(e, PoolError::SenderLimit { count: 4, .. })), "{refused:?}");
    a.sync().await;
    b.sync().await;
    assert_eq!(hashes(a.dump()), hashes(b.dump()));
    assert_eq!(a.len(), 4);
    let seen = |pool: &RedisPool| pool.dump_reputation()[0].ops_seen;
    assert_eq!((seen(&a), seen(&b)), (4, 4), "each accepted operation counted once, on every replica");
    // An inclusion seen by both replicas' log scans counts once.
    let first = a.dump()[0].hash;
    assert!(a.mark_included(first).await.is_some());
    b.sync().await;
    assert!(b.mark_included(first).await.is_none());
    a.sync().await;
    assert_eq!((a.dump_reputation()[0].ops_included, b.dump_reputation()[0].ops_included), (1, 1));
    assert_eq!(b.len(), 3);
}

#[tokio::test]
async fn two_replicas_share_one_pool_and_its_rules() {
    let redis = RedisServer::start();
    replicas_race_on_one_sender(RedisTarget::Server(redis.url.clone())).await;
}

#[tokio::test]
async fn two_replicas_share_one_pool_on_a_redis_cluster() {
    let cluster = RedisCluster::start();
    let target = RedisTarget::parse(&cluster.urls.join(","));
    assert!(matches!(target, RedisTarget::Cluster(ref seeds) if seeds.len() == 3));
    replicas_race_on_one_sender(target.clone()).await;
    // Claims live in the pool's slot too.
    let settings = PoolSettings { claim_ttl: Duration::from_secs(30), ..Default::default() };
    let (a, b) = (replica(&target, settings).await, replica(&target, settings).await);
    let h = [B256::repeat_byte(1), B256::repeat_byte(2)];
    assert_eq!(a.claim(&h).await.len(), 2);
    assert!(b.claim(&h).await.is_empty());
}

#[tokio::test]
async fn a_claimed_operation_goes_to_no_other_builder_until_released_or_lapsed() {
    let redis = RedisServer::start();
    let target = RedisTarget::Server(redis.url.clone());
    let settings = PoolSettings { claim_ttl: Duration::from_millis(500), ..Default::default() };
    let (a, b) = (replica(&target, settings).await, replica(&target, settings).await);
    let [h1, h2, h3] = [1, 2, 3].map(B256::repeat_byte);
    assert_eq!(a.claim(&[h1, h2]).await, HashSet::from([h1, h2]));
    assert_eq!(b.claim(&[h1, h2, h3]).await, HashSet::from([h3]), "the others are a's");
    // Claiming again renews a's own claims.
    assert_eq!(a.claim(&[h1, h2]).await, HashSet::from([h1, h2]));
    // b cannot release a's claim; a can.
    b.release(&[h1]).await;
    assert!(b.claim(&[h1]).await.is_empty());
    a.release(&[h1]).await;
    assert_eq!(b.claim(&[h1]).await, HashSet::from([h1]));
    // a stops renewing (as a dead builder would): h2 lapses and b may take it.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(b.claim(&[h2]).await, HashSet::from([h2]));
}

#[tokio::test]
async fn a_new_replica_starts_from_the_snapshot_and_the_log_stays_bounded() {
    let redis = RedisServer::start();
    let target = RedisTarget::Server(redis.url.clone());
    let settings = PoolSettings { snapshot_every: 5, ..Default::default() };
    let a = replica(&target, settings).await;
    for sender in 1..=3 {
        for nonce in 0..4 {
            a.add(op(sender, nonce)).await.unwrap();
        }
    }
    let included = a.dump()[0].hash;
    a.mark_included(included).await.unwrap();
    // 13 events: a snapshot at event 10, and the log trimmed to events 10..=13.
    let mut conn =
        redis::Client::open(redis.url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let log_len: u64 = redis::cmd("XLEN").arg(&a.keys.log).query_async(&mut conn).await.unwrap();
    assert_eq!(log_len, 4);
    let c = replica(&target, settings).await;
    assert_eq!(c.len(), 11);
    assert_eq!(hashes(c.dump()), hashes(a.dump()));
    assert_eq!(c.dump_reputation(), a.dump_reputation());
    assert_eq!(c.dump_reputation()[0].ops_included, 1);
    // The new replica writes on from there, and the first sees it.
    c.add(op(4, 0)).await.unwrap();
    a.sync().await;
    assert_eq!(a.len(), 12);
}

#[tokio::test]
async fn the_store_is_ready_while_redis_answers() {
    let redis = RedisServer::start();
    let pool = replica(&RedisTarget::Server(redis.url.clone()), PoolSettings::default()).await;
    assert_eq!(pool.store_ready().await, Ok(()));
    drop(redis);
    let down = pool.store_ready().await.unwrap_err();
    assert!(down.starts_with("mempool store:"), "{down}");
}

#[tokio::test]
async fn a_redis_crash_loses_no_accepted_operation() {
    let mut redis = RedisServer::start_persistent();
    let target = RedisTarget::Server(redis.url.clone());
    let a = replica(&target, PoolSettings::default()).await;
    let mut accepted = Vec::new();
    for nonce in 0..3 {
        accepted.push(a.add(op(1, nonce)).await.unwrap());
    }
    redis.crash_and_restart();
    // The replica reconnects by itself; the first command may meet the closed connection.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let fourth = loop {
        match a.add(op(1, 3)).await {
            Ok(hash) => break hash,
            Err(PoolError::Store(e)) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(%e, "Redis not back yet");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    accepted.push(fourth);
    let fresh = replica(&target, PoolSettings::default()).await;
    assert_eq!(hashes(fresh.dump()), accepted, "every accepted operation, once, in order");
    assert_eq!(fresh.dump_reputation()[0].ops_seen, 4);
}
