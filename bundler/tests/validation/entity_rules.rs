//! Factory and paymaster rules, and how a refusal by the EntryPoint itself is reported.

use crate::common::{ValidationHarness, code_and_rule, mode, test_contracts};
use alloy::primitives::{B256, Bytes, U128, U256};
use alloy::sol_types::SolCall;
use alloy::sol_types::SolError;
use test_contracts::DoubleCreateFactory;
use tora_bundler::validation::{Phase, Violation};
use tora_core::{ENTRY_POINT_V07, ErrorCode};
use tora_devnet::harness::{Harness, ether, tora};
use tora_devnet::keys;

/// An operation of a fresh `RuleBreakingAccount` paid by a fresh `UnstakedPaymaster` that
/// runs `paymaster_mode`.
async fn unstaked_paymaster_verdict(
    v: &ValidationHarness,
    paymaster_mode: u8,
) -> Result<tora_bundler::ValidationOutcome, tora_bundler::ValidationError> {
    let account = v.rule_account().await;
    let mut op = v.h.op_from(account).await;
    op.signature = Bytes::from(vec![mode::GOOD]);
    v.pay_with_unstaked_paymaster(&mut op, Bytes::from(vec![paymaster_mode])).await;
    v.validator.validate(&op).await
}

#[tokio::test]
async fn unstaked_paymaster_without_storage_passes() {
    let v = ValidationHarness::start().await;
    let outcome = unstaked_paymaster_verdict(&v, 0).await.expect("valid");
    assert!(!outcome.paymaster.unwrap().staked);
}

#[tokio::test]
async fn an_unstaked_paymaster_returning_a_context_is_refused_unless_the_v07_rules_are_asked_for() {
    // EREP-050 of the current ERC-7562: its postOp would run code no stake answers for.
    let v = ValidationHarness::start().await;
    let err = unstaked_paymaster_verdict(&v, 3).await.unwrap_err();
    assert!(err.to_string().contains("must not return a context"), "{err}");
    assert_eq!(code_and_rule(Err(err)), (ErrorCode::BannedOpcode, "EREP-050".into()));
    // The v0.7-era text had lifted it (the compatibility suite's "EREP-050-regression").
    let v = ValidationHarness::start_with(tora_bundler::ValidationSettings {
        head_max_age: std::time::Duration::ZERO,
        unstaked_paymaster_context: true,
        ..Default::default()
    })
    .await;
    let outcome = unstaked_paymaster_verdict(&v, 3).await.expect("allowed under the v0.7 rules");
    assert_eq!(outcome.paymaster_context, Bytes::from_static(b"a context"));
}

#[tokio::test]
async fn the_paymasters_deposit_is_read_for_erep_010() {
    let v = ValidationHarness::start().await;
    let outcome = unstaked_paymaster_verdict(&v, 0).await.expect("valid");
    // 1 ETH deposited; validation itself takes nothing from it (the prefund is simulated).
    assert_eq!(outcome.paymaster_deposit, Some(tora_bundler::validation::Wei(ether(1))));
}

#[tokio::test]
async fn unstaked_paymaster_reading_its_own_storage_needs_stake() {
    let v = ValidationHarness::start().await;
    assert_eq!(
        code_and_rule(unstaked_paymaster_verdict(&v, 1).await),
        (ErrorCode::BannedOpcode, "STO-031".into())
    );
}

#[tokio::test]
async fn factory_using_create2_twice_is_banned() {
    let v = ValidationHarness::start().await;
    let factory = DoubleCreateFactory::deploy(v.h.deployer.clone(), ENTRY_POINT_V07).await.unwrap();
    let salt = B256::repeat_byte(0x42);
    let sender = factory.getAddress(salt).call().await.unwrap();
    v.h.fund(sender, ether(1)).await;
    let mut op = v.h.op_from(sender).await;
    // Two contract deployments: enough gas that only the rule, not gas, can refuse it.
    op.verification_gas_limit = U128::from(3_000_000);
    op.factory = Some(*factory.address());
    op.factory_data = Some(DoubleCreateFactory::createAccountCall { salt }.abi_encode().into());
    assert_eq!(code_and_rule(v.validator.validate(&op).await), (ErrorCode::BannedOpcode, "OP-031".into()));
}

#[tokio::test]
async fn quote_signed_by_the_wrong_key_is_a_signature_error() {
    let v = ValidationHarness::start().await;
    let wallet = v.h.wallet_paying_in_tora(7).await;
    let (op, _) = v.h.token_quote_op(&wallet, tora(100), keys::BUNDLER).await;
    assert_eq!(code_and_rule(v.validator.validate(&op).await), (ErrorCode::InvalidSignature, String::new()));
}

