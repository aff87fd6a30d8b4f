//! Issue #4's headline flows through the real bundler: a new wallet with TORA and no BNB pays
//! its first operation in TORA with a permit (no prior approve), and a dapp-sponsored
//! operation lands; after each, the paymaster's TORA covers what its EntryPoint deposit paid.

use crate::common::{api_key, base_fee, call, call_with_key, start_service_with};
use alloy::primitives::{Address, B256, Bytes, U256};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tora_core::contracts::{TORA, ToraPaymaster};
use tora_core::paymaster_quote::token_cost_ceil;
use tora_core::{ChainSpec, ENTRY_POINT_V07, UserOperation};
use tora_devnet::SmartWallet;
use tora_devnet::harness::{Harness, tora};
use tora_paymaster::sponsorship::MemoryStore;
use tora_paymaster::sponsorship::auth::Role;

/// The oracle rate before the 5% markup: 5,000 TORA per BNB.
fn oracle_rate() -> U256 {
    U256::from(5_000u64) * U256::from(10u64).pow(U256::from(18))
}

async fn start_bundler(h: &Harness) -> String {
    let chain = ChainSpec::load("dev").unwrap().with_id(h.chain_id);
    let mut options = tora_bundler::BundlerOptions { debug_api: true, ..Default::default() };
    options.bundling_mode = tora_bundler::builder::BundlingMode::Manual;
    let listen = "127.0.0.1:0".parse().unwrap();
    let settings =
        tora_bundler::BundlerSettings::for_deployment(&h.devnet.deployment, chain, listen, options).unwrap();
    let running = tora_bundler::start(settings).await.unwrap();
    format!("http://{}", running.address)
}

fn field<T: serde::de::DeserializeOwned>(value: &Value, name: &str) -> T {
    serde_json::from_value(value[name].clone()).unwrap_or_else(|e| panic!("{name}: {e} in {value}"))
}

/// Points `op` at the paymaster with what `pm_getPaymaster(Stub)Data` returned.
fn apply_paymaster(op: &mut UserOperation, stub: &Value, data: &Value) {
    op.paymaster = Some(field(data, "paymaster"));
    op.paymaster_verification_gas_limit = Some(field(stub, "paymasterVerificationGasLimit"));
    op.paymaster_post_op_gas_limit = Some(field(stub, "paymasterPostOpGasLimit"));
    op.paymaster_data = Some(field(data, "paymasterData"));
}

/// eth_estimateUserOperationGas, applied to preVerificationGas, verificationGasLimit and
/// callGasLimit.
async fn estimate(bundler: &str, op: &mut UserOperation) {
    let estimate = call(bundler, "eth_estimateUserOperationGas", json!([op, ENTRY_POINT_V07])).await.unwrap();
    op.pre_verification_gas = field(&estimate, "preVerificationGas");
    op.verification_gas_limit = field(&estimate, "verificationGasLimit");
    op.call_gas_limit = field(&estimate, "callGasLimit");
}

/// A wallet's side of ERC-7677 with one paymaster and one bundler.
struct Wallet<'a> {
    h: &'a Harness,
    wallet: &'a SmartWallet,
    paymaster: &'a str,
    bundler: &'a str,
    api_key: Option<String>,
}

impl Wallet<'_> {
    async fn paymaster_call(&self, method: &str, op: &UserOperation, context: &Value) -> Value {
        let chain = format!("{:#x}", self.h.chain_id);
        let params = json!([op, ENTRY_POINT_V07, chain, context]);
        call_with_key(self.paymaster, self.api_key.as_deref(), method, params).await.unwrap()
    }

    /// Fees for the chain now (a 1 gwei tip over twice the base fee, what the bundle itself
    /// offers), stub data, then the bundler's gas estimate with it; returns the stub.
    async fn stub_and_estimate(&self, op: &mut UserOperation, context: &Value) -> Value {
        let tip = 1_000_000_000u64;
        op.max_priority_fee_per_gas = alloy::primitives::U128::from(tip);
        op.max_fee_per_gas = alloy::primitives::U128::from(2 * base_fee(self.h).await + tip);
        let stub = self.paymaster_call("pm_getPaymasterStubData", op, context).await;
        apply_paymaster(op, &stub, &stub);
        self.wallet.sign_user_op(op, ENTRY_POINT_V07, self.h.chain_id);
        estimate(self.bundler, op).await;
        stub
    }

    /// The final paymaster data for the estimated op, then the wallet's signature.
    async fn finish(&self, op: &mut UserOperation, stub: &Value, context: &Value) {
        let data = self.paymaster_call("pm_getPaymasterData", op, context).await;
        apply_paymaster(op, stub, &data);
        self.wallet.sign_user_op(op, ENTRY_POINT_V07, self.h.chain_id);
    }
}

