//! eth_estimateUserOperationGas: estimates that make the operation land and are tight (the
//! callGasLimit the search found, less a little, fails on chain), state overrides, reverting
//! calls, and what an estimate costs in node calls.

use crate::common::{Stack, dev_spec, ms};
use alloy::primitives::{Address, Bytes, U128, U256};
use alloy::providers::Provider;
use alloy::sol_types::{SolCall, SolError};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;
use tora_bundler::ValidationSettings;
use tora_bundler::estimation::{Estimator, SEARCH_TOLERANCE};
use tora_bundler::evm::head::ChainHead;
use tora_core::contracts::TORA;
use tora_core::{ENTRY_POINT_V07, UserOperation};
use tora_devnet::SmartWallet;
use tora_devnet::harness::tora;

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

/// `op` with its gas fields and fees zeroed, as an estimate request carries them.
fn zeroed(op: &UserOperation) -> UserOperation {
    UserOperation {
        call_gas_limit: U128::ZERO,
        verification_gas_limit: U128::ZERO,
        pre_verification_gas: U256::ZERO,
        max_fee_per_gas: U128::ZERO,
        max_priority_fee_per_gas: U128::ZERO,
        ..op.clone()
    }
}

/// Estimates `request` over HTTP and applies the estimate's gas fields to `op`.
async fn estimate_into(s: &Stack, request: &UserOperation, op: &mut UserOperation) -> Value {
    let started = Instant::now();
    let estimate =
        s.ok("eth_estimateUserOperationGas", json!([without_gas_fields(request), ENTRY_POINT_V07])).await;
    eprintln!("estimate {estimate} in {:.1} ms", ms(started));
    op.pre_verification_gas = U256::from(gas(&estimate, "preVerificationGas"));
    op.verification_gas_limit = U128::from(gas(&estimate, "verificationGasLimit"));
    op.call_gas_limit = U128::from(gas(&estimate, "callGasLimit"));
    estimate
}

/// The callGasLimit the search found, before the margin: the estimate is
/// ceil(found × 11 / 10) + 5,000, so this is within a gas of what was found.
fn found_call_gas(estimate: &Value) -> u64 {
    (gas(estimate, "callGasLimit") - 5_000) * 10 / 11
}

/// Less than the least callGasLimit that works: below what the search found by its tolerance,
/// the rounding, `known_excess` and 1,000 more.
fn too_little(estimate: &Value, known_excess: u64) -> U128 {
    U128::from(found_call_gas(estimate) - SEARCH_TOLERANCE - known_excess - 1_000)
}

/// Sends `op`, bundles it, and returns its receipt's `success`.
async fn lands(s: &Stack, op: &UserOperation) -> bool {
    let hash = s.send(op).await;
    s.bundle_now().await;
    let receipt = s.ok("eth_getUserOperationReceipt", json!([hash])).await;
    receipt["success"].as_bool().unwrap_or_else(|| panic!("no receipt: {receipt}"))
}

/// A 1-wei transfer to RECIPIENT as a new wallet's first operation, paying its own gas.
async fn first_plain_op(s: &Stack, salt: u64) -> (SmartWallet, UserOperation) {
    let wallet = s.funded_wallet(s.h.contracts().tora_account_factory, salt).await;
    let mut op = s.h.op(&wallet, true, SmartWallet::execute(RECIPIENT, U256::from(1), Bytes::new())).await;
    // A signature of the right shape (over other gas values, so it does not verify).
    wallet.sign_user_op(&mut op, ENTRY_POINT_V07, s.h.chain_id);
    (wallet, op)
}

