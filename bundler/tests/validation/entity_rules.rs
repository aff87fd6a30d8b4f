//! Factory and paymaster rules, and how a refusal by the EntryPoint itself is reported.

use crate::common::{
    Harness, code_and_rule, ether, mode, test_contracts, token_quote_op, wallet_ready_for_token_quotes,
};
use alloy::primitives::{B256, Bytes, U128, U256};
use alloy::sol_types::SolCall;
use alloy::sol_types::SolError;
use test_contracts::{DoubleCreateFactory, UnstakedPaymaster};
use tora_bundler::validation::{Phase, Violation};
use tora_core::{ENTRY_POINT_V07, ErrorCode};
use tora_devnet::keys;

/// An operation of a fresh `RuleBreakingAccount` paid by a fresh `UnstakedPaymaster` that
/// runs `paymaster_mode`.
async fn unstaked_paymaster_verdict(
    h: &Harness,
    paymaster_mode: u8,
) -> Result<tora_bundler::ValidationOutcome, tora_bundler::ValidationError> {
    let account = h.rule_account().await;
    let paymaster = UnstakedPaymaster::deploy(h.deployer.clone(), ENTRY_POINT_V07).await.unwrap();
    let pending = paymaster.deposit().value(ether(1)).send().await.unwrap();
    tora_devnet::confirm(&h.deployer, "paymaster deposit", pending).await.unwrap();
    let mut op = Harness::op(account, h.nonce(account).await);
    op.signature = Bytes::from(vec![mode::GOOD]);
    op.paymaster = Some(*paymaster.address());
    op.paymaster_verification_gas_limit = Some(U128::from(100_000));
    op.paymaster_post_op_gas_limit = Some(U128::from(50_000));
    op.paymaster_data = Some(Bytes::from(vec![paymaster_mode]));
    h.validator.validate(&op).await
}

#[tokio::test]
async fn unstaked_paymaster_without_storage_passes() {
    let h = Harness::start().await;
    let outcome = unstaked_paymaster_verdict(&h, 0).await.expect("valid");
    assert!(!outcome.paymaster.unwrap().staked);
}

#[tokio::test]
async fn an_unstaked_paymaster_returning_a_context_is_refused_unless_the_v07_rules_are_asked_for() {
    // EREP-050 of the current ERC-7562: its postOp would run code no stake answers for.
    let h = Harness::start().await;
    let err = unstaked_paymaster_verdict(&h, 3).await.unwrap_err();
    assert!(err.to_string().contains("must not return a context"), "{err}");
    assert_eq!(code_and_rule(Err(err)), (ErrorCode::BannedOpcode, "EREP-050".into()));
    // The v0.7-era text had lifted it (the compatibility suite's "EREP-050-regression").
    let h = Harness::start_with(tora_bundler::ValidationSettings {
        head_max_age: std::time::Duration::ZERO,
        unstaked_paymaster_context: true,
        ..Default::default()
    })
    .await;
    let outcome = unstaked_paymaster_verdict(&h, 3).await.expect("allowed under the v0.7 rules");
    assert_eq!(outcome.paymaster_context, Bytes::from_static(b"a context"));
}

#[tokio::test]
async fn the_paymasters_deposit_is_read_for_erep_010() {
    let h = Harness::start().await;
    let outcome = unstaked_paymaster_verdict(&h, 0).await.expect("valid");
    // 1 ETH deposited; validation itself takes nothing from it (the prefund is simulated).
    assert_eq!(outcome.paymaster_deposit, Some(tora_bundler::validation::Wei(ether(1))));
}

#[tokio::test]
async fn unstaked_paymaster_reading_its_own_storage_needs_stake() {
    let h = Harness::start().await;
    assert_eq!(
        code_and_rule(unstaked_paymaster_verdict(&h, 1).await),
        (ErrorCode::BannedOpcode, "STO-031".into())
    );
}

#[tokio::test]
async fn factory_using_create2_twice_is_banned() {
    let h = Harness::start().await;
    let factory = DoubleCreateFactory::deploy(h.deployer.clone(), ENTRY_POINT_V07).await.unwrap();
    let salt = B256::repeat_byte(0x42);
    let sender = factory.getAddress(salt).call().await.unwrap();
    h.fund(sender, ether(1)).await;
    let mut op = Harness::op(sender, h.nonce(sender).await);
    // Two contract deployments: enough gas that only the rule, not gas, can refuse it.
    op.verification_gas_limit = U128::from(3_000_000);
    op.factory = Some(*factory.address());
    op.factory_data = Some(DoubleCreateFactory::createAccountCall { salt }.abi_encode().into());
    assert_eq!(code_and_rule(h.validator.validate(&op).await), (ErrorCode::BannedOpcode, "OP-031".into()));
}

#[tokio::test]
async fn quote_signed_by_the_wrong_key_is_a_signature_error() {
    let h = Harness::start().await;
    let wallet = wallet_ready_for_token_quotes(&h).await;
    let (op, _) = token_quote_op(&h, &wallet, keys::BUNDLER).await;
    assert_eq!(code_and_rule(h.validator.validate(&op).await), (ErrorCode::InvalidSignature, String::new()));
}