/// Sends, bundles, and returns the receipt's UserOperationEvent fields and the bundle's logs.
async fn send_and_bundle(bundler: &str, op: &UserOperation) -> Value {
    let hash: B256 = serde_json::from_value(
        call(bundler, "eth_sendUserOperation", json!([op, ENTRY_POINT_V07])).await.unwrap(),
    )
    .unwrap();
    call(bundler, "debug_bundler_sendBundleNow", json!([])).await.unwrap();
    for _ in 0..200 {
        let receipt = call(bundler, "eth_getUserOperationReceipt", json!([hash])).await.unwrap();
        if !receipt.is_null() {
            return receipt;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no receipt for {hash}");
}

/// The GasChargedInToken event in a receipt's logs.
fn charged(receipt: &Value) -> ToraPaymaster::GasChargedInToken {
    let logs: Vec<alloy::rpc::types::Log> = field(receipt, "logs");
    logs.iter()
        .find_map(|log| log.log_decode::<ToraPaymaster::GasChargedInToken>().ok())
        .map(|log| log.inner.data)
        .expect("GasChargedInToken in the receipt")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_wallet_with_no_bnb_pays_its_first_op_in_tora_with_a_permit_through_the_bundler() {
    let h = Harness::start().await;
    let paymaster_url =
        start_service_with(&h, Duration::from_secs(3_600), Arc::new(MemoryStore::default())).await;
    let bundler = start_bundler(&h).await;
    let c = h.contracts().clone();
    let chain = format!("{:#x}", h.chain_id);
    let wallet = h.new_wallet(31).await;
    h.send_tora(wallet.address, tora(1_000)).await;
    let recipient = Address::repeat_byte(0x31);
    let transfer: Bytes =
        alloy::sol_types::SolCall::abi_encode(&TORA::transferCall { to: recipient, value: tora(5) }).into();
    let mut op = h.op(&wallet, true, SmartWallet::execute(c.tora, U256::ZERO, transfer)).await;

    // Stub (permit-sized), estimate, then the quote for the final gas and the permit it proposes.
    let client =
        Wallet { h: &h, wallet: &wallet, paymaster: &paymaster_url, bundler: &bundler, api_key: None };
    let placeholder =
        json!({ "value": "0x0", "deadline": U256::MAX, "signature": Bytes::from(vec![0xff; 65]) });
    let stub = client.stub_and_estimate(&mut op, &json!({ "token": c.tora, "permit": placeholder })).await;
    let quote =
        call(&paymaster_url, "tora_getTokenQuote", json!([op, ENTRY_POINT_V07, chain])).await.unwrap();
    let max_token_cost: U256 = field(&quote, "maxTokenCost");
    let digest: B256 = field(&quote["permit"], "digest");
    let permit = json!({
        "value": max_token_cost,
        "deadline": quote["permit"]["typedData"]["message"]["deadline"],
        "signature": Bytes::from(wallet.sign_digest(digest).to_vec()),
    });
    client.finish(&mut op, &stub, &json!({ "token": c.tora, "permit": permit })).await;

    let deposit_before = h.paymaster_deposit().await;
    let receipt = send_and_bundle(&bundler, &op).await;
    assert_eq!(receipt["success"], true, "{receipt}");
    let actual_gas_cost: U256 = field(&receipt, "actualGasCost");
    let charge = charged(&receipt);
    assert_eq!(charge.charge + charge.refund, max_token_cost);
    assert_eq!(h.tora_balance(c.paymaster).await, charge.charge);
    assert_eq!(h.tora_balance(wallet.address).await, tora(1_000) - tora(5) - charge.charge);
    assert_eq!(h.tora_balance(recipient).await, tora(5));
    assert_eq!(h.eth_balance(wallet.address).await, U256::ZERO, "the wallet never held BNB");
    let spent = deposit_before - h.paymaster_deposit().await;
    assert_eq!(spent, actual_gas_cost, "the deposit paid exactly the op's gas");
    assert!(charge.charge >= token_cost_ceil(spent, oracle_rate()), "TORA income covers the deposit spent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dapp_sponsored_op_lands_through_the_bundler() {
    let h = Harness::start().await;
    let store = Arc::new(MemoryStore::default());
    let paymaster_url = start_service_with(&h, Duration::from_secs(3_600), store.clone()).await;
    let bundler = start_bundler(&h).await;
    let sponsor = crate::common::open_sponsorship(&h, store.as_ref(), "launch").await;

    let wallet = h.new_wallet(32).await;
    let mut op = h.op(&wallet, true, Bytes::new()).await;
    let key = Some(api_key("dapp-1", Role::Dapp));
    let client =
        Wallet { h: &h, wallet: &wallet, paymaster: &paymaster_url, bundler: &bundler, api_key: key };
    let context = json!({ "sponsorshipPolicyId": "launch" });
    let stub = client.stub_and_estimate(&mut op, &context).await;
    client.finish(&mut op, &stub, &context).await;

    let deposit_before = h.paymaster_deposit().await;
    let receipt = send_and_bundle(&bundler, &op).await;
    assert_eq!(receipt["success"], true, "{receipt}");
    let charge = charged(&receipt);
    assert_eq!(charge.payer, sponsor);
    assert_eq!(h.paymaster().sponsorBalance(sponsor).call().await.unwrap(), tora(100) - charge.charge);
    assert_eq!(h.tora_balance(wallet.address).await, U256::ZERO);
    assert_eq!(h.eth_balance(wallet.address).await, U256::ZERO);
    let spent = deposit_before - h.paymaster_deposit().await;
    assert_eq!(spent, field::<U256>(&receipt, "actualGasCost"));
    assert!(charge.charge >= token_cost_ceil(spent, oracle_rate()), "sponsor TORA covers the deposit spent");
}
