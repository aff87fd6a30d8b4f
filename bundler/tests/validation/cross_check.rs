//! The in-process verdict equals the node's own run of the same simulation (`eth_call` with
//! the EntryPoint's code overridden by EntryPointSimulations), to the gas unit.

use crate::common::ValidationHarness;
use alloy::primitives::Bytes;
use tora_bundler::ValidationOutcome;
use tora_bundler::evm::ValidationResult;
use tora_devnet::harness::tora;
use tora_devnet::keys;

fn assert_same(outcome: &ValidationOutcome, node: &ValidationResult) {
    let info = &node.returnInfo;
    assert_eq!(outcome.pre_op_gas, info.preOpGas, "preOpGas");
    assert_eq!(outcome.prefund.0, info.prefund, "prefund");
    assert_eq!(outcome.account_validation_data, info.accountValidationData);
    assert_eq!(outcome.paymaster_validation_data, info.paymasterValidationData);
    assert_eq!(outcome.paymaster_context, info.paymasterContext);
    assert_eq!(outcome.sender.stake.0, node.senderInfo.stake);
}

#[tokio::test]
async fn first_op_matches_the_nodes_simulation() {
    let v = ValidationHarness::start().await;
    let wallet = v.h.funded_wallet(3).await;
    let op = v.h.first_op(&wallet, Bytes::new()).await;

    let outcome = v.validator.validate(&op).await.unwrap();
    let node = v.eth_call_simulation(&op, outcome.block_number).await;
    assert_same(&outcome, &node);
    assert_eq!(outcome.factory.unwrap().stake.0, node.factoryInfo.stake);
}

#[tokio::test]
async fn paymaster_op_matches_the_nodes_simulation() {
    let v = ValidationHarness::start().await;
    let wallet = v.h.wallet_paying_in_tora(7).await;
    let (op, _) = v.h.token_quote_op(&wallet, tora(100), keys::PAYMASTER_SIGNER).await;

    let outcome = v.validator.validate(&op).await.unwrap();
    let node = v.eth_call_simulation(&op, outcome.block_number).await;
    assert_same(&outcome, &node);
    let paymaster = outcome.paymaster.unwrap();
    assert_eq!(paymaster.stake.0, node.paymasterInfo.stake);
    assert_eq!(paymaster.unstake_delay_secs, node.paymasterInfo.unstakeDelaySec.to::<u64>());
}
