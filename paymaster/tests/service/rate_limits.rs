//! Issue 12, item 9: the paymaster's rate limit counts a request under its API key only once the
//! key verifies; made-up keys and unauthenticated methods count under the client address.

use crate::common::{Service, api_key, start_configured};
use alloy::primitives::Bytes;
use serde_json::json;
use tora_core::ENTRY_POINT_V07;
use tora_devnet::harness::Harness;
use tora_jsonrpc::{CallError, Client, Limits, RateLimit};
use tora_paymaster::sponsorship::auth::Role;

/// The HTTP status of one call: 200 for any JSON-RPC answer (result or error), else the
/// refusal's (429 from the rate limit).
async fn status(url: &str, key: Option<&str>, method: &str, params: serde_json::Value) -> u16 {
    let client = Client::new(url);
    let client = match key {
        Some(key) => client.with_api_key(key),
        None => client,
    };
    match client.raw(method, params).await {
        Ok(_) | Err(CallError::Rpc(_)) => 200,
        Err(CallError::Http { status, .. }) => status,
        Err(other) => panic!("{method}: {other}"),
    }
}

/// Before, each of the made-up keys below had a bucket of its own (all answered), and the
/// unauthenticated `tora_getTokenQuote` (three node reads) shared one bucket with every keyless
/// caller anywhere.
#[tokio::test]
async fn made_up_keys_share_their_address_bucket_and_a_real_key_keeps_its_own() {
    let h = Harness::start().await;
    // Two requests, and nothing refills during the test.
    let limit = RateLimit { per_second: 1.0 / 86_400.0, burst: 2.0 };
    let limits = Limits { rate_per_key: Some(limit), ..Limits::default() };
    let url = start_configured(&h, Service { limits, ..Service::default() }).await;
    let wallet = h.new_wallet(61).await;
    let op = h.op(&wallet, true, Bytes::new()).await;
    let params = json!([op, ENTRY_POINT_V07, format!("{:#x}", h.chain_id)]);

    assert_eq!(status(&url, Some("made-up-1"), "tora_getTokenQuote", params.clone()).await, 200);
    assert_eq!(status(&url, None, "tora_getTokenQuote", params.clone()).await, 200);
    assert_eq!(status(&url, Some("made-up-2"), "tora_getTokenQuote", params.clone()).await, 429);
    assert_eq!(status(&url, None, "tora_getTokenQuote", params.clone()).await, 429);
    let forged = tora_paymaster::sponsorship::auth::issue(
        crate::common::KEY_ID,
        b"guessed secret",
        &tora_paymaster::sponsorship::auth::Claims {
            sub: "dapp-1".into(),
            exp: 4_000_000_000,
            role: Role::Dapp,
        },
    );
    assert_eq!(
        status(&url, Some(&forged), "tora_getTokenQuote", params.clone()).await,
        429,
        "forged: not verified"
    );

    // A genuine key has a bucket of its own, per dapp: two more, then 429.
    let key = api_key("dapp-1", Role::Dapp);
    assert_eq!(status(&url, Some(&key), "tora_getTokenQuote", params.clone()).await, 200);
    let second_key_same_dapp = api_key("dapp-1", Role::Admin);
    assert_eq!(status(&url, Some(&second_key_same_dapp), "tora_getTokenQuote", params.clone()).await, 200);
    assert_eq!(status(&url, Some(&key), "tora_getTokenQuote", params.clone()).await, 429);
    assert_eq!(status(&url, Some(&api_key("dapp-2", Role::Dapp)), "tora_getTokenQuote", params).await, 200);
}
