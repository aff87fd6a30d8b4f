//! preVerificationGas on an OP Stack chain: a GasPriceOracle stand-in at 0x42…0F on the devnet
//! (runtime code that answers each selector from the storage slot of that number), and the
//! bundler's estimate and acceptance check against it.

use crate::common::Stack;
use alloy::primitives::{B256, Bytes, U128, U256};
use alloy::sol_types::SolCall;
use serde_json::{Value, json};
use tora_bundler::estimation::{L1Price, l1_gas};
use tora_core::chain_spec::DaFee;
use tora_core::l1_fee::{GAS_PRICE_ORACLE, GasPriceOracle, L1FeeParams};
use tora_core::{ENTRY_POINT_V07, UserOperation};

/// `mstore(0, sload(shr(224, calldataload(0)))) return(0, 32)`: a view of slot `selector`.
const SLOT_PER_SELECTOR: [u8; 15] =
    [0x60, 0x00, 0x35, 0x60, 0xe0, 0x1c, 0x54, 0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xf3];

fn params() -> L1FeeParams {
    L1FeeParams {
        l1_base_fee: U256::from(3_000_000_000u64),
        blob_base_fee: U256::from(1u64),
        base_fee_scalar: 1_368,
        blob_base_fee_scalar: 810_949,
    }
}

/// Installs the stand-in oracle with [`params`].
async fn install_oracle(s: &Stack) {
    s.h.anvil("anvil_setCode", json!([GAS_PRICE_ORACLE, Bytes::from_static(&SLOT_PER_SELECTOR)])).await;
    let p = params();
    let slots = [
        (GasPriceOracle::l1BaseFeeCall::SELECTOR, p.l1_base_fee),
        (GasPriceOracle::blobBaseFeeCall::SELECTOR, p.blob_base_fee),
        (GasPriceOracle::baseFeeScalarCall::SELECTOR, U256::from(p.base_fee_scalar)),
        (GasPriceOracle::blobBaseFeeScalarCall::SELECTOR, U256::from(p.blob_base_fee_scalar)),
    ];
    for (selector, value) in slots {
        let slot = B256::from(U256::from(u32::from_be_bytes(selector)));
        s.h.anvil("anvil_setStorageAt", json!([GAS_PRICE_ORACLE, slot, B256::from(value)])).await;
    }
}

/// The op with its gas limits left out but its fees kept: they price the L1 fee.
fn request(op: &UserOperation) -> Value {
    let mut value = serde_json::to_value(op).unwrap();
    for field in ["callGasLimit", "verificationGasLimit", "preVerificationGas"] {
        value.as_object_mut().unwrap().remove(field);
    }
    value
}

fn gas(estimate: &Value) -> U256 {
    serde_json::from_value(estimate["preVerificationGas"].clone()).unwrap()
}

#[tokio::test]
async fn on_op_stack_pre_verification_gas_adds_the_l1_fee_and_sends_below_it_are_refused() {
    let s = Stack::start_with(|settings| {
        settings.chain.da_fee = DaFee::OpStack { gas_price_oracle: GAS_PRICE_ORACLE };
    })
    .await;
    // The same chain without the oracle: the dev spec's bundler.
    let plain = Stack::start().await;
    install_oracle(&s).await;
    let wallet = s.funded_wallet(s.h.contracts().tora_account_factory, 50).await;
    let mut op = s.first_op(&wallet).await;
    // maxPriorityFee = maxFee: the effective price is maxFee at any base fee. 0.001 gwei, as
    // on opBNB, where the L1 fee is most of what an operation pays; the devnet's base fee is
    // brought under it, or the send would be refused as one the chain cannot include.
    let gas_price = 1_000_000u64;
    s.h.anvil("anvil_setNextBlockBaseFeePerGas", json!([format!("{:#x}", gas_price / 10)])).await;
    s.h.anvil("evm_mine", json!([])).await;
    op.max_fee_per_gas = U128::from(gas_price);
    op.max_priority_fee_per_gas = U128::from(gas_price);

    let with_l1 = gas(&s.ok("eth_estimateUserOperationGas", json!([request(&op), ENTRY_POINT_V07])).await);
    let without =
        gas(&plain.ok("eth_estimateUserOperationGas", json!([request(&op), ENTRY_POINT_V07])).await);
    let expected = l1_gas(&op, &L1Price { params: params(), gas_price: U256::from(gas_price) });
    // A bundle of one of this operation is about 900 bytes: ~8e8 × 6.6e13 / 1e12 ≈ 5e10 wei of
    // L1 fee, some tens of thousands of L2 gas at 0.001 gwei.
    assert!(expected > U256::from(10_000u64), "{expected}");
    assert_eq!(with_l1 - without, expected);

    // eth_sendUserOperation asks for the same: one gas less is refused, the estimate accepted.
    op.pre_verification_gas = with_l1 - U256::from(1);
    wallet.sign_user_op(&mut op, ENTRY_POINT_V07, s.h.chain_id);
    assert_eq!(s.error_code("eth_sendUserOperation", json!([op, ENTRY_POINT_V07])).await, -32602);
    op.pre_verification_gas = with_l1;
    wallet.sign_user_op(&mut op, ENTRY_POINT_V07, s.h.chain_id);
    assert_eq!(s.send(&op).await, json!(op.hash(ENTRY_POINT_V07, s.h.chain_id)));
}