#[tokio::test]
async fn paymaster_revert_is_a_paymaster_rejection_with_its_revert_data() {
    let v = ValidationHarness::start().await;
    let wallet = v.h.wallet_paying_in_tora(7).await;
    // A 1-unit TORA cap: ToraPaymaster reverts with QuoteExceeded.
    let (op, _) = v.h.token_quote_op(&wallet, U256::from(1), keys::PAYMASTER_SIGNER).await;
    match v.validator.validate(&op).await {
        Err(err @ tora_bundler::ValidationError::Rejected(_)) => {
            assert_eq!(tora_core::RpcError::from(&err).code, ErrorCode::RejectedByPaymaster);
            assert!(err.to_string().starts_with("AA33"), "{err}");
            let tora_bundler::ValidationError::Rejected(revert) = &err else { unreachable!() };
            let inner = &revert.inner;
            let selector = tora_core::contracts::ToraPaymaster::QuoteExceeded::SELECTOR;
            assert_eq!(&inner[..4], selector.as_slice());
            assert!(tora_core::RpcError::from(&err).data.is_some());
        }
        other => panic!("expected an AA33 rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn entry_point_refusal_is_reported_with_its_reason() {
    let v = ValidationHarness::start().await;
    // An account that does not exist and no initCode: the EntryPoint refuses with AA20.
    let op = v.h.op_from(alloy::primitives::Address::repeat_byte(0x77)).await;
    match v.validator.validate(&op).await {
        Err(err @ tora_bundler::ValidationError::Rejected(_)) => {
            assert_eq!(tora_core::RpcError::from(&err).code, ErrorCode::RejectedByEntryPointOrAccount);
            assert!(err.to_string().starts_with("AA20"), "{err}");
        }
        other => panic!("expected an AA20 rejection, got {other:?}"),
    }
}

/// A first operation of a new ToraAccount (staked factory) paying in TORA through an EIP-2612
/// permit in paymasterData, signed for `deadline`.
async fn first_op_with_permit(h: &Harness, salt: u64, deadline: U256) -> tora_core::UserOperation {
    let wallet = h.new_wallet(salt).await;
    h.send_tora(wallet.address, tora(1_000)).await;
    let mut op = h.op(&wallet, true, Bytes::new()).await;
    let quote = h.token_quote(tora(100)).await;
    let permit = h.permit_until(&wallet, quote.max_token_cost, deadline).await;
    h.attach_quote(&mut op, quote, Some(permit));
    wallet.sign_user_op(&mut op, ENTRY_POINT_V07, h.chain_id);
    op
}

#[tokio::test]
async fn a_new_wallet_pays_its_first_op_in_tora_with_a_permit() {
    let v = ValidationHarness::start().await;
    // The maximal deadline never reads the clock, and the staked factory allows the new
    // sender's TORA storage to be touched (STO-022): the canonical mempool can carry it.
    let op = first_op_with_permit(&v.h, 9, U256::MAX).await;
    let outcome = v.validator.validate(&op).await.expect("valid under ERC-7562");
    assert!(outcome.factory.unwrap().staked);
    assert!(outcome.paymaster.unwrap().staked);
}

#[tokio::test]
async fn a_permit_with_a_finite_deadline_reads_the_clock_and_is_refused() {
    let v = ValidationHarness::start().await;
    let op = first_op_with_permit(&v.h, 10, U256::from(u64::MAX)).await;
    let err = v.validator.validate(&op).await.unwrap_err();
    assert_eq!(tora_core::RpcError::from(&err).code, ErrorCode::BannedOpcode);
    match &err {
        tora_bundler::ValidationError::Rule(Violation::Opcode { rule, phase, contract, opcode }) => {
            assert_eq!(*rule, "OP-011");
            assert_eq!(*phase, Phase::Paymaster);
            assert_eq!(*contract, v.h.contracts().tora);
            assert_eq!(*opcode, revm::bytecode::opcode::TIMESTAMP);
        }
        other => panic!("expected OP-011 TIMESTAMP in TORA, got {other}"),
    }
}

/// An operation paid by a fresh `UnstakedPaymaster` in mode 2: it reads the sender's `credit`
/// in a RuleHelper (storage associated with the sender).
async fn paymaster_reading_sender_credit(v: &ValidationHarness, op: &mut tora_core::UserOperation) {
    let helper = test_contracts::RuleHelper::deploy(v.h.deployer.clone()).await.unwrap();
    v.pay_with_unstaked_paymaster(op, [&[2u8][..], helper.address().as_slice()].concat().into()).await;
}

#[tokio::test]
async fn existing_senders_associated_storage_is_allowed_to_unstaked_entities() {
    let v = ValidationHarness::start().await;
    let account = v.rule_account().await;
    let mut op = v.h.op_from(account).await;
    op.signature = Bytes::from(vec![mode::GOOD]);
    paymaster_reading_sender_credit(&v, &mut op).await;
    let outcome = v.validator.validate(&op).await.expect("STO-021 allows it");
    assert!(!outcome.paymaster.unwrap().staked);
    assert_eq!(outcome.associated_storage.len(), 1);
}

#[tokio::test]
async fn new_senders_associated_storage_needs_a_staked_factory() {
    let v = ValidationHarness::start().await;
    // The npm SimpleAccountFactory is not staked (ToraAccountFactory is).
    let wallet = v.h.funded_wallet_of(v.h.contracts().simple_account_factory, 11).await;
    let mut op = v.h.first_op(&wallet, Bytes::new()).await;
    paymaster_reading_sender_credit(&v, &mut op).await;
    wallet.sign_user_op(&mut op, ENTRY_POINT_V07, v.h.chain_id);
    match v.validator.validate(&op).await {
        Err(err @ tora_bundler::ValidationError::Rule(Violation::NeedsStake { .. })) => {
            assert_eq!(tora_core::RpcError::from(&err).code, ErrorCode::BannedOpcode);
            let tora_bundler::ValidationError::Rule(Violation::NeedsStake { rule, entity, phase, .. }) = &err
            else {
                unreachable!()
            };
            assert_eq!(*rule, "STO-022");
            // The paymaster's validation used it: the paymaster's stake would have allowed it.
            assert_eq!(*phase, Phase::Paymaster);
            assert_eq!(Some(*entity), op.paymaster);
        }
        other => panic!("expected STO-022, got {other:?}"),
    }
}
