//! The paymaster's arithmetic, driven directly as the EntryPoint (anvil impersonation) so that
//! maxCost, actualGasCost and the fee are chosen by the test and every amount is exact.

use super::common::*;
use alloy::primitives::{Address, U128, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use tora_core::contracts::{TORA, ToraPaymaster};
use tora_core::paymaster_quote::token_cost_ceil;
use tora_core::{ENTRY_POINT_V07, UserOperation};
use tora_devnet::confirm;

/// A provider without keys, for accounts anvil impersonates.
async fn impersonating(h: &Harness, who: Address) -> DynProvider {
    h.anvil("anvil_impersonateAccount", serde_json::json!([who])).await;
    h.anvil("anvil_setBalance", serde_json::json!([who, "0xde0b6b3a7640000"])).await;
    ProviderBuilder::new().connect_http(h.devnet.deployment.rpc_url.parse().unwrap()).erased()
}

fn eoa_op(sender: Address) -> UserOperation {
    UserOperation {
        sender,
        call_gas_limit: U128::from(123_457),
        verification_gas_limit: U128::from(100_000),
        pre_verification_gas: U256::from(50_000),
        max_fee_per_gas: U128::from(3_000_000_000u64),
        max_priority_fee_per_gas: U128::from(1_000_000_000u64),
        ..Default::default()
    }
}

/// Packs ToraPaymaster's validationData: validAfter(48) validUntil(48) sigFailed(160).
fn validation_data(valid_until: u64, valid_after: u64, sig_failed: bool) -> U256 {
    (U256::from(valid_after) << 208) | (U256::from(valid_until) << 160) | U256::from(sig_failed as u8)
}

#[tokio::test]
async fn pre_charge_then_post_op_charge_and_refund_are_exact() {
    let h = Harness::start().await;
    let sender = Address::repeat_byte(0x5e);
    h.send_tora(sender, tora(100)).await;
    let as_sender = impersonating(&h, sender).await;
    let pending = TORA::new(h.contracts().tora, as_sender.clone())
        .approve(h.contracts().paymaster, U256::MAX)
        .from(sender)
        .send()
        .await
        .unwrap();
    confirm(&as_sender, "approve", pending).await.unwrap();
    let as_entry_point = impersonating(&h, ENTRY_POINT_V07).await;
    let paymaster = ToraPaymaster::new(h.contracts().paymaster, as_entry_point.clone());

    // (maxCost, actualGasCost, actualUserOpFeePerGas): inexact divisions, then a cost that
    // exceeds the pre-charge so the cap applies.
    let cases = [
        (U256::from(2_000_000_000_000_007u64), U256::from(1_000_000_000_000_003u64), 1_500_000_001u64),
        (U256::from(999_999_999_999_999u64), U256::from(1u64), 1u64),
        (U256::from(1_000_000_000_000_000u64), U256::from(1_000_000_000_000_000u64), 3_000_000_000u64),
    ];
    let mut paymaster_total = U256::ZERO;
    for (i, (max_cost, actual_gas_cost, fee)) in cases.into_iter().enumerate() {
        let mut op = eoa_op(sender);
        op.nonce = U256::from(i);
        let quote = h.token_quote(tora(50)).await;
        let (until, after) = (quote.valid_until, quote.valid_after);
        h.attach_quote(&mut op, quote, None);
        let packed = op.pack();
        let hash = op.hash(ENTRY_POINT_V07, h.chain_id);
        let validate = paymaster.validatePaymasterUserOp(packed.into(), hash, max_cost).from(ENTRY_POINT_V07);
        let result = validate.call().await.unwrap();
        assert_eq!(result.validationData, validation_data(until, after, false));
        let before = h.tora_balance(sender).await;
        confirm(&as_entry_point, "validate", validate.send().await.unwrap()).await.unwrap();

        let pre_charge = token_cost_ceil(max_cost, rate());
        assert_eq!(h.tora_balance(sender).await, before - pre_charge, "case {i}: pre-charge");

        let post_op =
            paymaster.postOp(0, result.context, actual_gas_cost, U256::from(fee)).from(ENTRY_POINT_V07);
        let receipt = confirm(&as_entry_point, "postOp", post_op.send().await.unwrap()).await.unwrap();
        let charged_wei = actual_gas_cost + extra_gas(&op) * U256::from(fee);
        let charge = token_cost_ceil(charged_wei, rate()).min(pre_charge);
        let logged: ToraPaymaster::GasChargedInToken = event(&receipt);
        assert_eq!((logged.charge, logged.refund), (charge, pre_charge - charge), "case {i}");
        assert_eq!(logged.userOpHash, hash);
        assert_eq!(h.tora_balance(sender).await, before - charge, "case {i}: refund");
        paymaster_total += charge;
        assert_eq!(h.tora_balance(h.contracts().paymaster).await, paymaster_total);
        if i == 2 {
            assert_eq!(charge, pre_charge, "capped at the pre-charge");
        }
    }
    // One figure worked out independently (Python integers):
    // ceil(2000000000000000007 * 5000000000000123456789 / 1e18) = 10000000000000246948579.
    assert_eq!(
        token_cost_ceil(U256::from(2_000_000_000_000_000_007u128), rate()),
        U256::from(10_000_000_000_000_246_948_579u128)
    );
}

#[tokio::test]
async fn a_bad_quote_signature_fails_validation_without_charging() {
    let h = Harness::start().await;
    let sender = Address::repeat_byte(0x5f);
    h.send_tora(sender, tora(100)).await;
    let as_entry_point = impersonating(&h, ENTRY_POINT_V07).await;
    let paymaster = ToraPaymaster::new(h.contracts().paymaster, as_entry_point.clone());
    let mut op = eoa_op(sender);
    let quote = h.token_quote(tora(50)).await;
    let (until, after) = (quote.valid_until, quote.valid_after);
    h.attach_quote(&mut op, quote, None);
    op.call_data = vec![0xde, 0xad].into();
    let hash = op.hash(ENTRY_POINT_V07, h.chain_id);
    let validate = paymaster
        .validatePaymasterUserOp(op.pack().into(), hash, U256::from(10u64).pow(U256::from(15)))
        .from(ENTRY_POINT_V07);
    let result = validate.call().await.unwrap();
    assert_eq!(result.validationData, validation_data(until, after, true));
    assert!(result.context.is_empty());
    confirm(&as_entry_point, "validate", validate.send().await.unwrap()).await.unwrap();
    assert_eq!(h.tora_balance(sender).await, tora(100), "nothing taken");
}

#[tokio::test]
async fn only_the_entry_point_may_call_validation_and_post_op() {
    let h = Harness::start().await;
    let mut op = eoa_op(Address::repeat_byte(0x60));
    h.attach_quote(&mut op, h.token_quote(tora(1)).await, None);
    let err = h
        .paymaster()
        .validatePaymasterUserOp(op.pack().into(), Default::default(), U256::from(1))
        .call()
        .await
        .expect_err("reverts");
    assert!(err.to_string().contains("Sender not EntryPoint"), "{err}");
    let paymaster = h.paymaster();
    let post_op = paymaster.postOp(0, Default::default(), U256::ZERO, U256::ZERO);
    let err = expect_revert(post_op.call().await);
    assert!(err.to_string().contains("Sender not EntryPoint"), "{err}");
}
