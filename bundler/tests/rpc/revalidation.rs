//! Bundle time: each operation is validated again and dropped when a contract its validation
//! touched changed code since it was accepted (ERC-7562 COD-010); an operation that still fails
//! in the bundle's handleOps is dropped and the entity at fault banned.

use crate::common::{Stack, dev_spec};
use alloy::primitives::{Bytes, U128, U256};
use alloy::providers::Provider;
use serde_json::{Value, json};
use std::sync::Arc;
use tora_bundler::builder::{Builder, BuilderSettings, BundlingMode};
use tora_bundler::pool::{InMemoryPool, Mempool, PoolOperation, PoolSettings};
use tora_bundler::{ValidationSettings, Validator};
use tora_core::{ENTRY_POINT_V07, UserOperation};
use tora_devnet::test_contracts::UnstakedPaymaster;

/// A builder of its own over the stack's node, so the test reads each bundle's outcome.
struct OwnBuilder {
    validator: Arc<Validator>,
    pool: Arc<InMemoryPool>,
    builder: Builder<InMemoryPool>,
}

impl OwnBuilder {
    async fn new(s: &Stack) -> Self {
        let rpc_url = s.h.devnet.deployment.rpc_url.clone();
        let chain = dev_spec(s.h.chain_id);
        let validator =
            Arc::new(Validator::new(&rpc_url, &chain, ValidationSettings::default()).await.unwrap());
        let pool = Arc::new(InMemoryPool::new(PoolSettings::default()));
        let settings = BuilderSettings { max_bundle_gas: chain.max_bundle_gas, ..Default::default() };
        let builder = Builder::new(
            &rpc_url,
            &[tora_devnet::keys::BUNDLER],
            ENTRY_POINT_V07,
            pool.clone(),
            validator.clone(),
            settings,
            BundlingMode::Manual,
        )
        .unwrap();
        Self { validator, pool, builder }
    }

    /// Validates and adds, as eth_sendUserOperation does.
    async fn accept(&self, op: &UserOperation) -> alloy::primitives::B256 {
        let outcome = self.validator.validate(op).await.expect("valid at acceptance");
        self.pool.add(PoolOperation::new(op.clone(), &outcome)).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_whose_code_changed_after_acceptance_is_dropped_at_bundle_time() {
    let s = Stack::start().await;
    let own = OwnBuilder::new(&s).await;
    let factory = s.h.contracts().tora_account_factory;
    let changing = s.funded_wallet(factory, 70).await;
    own.accept(&s.first_op(&changing).await).await;
    assert_eq!(own.builder.send_bundle_now().await.unwrap().unwrap().included.len(), 1);
    let mut second = s.h.op(&changing, false, Bytes::new()).await;
    changing.sign_user_op(&mut second, ENTRY_POINT_V07, s.h.chain_id);
    let dropped = own.accept(&second).await;
    let healthy = own.accept(&s.first_op(&s.funded_wallet(factory, 71).await).await).await;
    // Same behaviour, new code: one byte past the end, which nothing executes.
    let code = s.h.deployer.get_code_at(changing.address).await.unwrap();
    let mut changed = code.to_vec();
    changed.push(0);
    s.h.anvil("anvil_setCode", json!([changing.address, Bytes::from(changed)])).await;
    let outcome = own.builder.send_bundle_now().await.unwrap().unwrap();
    assert_eq!(outcome.included, vec![healthy]);
    assert_eq!(outcome.dropped.len(), 1);
    assert_eq!(outcome.dropped[0].0, dropped);
    assert_eq!(
        outcome.dropped[0].1,
        format!("COD-010: code of {} changed since the operation was accepted", changing.address)
    );
    assert!(own.pool.dump().is_empty());
    // The status method can tell the wallet why (the chain never saw the operation).
    assert_eq!(own.builder.drop_reason(&dropped), Some(outcome.dropped[0].1.clone()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paymaster_whose_deposit_covers_one_of_two_operations_is_banned_at_bundle_time() {
    let s = Stack::start().await;
    let paymaster = UnstakedPaymaster::deploy(s.h.deployer.clone(), ENTRY_POINT_V07).await.unwrap();
    let factory = s.h.contracts().tora_account_factory;
    let mut ops = Vec::new();
    for salt in 72..74 {
        let wallet = s.funded_wallet(factory, salt).await;
        let mut op = s.h.op(&wallet, true, Bytes::new()).await;
        op.paymaster = Some(*paymaster.address());
        op.paymaster_verification_gas_limit = Some(U128::from(100_000));
        op.paymaster_post_op_gas_limit = Some(U128::from(50_000));
        wallet.sign_user_op(&mut op, ENTRY_POINT_V07, s.h.chain_id);
        ops.push(op);
    }
    // EntryPoint v0.7's prefund: every gas limit times maxFeePerGas. The deposit pays for one
    // operation: each validates alone, the second fails inside the bundle (AA31).
    let gas = 400_000 + 120_000 + 100_000 + 50_000 + 60_000;
    let prefund = U256::from(gas) * U256::from(ops[0].max_fee_per_gas);
    let pending = paymaster.deposit().value(prefund).send().await.unwrap();
    tora_devnet::confirm(&s.h.deployer, "paymaster deposit", pending).await.unwrap();
    let first = s.send(&ops[0]).await;
    let second = s.send(&ops[1]).await;
    let tx = s.ok("debug_bundler_sendBundleNow", json!([])).await;
    let receipt = s.ok("eth_getUserOperationReceipt", json!([first])).await;
    assert_eq!(receipt["receipt"]["transactionHash"], tx);
    assert_eq!(s.ok("eth_getUserOperationReceipt", json!([second])).await, Value::Null);
    assert_eq!(s.ok("debug_bundler_dumpMempool", json!([])).await, json!([]));
    let reputation = s.ok("debug_bundler_dumpReputation", json!([ENTRY_POINT_V07])).await;
    let entry = |address: alloy::primitives::Address| {
        reputation.as_array().unwrap().iter().find(|e| e["address"] == json!(address)).cloned().unwrap()
    };
    // Seen twice, +10,000 for the failure, its inclusions reset, then the first op's inclusion.
    assert_eq!(
        entry(*paymaster.address()),
        json!({ "address": paymaster.address(), "opsSeen": "0x2712", "opsIncluded": "0x1", "status": "banned" })
    );
    // The senders and the factory are not at fault.
    assert_eq!(entry(ops[1].sender)["status"], json!("ok"));
    assert_eq!(entry(ops[1].sender)["opsSeen"], json!("0x1"));
    assert_eq!(entry(factory)["status"], json!("ok"));
}
