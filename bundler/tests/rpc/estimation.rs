//! eth_estimateUserOperationGas: estimates that make the operation land, state overrides, and
//! reverting calls.

use crate::common::{Stack, ms};
use alloy::primitives::{Address, Bytes, U128, U256};
use alloy::providers::Provider;
use serde_json::{Value, json};
use std::time::Instant;
use tora_core::{ENTRY_POINT_V07, UserOperation};
use tora_devnet::SmartWallet;

const RECIPIENT: Address = Address::repeat_byte(0x42);

/// The operation as a wallet asks for an estimate: no gas fields, no fees.
fn without_gas_fields(op: &UserOperation) -> Value {
    let mut value = serde_json::to_value(op).unwrap();
    for field in
        ["callGasLimit", "verificationGasLimit", "preVerificationGas", "maxFeePerGas", "maxPriorityFeePerGas"]
    {
        value.as_object_mut().unwrap().remove(field);
    }
    value
}

fn gas(estimate: &Value, field: &str) -> u64 {
    let text = estimate[field].as_str().unwrap_or_else(|| panic!("{field} in {estimate}"));
    u64::from_str_radix(text.trim_start_matches("0x"), 16).unwrap()
}

#[tokio::test]
async fn estimates_let_a_new_wallets_first_op_land() {
    let s = Stack::start().await;
    let wallet = s.funded_wallet(s.h.contracts().tora_account_factory, 5).await;
    let call_data = SmartWallet::execute(RECIPIENT, U256::from(1), Bytes::new());
    let mut op = s.h.op(&wallet, true, call_data).await;
    // A signature of the right shape (over other gas values, so it does not verify).
    wallet.sign_user_op(&mut op, ENTRY_POINT_V07, s.h.chain_id);
    let started = Instant::now();
    let estimate =
        s.ok("eth_estimateUserOperationGas", json!([without_gas_fields(&op), ENTRY_POINT_V07])).await;
    eprintln!("estimate {estimate} in {:.1} ms", ms(started));
    let (pvg, vgl, cgl) = (
        gas(&estimate, "preVerificationGas"),
        gas(&estimate, "verificationGasLimit"),
        gas(&estimate, "callGasLimit"),
    );
    // 21,000 + 18,300 fixed plus the calldata of an operation with initCode.
    assert!(pvg > 39_300 + 1_000, "{pvg}");
    // Deploying the account costs well over 100k; the call (a 1-wei transfer) far less.
    assert!((100_000..1_000_000).contains(&vgl), "{vgl}");
    assert!((5_000..100_000).contains(&cgl), "{cgl}");

    op.pre_verification_gas = U256::from(pvg);
    op.verification_gas_limit = U128::from(vgl);
    op.call_gas_limit = U128::from(cgl);
    wallet.sign_user_op(&mut op, ENTRY_POINT_V07, s.h.chain_id);
    let hash = s.send(&op).await;
    s.ok("debug_bundler_sendBundleNow", json!([])).await;
    let receipt = s.ok("eth_getUserOperationReceipt", json!([hash])).await;
    assert_eq!(receipt["success"], json!(true), "{receipt}");
    assert_eq!(s.h.deployer.get_balance(RECIPIENT).await.unwrap(), U256::from(1));
}

#[tokio::test]
async fn estimation_applies_state_overrides_and_reports_reverting_calls_as_32521() {
    let s = Stack::start().await;
    let owner = tora_devnet::keys::signer(tora_devnet::keys::WALLET_OWNER);
    let factory = s.h.contracts().tora_account_factory;
    // Not funded: sending 1 ETH from it reverts, unless an override gives it the ETH.
    let wallet = SmartWallet::at(&s.h.deployer, factory, owner, U256::from(6)).await.unwrap();
    let one_eth = U256::from(10u64).pow(U256::from(18));
    let mut op = s.h.op(&wallet, true, SmartWallet::execute(RECIPIENT, one_eth, Bytes::new())).await;
    wallet.sign_user_op(&mut op, ENTRY_POINT_V07, s.h.chain_id);
    let request = without_gas_fields(&op);
    let response = s.call("eth_estimateUserOperationGas", json!([request, ENTRY_POINT_V07])).await;
    assert_eq!(response["error"]["code"], json!(-32521), "{response}");
    let overrides =
        json!({ wallet.address.to_string(): { "balance": format!("{:#x}", one_eth * U256::from(2)) } });
    let estimate = s.ok("eth_estimateUserOperationGas", json!([request, ENTRY_POINT_V07, overrides])).await;
    assert!(gas(&estimate, "callGasLimit") > 5_000, "{estimate}");
    // Malformed overrides are invalid params.
    let bad = json!({ "not an address": {} });
    assert_eq!(
        s.error_code("eth_estimateUserOperationGas", json!([request, ENTRY_POINT_V07, bad])).await,
        -32602
    );
}
