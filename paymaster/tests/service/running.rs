//! The service as `tora paymaster` starts it (the real server, settlement loop and Redis), for
//! the tests that need the whole process rather than a router.

use rust_decimal::Decimal;
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;
use tora_core::money::ToraUnits;
use tora_devnet::harness::{Harness, tora};
use tora_devnet::keys;
use tora_paymaster::config::TokenLimits;
use tora_paymaster::gas_bounds::GasBounds;
use tora_paymaster::pricing::Markup;
use tora_paymaster::server::{PaymasterSettings, RunningPaymaster, start};
use tora_paymaster::signer_key::SignerKey;

/// Blocks settlement waits below the head in these tests.
pub(crate) const CONFIRMATIONS: u64 = 2;

/// The service as `tora paymaster` runs it, on Redis, with the test kit's API key secret.
pub(crate) async fn start_on_redis(h: &Harness, redis_url: &str) -> RunningPaymaster {
    start(settings(h, redis_url)).await.unwrap()
}

pub(crate) fn settings(h: &Harness, redis_url: &str) -> PaymasterSettings {
    PaymasterSettings {
        deployment: h.devnet.deployment.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: None,
        markup: Markup::new(Decimal::from_str("0.05").unwrap()).unwrap(),
        heartbeat: Duration::from_secs(3_600),
        second_feed: None,
        price_ttl: Duration::from_millis(200),
        quote_validity: Duration::from_secs(120),
        max_token_cost_per_op: ToraUnits(tora(1_000)),
        gas_bounds: GasBounds::default(),
        token_limits: TokenLimits::none(),
        redis_url: Some(redis_url.to_owned()),
        signer: SignerKey::from_hex(&keys::PAYMASTER_SIGNER.to_string()).unwrap(),
        api_key_secrets: HashMap::from([(
            crate::common::KEY_ID.to_owned(),
            crate::common::KEY_SECRET.to_vec(),
        )]),
        settlement_interval: Duration::from_millis(100),
        confirmations: CONFIRMATIONS,
        limits: Default::default(),
    }
}

/// Aborts the service's tasks.
pub(crate) fn stop(running: RunningPaymaster) {
    for task in running.tasks {
        task.abort();
    }
}
/// With `--admin-listen`, /admin answers on its own address only: the public address (the
/// one a load balancer routes) has no /admin, and still serves JSON-RPC and /health. Before,
/// /admin always shared the public port.
#[tokio::test]
async fn admin_on_its_own_address_is_not_served_on_the_public_one() {
    let h = Harness::start().await;
    let redis = tora_devnet::redis_server::RedisServer::start();
    let mut configured = settings(&h, &redis.url);
    configured.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    let running = start(configured).await.unwrap();
    let admin = running.admin_address.expect("an admin address");
    let http = reqwest::Client::new();
    let policy = serde_json::json!({ "id": "p" });
    let public =
        http.post(format!("http://{}/admin/policies", running.address)).json(&policy).send().await.unwrap();
    assert_eq!(public.status(), reqwest::StatusCode::NOT_FOUND);
    let health = http.get(format!("http://{}/health", running.address)).send().await.unwrap();
    assert_eq!(health.status(), reqwest::StatusCode::OK);
    let private = http.post(format!("http://{admin}/admin/policies")).json(&policy).send().await.unwrap();
    assert_eq!(private.status(), reqwest::StatusCode::UNAUTHORIZED, "the admin API, asking for its key");
    stop(running);
}
