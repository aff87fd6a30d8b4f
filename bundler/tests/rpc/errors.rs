//! Refusals over HTTP: rule breakers, malformed input, a wrong chain, load shedding.

use crate::common::{Stack, dev_spec, settings};
use alloy::primitives::{Address, Bytes, U128, U256};
use alloy::providers::Provider;
use alloy::providers::ProviderBuilder;
use serde_json::json;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tora_bundler::builder::{Builder, BuilderSettings, BundlingMode};
use tora_bundler::pool::{InMemoryPool, PoolSettings};
use tora_bundler::rpc::BundlerRpc;
use tora_bundler::{StartError, ValidationError, ValidationSettings, Validator};
use tora_core::{ChainSpec, ENTRY_POINT_V07, UserOperation};
use tora_devnet::confirm;
use tora_jsonrpc::{CallMeta, Params, RpcService};

use tora_devnet::test_contracts as rule_breakers;

/// `RuleBreakingAccount` reads TIMESTAMP in validateUserOp when the signature starts with 1.
const MODE_TIMESTAMP: u8 = 1;

#[tokio::test]
async fn a_banned_opcode_is_refused_with_32502_and_its_rule() {
    let s = Stack::start().await;
    let helper = rule_breakers::RuleHelper::deploy(s.h.deployer.clone()).await.unwrap();
    let account =
        rule_breakers::RuleBreakingAccount::deploy(s.h.deployer.clone(), ENTRY_POINT_V07, *helper.address())
            .await
            .unwrap();
    let entry_point = s.h.entry_point();
    let fund = entry_point.depositTo(*account.address()).value(U256::from(10u64).pow(U256::from(18)));
    let pending = fund.send().await.unwrap();
    confirm(&s.h.bundler, "deposit", pending).await.unwrap();
    let op = UserOperation {
        sender: *account.address(),
        call_gas_limit: U128::from(100_000),
        verification_gas_limit: U128::from(300_000),
        pre_verification_gas: U256::from(60_000),
        max_fee_per_gas: U128::from(3_000_000_000u64),
        max_priority_fee_per_gas: U128::from(1_000_000_000u64),
        signature: Bytes::from(vec![MODE_TIMESTAMP]),
        ..Default::default()
    };
    let refusal = s.refusal("eth_sendUserOperation", json!([op, ENTRY_POINT_V07])).await;
    assert_eq!(refusal.code, -32502, "{refusal:?}");
    assert_eq!(refusal.data.as_ref().unwrap()["rule"], json!("OP-011"), "{refusal:?}");
    assert_eq!(s.ok("debug_bundler_dumpMempool", json!([])).await, json!([]));
}

#[tokio::test]
async fn a_banned_factory_is_refused_with_32504_before_validation() {
    let s = Stack::start().await;
    let factory = s.h.contracts().tora_account_factory;
    // 510 seen, none included: 510 / 10 is past 0 + BAN_SLACK 50.
    let entry = json!({ "address": factory, "opsSeen": "0x1fe", "opsIncluded": "0x0" });
    s.ok("debug_bundler_setReputation", json!([[entry], ENTRY_POINT_V07])).await;
    let dumped = s.ok("debug_bundler_dumpReputation", json!([ENTRY_POINT_V07])).await;
    assert_eq!(dumped[0]["status"], json!("banned"), "{dumped}");
    let wallet = s.funded_wallet(factory, 8).await;
    let op = s.first_op(&wallet).await;
    assert_eq!(s.error_code("eth_sendUserOperation", json!([op, ENTRY_POINT_V07])).await, -32504);
    // Cleared, the same operation is accepted.
    s.ok("debug_bundler_clearReputation", json!([])).await;
    s.send(&op).await;
}

#[tokio::test]
async fn malformed_params_are_32602_and_never_crash_the_server() {
    let s = Stack::start().await;
    let wallet = s.funded_wallet(s.h.contracts().tora_account_factory, 3).await;
    let op = serde_json::to_value(s.first_op(&wallet).await).unwrap();
    let with = |field: &str, value: serde_json::Value| {
        let mut bad = op.clone();
        bad[field] = value;
        json!([bad, ENTRY_POINT_V07])
    };
    let cases = [
        ("no params", json!([])),
        ("not an operation", json!(["x", ENTRY_POINT_V07])),
        ("too many params", json!([op, ENTRY_POINT_V07, 1])),
        ("unknown entry point", json!([op, Address::repeat_byte(1)])),
        ("entry point not an address", json!([op, "0x1234"])),
        ("gas over uint128", with("callGasLimit", json!(format!("{:#x}", U256::MAX)))),
        ("nonce not hex", with("nonce", json!("seven"))),
        ("odd-length bytes", with("callData", json!("0x123"))),
        ("missing sender", with("sender", json!(null))),
        ("factoryData without factory", {
            let mut bad = op.clone();
            bad.as_object_mut().unwrap().remove("factory");
            json!([bad, ENTRY_POINT_V07])
        }),
    ];
    for (what, params) in cases {
        let refusal = s.refusal("eth_sendUserOperation", params).await;
        assert_eq!(refusal.code, -32602, "{what}: {refusal:?}");
    }
    assert_eq!(s.error_code("eth_getUserOperationReceipt", json!(["0x12"])).await, -32602);
    assert_eq!(s.error_code("eth_getUserOperationByHash", json!([])).await, -32602);
    assert_eq!(s.error_code("eth_chainId", json!([1])).await, -32602);
    assert_eq!(s.error_code("debug_bundler_setBundlingMode", json!(["sometimes"])).await, -32602);
    assert_eq!(s.error_code("debug_bundler_setReputation", json!([[{ "address": "0x1" }]])).await, -32602);
    assert_eq!(s.error_code("eth_noSuchMethod", json!([])).await, -32601);
    // Still serving, and nothing reached the pool.
    assert_eq!(s.ok("eth_chainId", json!([])).await, json!(format!("{:#x}", s.h.chain_id)));
    assert_eq!(s.ok("debug_bundler_dumpMempool", json!([])).await, json!([]));
}