#[tokio::test]
async fn a_plain_calls_estimate_lands_and_less_call_gas_fails() {
    let s = Stack::start().await;
    let (wallet, mut op) = first_plain_op(&s, 5).await;
    let estimate = estimate_into(&s, &op.clone(), &mut op).await;
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
    wallet.sign_user_op(&mut op, ENTRY_POINT_V07, s.h.chain_id);
    assert!(lands(&s, &op).await, "the estimated operation succeeds");
    assert_eq!(s.h.deployer.get_balance(RECIPIENT).await.unwrap(), U256::from(1));

    // A wallet deployed beforehand (by a plain createAccount transaction) with ETH and no
    // deposit, as most wallets are: validation is cheap, and the prefund it sends from its
    // balance (a value call that also creates its deposit entry, ~30k gas) is a large share of
    // it. Probes with zero fees would not send it, and the operation would fail with AA26.
    let wallet = s.funded_wallet(s.h.contracts().simple_account_factory, 7).await;
    let factory = tora_core::contracts::SimpleAccountFactory::new(wallet.factory, &s.h.deployer);
    let create = factory.createAccount(wallet.owner.address(), wallet.salt);
    tora_devnet::confirm(&s.h.deployer, "createAccount", create.send().await.unwrap()).await.unwrap();
    // The probes zero the sender's deposit slot: it is where the EntryPoint keeps deposits
    // (checked against the paymaster's, the one deposit the devnet has).
    let paymaster = s.h.contracts().paymaster;
    let slot = tora_bundler::evm::deposit_slot(paymaster);
    let stored = s.h.deployer.get_storage_at(ENTRY_POINT_V07, slot.into()).await.unwrap();
    let deposit = s.h.entry_point().balanceOf(paymaster).call().await.unwrap();
    assert!(!deposit.is_zero());
    assert_eq!(stored, deposit, "the deposit's storage slot");
    let mut op = s.h.op(&wallet, false, SmartWallet::execute(RECIPIENT, U256::from(1), Bytes::new())).await;
    wallet.sign_user_op(&mut op, ENTRY_POINT_V07, s.h.chain_id);
    estimate_into(&s, &op.clone(), &mut op).await;
    wallet.sign_user_op(&mut op, ENTRY_POINT_V07, s.h.chain_id);
    assert!(lands(&s, &op).await, "the estimated second operation succeeds");
    assert_eq!(s.h.deployer.get_balance(RECIPIENT).await.unwrap(), U256::from(2));

    // The same operation from another new wallet (RECIPIENT exists now), with less callGas
    // than its estimate found: its call runs out of gas in the bundle.
    let (wallet, mut op) = first_plain_op(&s, 6).await;
    let estimate = estimate_into(&s, &op.clone(), &mut op).await;
    op.call_gas_limit = too_little(&estimate, 0);
    wallet.sign_user_op(&mut op, ENTRY_POINT_V07, s.h.chain_id);
    assert!(!lands(&s, &op).await, "callGasLimit {} is too little", op.call_gas_limit);
    assert_eq!(s.h.deployer.get_balance(RECIPIENT).await.unwrap(), U256::from(2));
}

/// A new wallet holding only TORA: its first operation deploys it and transfers 5 TORA to a
/// fresh recipient, paid in TORA through the ToraPaymaster with a permit (no approve).
async fn first_tora_op(s: &Stack, salt: u64, recipient: Address) -> (SmartWallet, UserOperation) {
    let h = &s.h;
    let wallet = h.new_wallet(salt).await;
    h.send_tora(wallet.address, tora(1_000)).await;
    let transfer: Bytes = TORA::transferCall { to: recipient, value: tora(5) }.abi_encode().into();
    let op = h.op(&wallet, true, SmartWallet::execute(h.contracts().tora, U256::ZERO, transfer)).await;
    (wallet, op)
}

/// The paymaster's quote (for 100 TORA at most, with a permit of it) over `op` as it is now,
/// then the wallet's signature.
async fn pay_in_tora(s: &Stack, wallet: &SmartWallet, op: &mut UserOperation) {
    let max_token_cost = tora(100);
    let permit = s.h.permit(wallet, max_token_cost).await;
    let quote = s.h.token_quote(max_token_cost).await;
    s.h.attach_quote(op, quote, Some(permit));
    wallet.sign_user_op(op, ENTRY_POINT_V07, s.h.chain_id);
}

#[tokio::test]
async fn a_first_tora_transfer_paid_with_a_permit_lands_with_its_estimate_and_fails_with_less() {
    let s = Stack::start().await;
    for (salt, recipient, enough) in
        [(41, Address::repeat_byte(0x41), true), (42, Address::repeat_byte(0x43), false)]
    {
        let (wallet, mut op) = first_tora_op(&s, salt, recipient).await;
        // A quote and permit as a paymaster's stub data would give them.
        pay_in_tora(&s, &wallet, &mut op).await;
        let request = op.clone();
        let estimate = estimate_into(&s, &request, &mut op).await;
        assert!(estimate["paymasterVerificationGasLimit"].is_string(), "{estimate}");
        if !enough {
            // The estimate runs the paymaster's validation with the probe's gas fields, which
            // its quote signature does not cover, so validation returns SIG_VALIDATION_FAILED
            // before touching TORA. In the bundle it has already called the token and charged
            // the wallet, so the transfer finds the token warm (2,500 less for the CALL), the
            // wallet's balance slot warm (2,100 less) and dirty (SSTORE 100, not 2,900). The
            // estimate is 7,400 above the need: on the safe side.
            op.call_gas_limit = too_little(&estimate, 7_400);
        }
        // The final quote covers the estimated gas.
        pay_in_tora(&s, &wallet, &mut op).await;
        assert_eq!(lands(&s, &op).await, enough, "callGasLimit {}", op.call_gas_limit);
        let received = if enough { tora(5) } else { U256::ZERO };
        assert_eq!(s.h.tora_balance(recipient).await, received);
    }
}

