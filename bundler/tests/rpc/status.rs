//! tora_getUserOperationStatus through an operation's life, and debug_bundler_getStakeStatus in
//! the eth-infinitism shape.

use crate::common::Stack;
use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::Provider;
use alloy::sol_types::{SolCall, SolError};
use serde_json::json;
use tora_core::ENTRY_POINT_V07;
use tora_core::contracts::TORA;
use tora_devnet::SmartWallet;
use tora_devnet::harness::tora;

#[tokio::test]
async fn status_goes_from_unknown_to_pending_to_included_or_failed_with_the_reason() {
    let s = Stack::start().await;
    assert_eq!(s_status(&s, json!(B256::repeat_byte(7))).await, json!({ "status": "unknown" }));

    let factory = s.h.contracts().tora_account_factory;
    let good = s.first_op(&s.funded_wallet(factory, 60).await).await;
    // A wallet with no TORA transferring 5: the call reverts in the token.
    let wallet = s.funded_wallet(factory, 61).await;
    let transfer: Bytes =
        TORA::transferCall { to: Address::repeat_byte(0x61), value: tora(5) }.abi_encode().into();
    let mut bad =
        s.h.op(&wallet, true, SmartWallet::execute(s.h.contracts().tora, U256::ZERO, transfer)).await;
    wallet.sign_user_op(&mut bad, ENTRY_POINT_V07, s.h.chain_id);
    let good_hash = s.send(&good).await;
    let bad_hash = s.send(&bad).await;
    assert_eq!(s_status(&s, good_hash.clone()).await, json!({ "status": "pending" }));

    let bundle = s.bundle_now().await;
    let receipt = s.ok("eth_getUserOperationReceipt", json!([good_hash])).await;
    let block = receipt["receipt"]["blockNumber"].clone();
    assert_eq!(
        s_status(&s, good_hash).await,
        json!({ "status": "included", "transactionHash": bundle, "blockNumber": block })
    );
    let reason: Bytes =
        TORA::ERC20InsufficientBalance { sender: wallet.address, balance: U256::ZERO, needed: tora(5) }
            .abi_encode()
            .into();
    assert_eq!(
        s_status(&s, bad_hash).await,
        json!({ "status": "failed", "reason": reason, "transactionHash": bundle, "blockNumber": block })
    );
}

async fn s_status(s: &Stack, hash: serde_json::Value) -> serde_json::Value {
    s.ok("tora_getUserOperationStatus", json!([hash])).await
}

#[tokio::test]
async fn stake_status_reads_the_entry_points_deposit_info() {
    let s = Stack::start().await;
    let nobody = Address::repeat_byte(0x70);
    assert_eq!(
        s.ok("debug_bundler_getStakeStatus", json!([nobody, ENTRY_POINT_V07])).await,
        json!({ "stakeInfo": { "addr": nobody, "stake": "0", "unstakeDelaySec": "0" }, "isStaked": false })
    );
    // The deployer stakes 1 ETH for a day: ERC-7562's minimums exactly (the bundler's defaults).
    let one_eth = U256::from(10u64).pow(U256::from(18));
    let call = s.h.entry_point().addStake(86_400).into_transaction_request().with_value(one_eth);
    let pending = s.h.deployer.send_transaction(call).await.unwrap();
    tora_devnet::confirm(&s.h.deployer, "addStake", pending).await.unwrap();
    let staker = s.h.deployer_address();
    assert_eq!(
        s.ok("debug_bundler_getStakeStatus", json!([staker, ENTRY_POINT_V07])).await,
        json!({
            // Decimal strings, as the eth-infinitism bundler (and its compatibility suite) has them.
            "stakeInfo": { "addr": staker, "stake": "1000000000000000000", "unstakeDelaySec": "86400" },
            "isStaked": true,
        })
    );
    // Another EntryPoint is invalid params.
    assert_eq!(s.error_code("debug_bundler_getStakeStatus", json!([staker, Address::ZERO])).await, -32602);
}