/// The error of a send whose operation has `field` set to `value`, from a valid first op.
async fn send_with(
    s: &Stack,
    op: &serde_json::Value,
    field: &str,
    value: serde_json::Value,
) -> tora_jsonrpc::ErrorObject {
    let mut bad = op.clone();
    bad[field] = value;
    s.refusal("eth_sendUserOperation", json!([bad, ENTRY_POINT_V07])).await
}

#[tokio::test]
async fn hex_without_0x_is_refused_naming_the_field() {
    let s = Stack::start().await;
    let wallet = s.funded_wallet(s.h.contracts().tora_account_factory, 21).await;
    let op = serde_json::to_value(s.first_op(&wallet).await).unwrap();
    let bare = |v: &serde_json::Value| json!(v.as_str().unwrap().trim_start_matches("0x"));
    for field in ["sender", "callData", "nonce", "signature", "factory"] {
        let error = send_with(&s, &op, field, bare(&op[field])).await;
        assert_eq!(error.code, -32602, "{field}: {error:?}");
        assert_eq!(error.message, format!("{field} must be 0x-prefixed hex"), "{error:?}");
    }
    // The entry point and hash parameters too.
    let bare_ep = format!("{:x}", ENTRY_POINT_V07);
    assert_eq!(s.error_code("eth_sendUserOperation", json!([op, bare_ep])).await, -32602);
    let hash = format!("{:x}", alloy::primitives::B256::repeat_byte(1));
    for method in ["eth_getUserOperationByHash", "eth_getUserOperationReceipt"] {
        let refusal = s.refusal(method, json!([hash])).await;
        assert_eq!((refusal.code, refusal.message.as_str()), (-32602, "Missing/invalid userOpHash"));
    }
    // The same operation with its prefixes is accepted: nothing was lost.
    s.ok("eth_sendUserOperation", json!([op, ENTRY_POINT_V07])).await;
}

#[tokio::test]
async fn fields_of_another_entry_point_version_are_refused() {
    let s = Stack::start().await;
    let wallet = s.funded_wallet(s.h.contracts().tora_account_factory, 22).await;
    let op = serde_json::to_value(s.first_op(&wallet).await).unwrap();
    let auth = json!({ "chainId": "0x1", "address": Address::repeat_byte(7), "nonce": "0x0" });
    let error = send_with(&s, &op, "eip7702Auth", auth).await;
    assert_eq!(error.code, -32602, "{error:?}");
    assert!(error.message.contains("unknown user operation field eip7702Auth"), "{error:?}");
    let error = send_with(&s, &op, "initCode", json!("0x")).await;
    assert_eq!(error.code, -32602, "v0.6's initCode: {error:?}");
    assert_eq!(s.ok("debug_bundler_dumpMempool", json!([])).await, json!([]));
}

#[tokio::test]
async fn a_max_fee_below_the_base_fee_is_refused_with_the_least_fee() {
    let s = Stack::start().await;
    let wallet = s.funded_wallet(s.h.contracts().tora_account_factory, 23).await;
    let mut op = s.first_op(&wallet).await;
    let base_fee =
        s.h.deployer
            .get_block(alloy::eips::BlockId::latest())
            .await
            .unwrap()
            .unwrap()
            .header
            .base_fee_per_gas
            .unwrap();
    let least = u128::from(base_fee).max(1);
    for max_fee in [0u128, least - 1] {
        op.max_fee_per_gas = alloy::primitives::U128::from(max_fee);
        op.max_priority_fee_per_gas = alloy::primitives::U128::ZERO;
        wallet.sign_user_op(&mut op, ENTRY_POINT_V07, s.h.chain_id);
        let refusal = s.refusal("eth_sendUserOperation", json!([op, ENTRY_POINT_V07])).await;
        assert_eq!(refusal.code, -32602, "{refusal:?}");
        let message = refusal.message.as_str();
        assert!(message.contains(&format!("is below {least}")), "{message}");
    }
    assert_eq!(s.ok("debug_bundler_dumpMempool", json!([])).await, json!([]));
}