#[tokio::test]
async fn a_reverting_call_is_32521_with_its_revert_data_and_overrides_apply() {
    let s = Stack::start().await;
    // No TORA: transferring 5 reverts in the token with ERC20InsufficientBalance, which the
    // account bubbles up.
    let broke = s.h.new_wallet(43).await;
    let transfer: Bytes = TORA::transferCall { to: RECIPIENT, value: tora(5) }.abi_encode().into();
    let mut op = s.h.op(&broke, true, SmartWallet::execute(s.h.contracts().tora, U256::ZERO, transfer)).await;
    broke.sign_user_op(&mut op, ENTRY_POINT_V07, s.h.chain_id);
    let refusal =
        s.refusal("eth_estimateUserOperationGas", json!([without_gas_fields(&op), ENTRY_POINT_V07])).await;
    assert_eq!(refusal.code, -32521, "{refusal:?}");
    let expected: Bytes =
        TORA::ERC20InsufficientBalance { sender: broke.address, balance: U256::ZERO, needed: tora(5) }
            .abi_encode()
            .into();
    assert_eq!(refusal.data.as_ref().unwrap()["revertData"], json!(expected), "{refusal:?}");

    // Sending 1 ETH from an unfunded wallet reverts, unless an override gives it the ETH.
    let owner = tora_devnet::keys::signer(tora_devnet::keys::WALLET_OWNER);
    let factory = s.h.contracts().tora_account_factory;
    let wallet = SmartWallet::at(&s.h.deployer, factory, owner, U256::from(6)).await.unwrap();
    let one_eth = U256::from(10u64).pow(U256::from(18));
    let mut op = s.h.op(&wallet, true, SmartWallet::execute(RECIPIENT, one_eth, Bytes::new())).await;
    wallet.sign_user_op(&mut op, ENTRY_POINT_V07, s.h.chain_id);
    let request = without_gas_fields(&op);
    assert_eq!(s.error_code("eth_estimateUserOperationGas", json!([request, ENTRY_POINT_V07])).await, -32521);
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

#[tokio::test]
async fn an_estimate_at_a_block_already_estimated_costs_one_node_call() {
    let s = Stack::start().await;
    let (_wallet, op) = first_plain_op(&s, 7).await;
    let settings = ValidationSettings::default();
    let head = Arc::new(ChainHead::new(s.h.deployer.clone(), settings.head_max_age));
    let estimator = Estimator::new(s.h.deployer.clone(), &dev_spec(s.h.chain_id), &settings, head);
    let (first, cold) = estimator.estimate_with_cost(&zeroed(&op), None).await.unwrap();
    let (second, warm) = estimator.estimate_with_cost(&zeroed(&op), None).await.unwrap();
    eprintln!(
        "node calls per estimate: {} cold, {} warm; {} simulations",
        cold.node_calls, warm.node_calls, cold.simulations
    );
    assert_eq!(first, second);
    // The latest block only: every account and slot the probes read is cached for the block.
    assert_eq!(warm.node_calls, 1);
    assert_eq!(warm.simulations, cold.simulations);
    // The ceiling probe, then the search's ceil(log2((5,000,000 + 1) / 64)) halvings at most.
    assert!(cold.simulations <= 2 + 17, "{}", cold.simulations);
}

/// The estimator's probes run in revm: the same probe through the node's `eth_call` (with the
/// same EntryPoint override) must give the very same `ExecutionResult`.
#[tokio::test]
async fn a_probe_in_revm_matches_eth_call_of_simulate_handle_op() {
    use alloy::network::TransactionBuilder;
    use alloy::rpc::types::TransactionRequest;
    use tora_bundler::estimation::{latest_block, simulate_handle_op};
    use tora_bundler::evm::state::RpcState;
    use tora_bundler::evm::{EntryPointSimulations, SimulationEnv, simulation};

    let s = Stack::start().await;
    let (_wallet, op) = first_plain_op(&s, 8).await;
    let probe = UserOperation {
        call_gas_limit: U128::from(100_000),
        verification_gas_limit: U128::from(1_000_000),
        ..zeroed(&op)
    }
    .pack();
    let gas_limit = 15_000_000;
    let block = latest_block(&s.h.deployer).await.unwrap();

    let overrides = simulation::eth_call_overrides(ENTRY_POINT_V07);
    let call = EntryPointSimulations::simulateHandleOpCall {
        op: probe.clone().into(),
        target: Address::ZERO,
        targetCallData: Bytes::new(),
    };
    let request = TransactionRequest::default()
        .with_to(ENTRY_POINT_V07)
        .with_input(call.abi_encode())
        .with_gas_limit(gas_limit);
    let output = s.h.deployer.call(request).block(block.number.into()).overrides(overrides).await.unwrap();
    let node = EntryPointSimulations::simulateHandleOpCall::abi_decode_returns(&output).unwrap();

    let state = RpcState::new(
        s.h.deployer.clone(),
        tokio::runtime::Handle::current(),
        block,
        Default::default(),
        Default::default(),
        simulation::overrides(ENTRY_POINT_V07),
    );
    let env = SimulationEnv {
        entry_point: ENTRY_POINT_V07,
        sender_creator: tora_core::contracts::SENDER_CREATOR_V07,
        chain_id: s.h.chain_id,
        spec: ValidationSettings::default().spec,
        gas_limit,
        block,
        p256_precompile: false,
    };
    let run = tokio::task::spawn_blocking(move || simulate_handle_op(&state, &env, &probe))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(run.result, node);
    assert!(run.success && run.call_revert.is_none() && run.post_op_revert.is_none(), "{run:?}");
    // A new account's validation: deployment and all.
    assert!(node.preOpGas > U256::from(100_000), "{node:?}");
}
