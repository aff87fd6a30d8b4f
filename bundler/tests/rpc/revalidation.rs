//! Bundle time: each operation is validated again and dropped when a contract its validation
//! touched changed code since it was accepted (ERC-7562 COD-010); a paymaster's deposit must
//! cover every pending operation it pays for, or the next one is refused (EREP-010).

use crate::common::{Stack, dev_spec};
use alloy::primitives::{Bytes, U128, U256};
use alloy::providers::Provider;
use serde_json::json;
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
        self.pool.add(PoolOperation::new(op.clone(), &outcome)).await.unwrap()
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
async fn a_paymaster_whose_deposit_covers_one_of_two_operations_is_refused_the_second() {
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
    // operation: each validates alone, but ERC-7562 EREP-010 counts the pool's total.
    let gas = 400_000 + 120_000 + 100_000 + 50_000 + 60_000;
    let prefund = U256::from(gas) * U256::from(ops[0].max_fee_per_gas);
    let pending = paymaster.deposit().value(prefund).send().await.unwrap();
    tora_devnet::confirm(&s.h.deployer, "paymaster deposit", pending).await.unwrap();
    let first = s.send(&ops[0]).await;
    let refused = s.refusal("eth_sendUserOperation", json!([ops[1], ENTRY_POINT_V07])).await;
    assert_eq!(refused.code, -32508, "{refused:?}");
    let message = refused.message.as_str();
    assert!(message.starts_with("paymaster deposit too low for all mempool UserOps"), "{message}");
    assert!(
        message.contains(&format!("has {prefund} wei, its operations need {}", prefund * U256::from(2))),
        "{message}"
    );
    let tx = s.bundle_now().await;
    let receipt = s.ok("eth_getUserOperationReceipt", json!([first])).await;
    assert_eq!(receipt["receipt"]["transactionHash"], tx);
    assert_eq!(s.ok("debug_bundler_dumpMempool", json!([])).await, json!([]));
    // Nobody failed in a bundle: the paymaster is seen once, included once, and ok.
    let reputation = s.ok("debug_bundler_dumpReputation", json!([ENTRY_POINT_V07])).await;
    let entry =
        reputation.as_array().unwrap().iter().find(|e| e["address"] == json!(paymaster.address())).cloned();
    assert_eq!(
        entry.unwrap(),
        json!({ "address": paymaster.address(), "opsSeen": "0x1", "opsIncluded": "0x1", "status": "ok" })
    );
}