#[tokio::test]
async fn deep_and_oversized_requests_are_answered_with_the_callers_id() {
    let s = Stack::start().await;
    let client = reqwest::Client::new();
    let post =
        |body: String| client.post(&s.url).header("content-type", "application/json").body(body).send();
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":"deep-1","method":"eth_sendUserOperation","params":{}{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let response: serde_json::Value = post(deep).await.unwrap().json().await.unwrap();
    assert_eq!(response["id"], json!("deep-1"), "{response}");
    assert_eq!(response["error"]["code"], json!(-32602), "{response}");
    // Over the 1 MiB body limit, with the id before the params.
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":77,"method":"eth_sendUserOperation","params":["0x{}"]}}"#,
        "ab".repeat(1024 * 1024)
    );
    let response = post(big).await.unwrap();
    assert_eq!(response.status(), 200);
    let response: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        (response["id"].clone(), response["error"]["code"].clone()),
        (json!(77), json!(-32602)),
        "{response}"
    );
    // Unreadable as JSON at all: -32700 with a null id, as JSON-RPC says.
    let response: serde_json::Value = post("{not json".into()).await.unwrap().json().await.unwrap();
    assert_eq!((response["id"].clone(), response["error"]["code"].clone()), (json!(null), json!(-32700)));
    assert_eq!(s.ok("eth_chainId", json!([])).await, json!(format!("{:#x}", s.h.chain_id)));
}

#[tokio::test]
async fn start_refuses_a_node_of_another_chain_and_debug_methods_are_off_by_default() {
    let s = Stack::start().await;
    let mut wrong = settings(&s.h);
    // opBNB's spec says 204; the devnet is 31337: every userOpHash would be wrong.
    wrong.chain = ChainSpec::load("opbnb").unwrap();
    match tora_bundler::start(wrong).await {
        Err(StartError::Validation(ValidationError::ChainIdMismatch { node, spec })) => {
            assert_eq!((node, spec), (s.h.chain_id, 204));
        }
        Err(other) => panic!("expected a chain id mismatch, got {other}"),
        Ok(_) => panic!("expected a chain id mismatch"),
    }
    let mut no_key = settings(&s.h);
    no_key.dev_signer_key = None;
    assert!(matches!(tora_bundler::start(no_key).await, Err(StartError::NoSigningKey)));

    let mut public = settings(&s.h);
    public.options.debug_api = false;
    let running = tora_bundler::start(public).await.unwrap();
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "debug_bundler_dumpMempool", "params": [] });
    let response: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{}/", running.address))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(response["error"]["code"], json!(-32601), "{response}");
    for task in running.tasks {
        task.abort();
    }
}

#[tokio::test]
async fn a_full_validation_budget_sheds_load_at_once_with_32005() {
    let s = Stack::start().await;
    let rpc_url = &s.h.devnet.deployment.rpc_url;
    let spec = dev_spec(s.h.chain_id);
    let validator = Arc::new(Validator::new(rpc_url, &spec, ValidationSettings::default()).await.unwrap());
    let pool = Arc::new(InMemoryPool::new(PoolSettings::default()));
    let key = tora_devnet::keys::BUNDLER;
    let builder = Builder::new(
        rpc_url,
        &[key],
        ENTRY_POINT_V07,
        pool.clone(),
        validator.clone(),
        BuilderSettings::default(),
        BundlingMode::Manual,
    )
    .unwrap();
    // No validation slot free: as if 64 validations were in flight.
    let estimator = tora_bundler::estimation::Estimator::new(
        s.h.deployer.clone(),
        &spec,
        &ValidationSettings::default(),
        validator.head().clone(),
    );
    let rpc = BundlerRpc {
        chain_id: s.h.chain_id,
        entry_point: ENTRY_POINT_V07,
        validator,
        pool,
        builder: Arc::new(builder),
        estimator: Arc::new(estimator),
        provider: ProviderBuilder::new().connect_http(rpc_url.parse().unwrap()).erased(),
        validations: Arc::new(Semaphore::new(0)),
        debug_api: false,
        stake_rule: (&ValidationSettings::default()).into(),
    };
    let wallet = s.funded_wallet(s.h.contracts().tora_account_factory, 4).await;
    let op = s.first_op(&wallet).await;
    let params = Params(json!([op, ENTRY_POINT_V07]));
    let err = rpc.call(&CallMeta::default(), "eth_sendUserOperation", params).await.unwrap_err();
    assert_eq!(err.code.code(), -32005, "{err}");
    // With a slot, the same operation is accepted.
    rpc.validations.add_permits(1);
    let params = Params(json!([op, ENTRY_POINT_V07]));
    let hash = rpc.call(&CallMeta::default(), "eth_sendUserOperation", params).await.unwrap();
    assert_eq!(hash, json!(op.hash(ENTRY_POINT_V07, s.h.chain_id)));
}