#[tokio::test]
async fn paymaster_revert_is_a_paymaster_rejection_with_its_revert_data() {
    let h = Harness::start().await;
    let wallet = wallet_ready_for_token_quotes(&h).await;
    // A 1-unit TORA cap: ToraPaymaster reverts with QuoteExceeded.
    let (op, _) =
        crate::common::token_quote_op_capped(&h, &wallet, keys::PAYMASTER_SIGNER, U256::from(1)).await;
    match h.validator.validate(&op).await {
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
    let h = Harness::start().await;
    // An account that does not exist and no initCode: the EntryPoint refuses with AA20.
    let op = Harness::op(alloy::primitives::Address::repeat_byte(0x77), Default::default());
    match h.validator.validate(&op).await {
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
    use tora_core::contracts::TORA;
    use tora_core::paymaster_quote::{PaymasterData, Permit, Quote, QuoteMode, sign_quote};
    let wallet = h.new_wallet(salt).await;
    let tora = TORA::new(h.contracts().tora, h.deployer.clone());
    let pending = tora.transfer(wallet.address, ether(1_000)).send().await.unwrap();
    tora_devnet::confirm(&h.deployer, "transfer TORA", pending).await.unwrap();
    let mut op = h.first_op(&wallet, Bytes::new()).await;
    op.paymaster = Some(h.contracts().paymaster);
    op.paymaster_verification_gas_limit = Some(U128::from(300_000));
    op.paymaster_post_op_gas_limit = Some(U128::from(60_000));
    let quote = Quote {
        mode: QuoteMode::Token,
        valid_until: 0,
        valid_after: 0,
        payer: h.contracts().tora,
        exchange_rate: crate::common::rate(),
        max_token_cost: ether(100),
    };
    let digest = tora_core::permit::permit(
        wallet.address,
        h.contracts().paymaster,
        quote.max_token_cost,
        U256::ZERO,
        deadline,
    )
    .tora_digest(h.chain_id, h.contracts().tora);
    let signature = sign_quote(
        &tora_devnet::keys::signer(keys::PAYMASTER_SIGNER),
        &op,
        &quote,
        h.chain_id,
        h.contracts().paymaster,
    )
    .unwrap();
    let permit = Permit { deadline, signature: wallet.sign_digest(digest) };
    op.paymaster_data = Some(PaymasterData { quote, signature, permit: Some(permit) }.encode());
    wallet.sign_user_op(&mut op, ENTRY_POINT_V07, h.chain_id);
    op
}

#[tokio::test]
async fn a_new_wallet_pays_its_first_op_in_tora_with_a_permit() {
    let h = Harness::start().await;
    // The maximal deadline never reads the clock, and the staked factory allows the new
    // sender's TORA storage to be touched (STO-022): the canonical mempool can carry it.
    let op = first_op_with_permit(&h, 9, U256::MAX).await;
    let outcome = h.validator.validate(&op).await.expect("valid under ERC-7562");
    assert!(outcome.factory.unwrap().staked);
    assert!(outcome.paymaster.unwrap().staked);
}

#[tokio::test]
async fn a_permit_with_a_finite_deadline_reads_the_clock_and_is_refused() {
    let h = Harness::start().await;
    let op = first_op_with_permit(&h, 10, U256::from(u64::MAX)).await;
    let err = h.validator.validate(&op).await.unwrap_err();
    assert_eq!(tora_core::RpcError::from(&err).code, ErrorCode::BannedOpcode);
    match &err {
        tora_bundler::ValidationError::Rule(Violation::Opcode { rule, phase, contract, opcode }) => {
            assert_eq!(*rule, "OP-011");
            assert_eq!(*phase, Phase::Paymaster);
            assert_eq!(*contract, h.contracts().tora);
            assert_eq!(*opcode, revm::bytecode::opcode::TIMESTAMP);
        }
        other => panic!("expected OP-011 TIMESTAMP in TORA, got {other}"),
    }
}

/// An operation paid by a fresh `UnstakedPaymaster` in mode 2: it reads the sender's `credit`
/// in a RuleHelper (storage associated with the sender).
async fn paymaster_reading_sender_credit(h: &Harness, op: &mut tora_core::UserOperation) {
    let helper = test_contracts::RuleHelper::deploy(h.deployer.clone()).await.unwrap();
    let paymaster = UnstakedPaymaster::deploy(h.deployer.clone(), ENTRY_POINT_V07).await.unwrap();
    let pending = paymaster.deposit().value(ether(1)).send().await.unwrap();
    tora_devnet::confirm(&h.deployer, "paymaster deposit", pending).await.unwrap();
    op.paymaster = Some(*paymaster.address());
    op.paymaster_verification_gas_limit = Some(U128::from(100_000));
    op.paymaster_post_op_gas_limit = Some(U128::from(50_000));
    op.paymaster_data = Some([&[2u8][..], helper.address().as_slice()].concat().into());
}

#[tokio::test]
async fn existing_senders_associated_storage_is_allowed_to_unstaked_entities() {
    let h = Harness::start().await;
    let account = h.rule_account().await;
    let mut op = Harness::op(account, h.nonce(account).await);
    op.signature = Bytes::from(vec![mode::GOOD]);
    paymaster_reading_sender_credit(&h, &mut op).await;
    let outcome = h.validator.validate(&op).await.expect("STO-021 allows it");
    assert!(!outcome.paymaster.unwrap().staked);
    assert_eq!(outcome.associated_storage.len(), 1);
}

#[tokio::test]
async fn new_senders_associated_storage_needs_a_staked_factory() {
    let h = Harness::start().await;
    // The npm SimpleAccountFactory is not staked (ToraAccountFactory is).
    let wallet = h.new_wallet_of(h.contracts().simple_account_factory, 11).await;
    let mut op = h.first_op(&wallet, Bytes::new()).await;
    paymaster_reading_sender_credit(&h, &mut op).await;
    wallet.sign_user_op(&mut op, ENTRY_POINT_V07, h.chain_id);
    match h.validator.validate(&op).await {
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
