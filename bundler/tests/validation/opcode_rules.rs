//! Account-side rule breakers: one `RuleBreakingAccount` mode per test, each with the
//! ERC-4337 code and ERC-7562 rule it must be refused with.

use crate::common::{ValidationHarness, code_and_rule, mode};
use revm::bytecode::opcode;
use tora_bundler::ValidationError;
use tora_bundler::validation::{Phase, Violation};
use tora_core::ErrorCode;

/// The rule and opcode an opcode violation names, checking it is the account's own code.
async fn banned_opcode(m: u8) -> (&'static str, u8) {
    let v = ValidationHarness::start().await;
    let account = v.rule_account().await;
    match v.validate_mode(account, m).await {
        Err(err @ ValidationError::Rule(Violation::Opcode { .. })) => {
            assert_eq!(tora_core::RpcError::from(&err).code, ErrorCode::BannedOpcode);
            let ValidationError::Rule(Violation::Opcode { rule, phase, contract, opcode }) = err else {
                unreachable!()
            };
            assert_eq!(phase, Phase::Account);
            assert_eq!(contract, account);
            (rule, opcode)
        }
        other => panic!("expected an opcode violation, got {other:?}"),
    }
}

async fn verdict(m: u8) -> (ErrorCode, String) {
    let v = ValidationHarness::start().await;
    let account = v.rule_account().await;
    code_and_rule(v.validate_mode(account, m).await)
}

#[tokio::test]
async fn account_following_the_rules_passes() {
    let v = ValidationHarness::start().await;
    let account = v.rule_account().await;
    let outcome = v.validate_mode(account, mode::GOOD).await.expect("valid");
    // STO-010: the account's own storage (its counter) is allowed and recorded.
    assert!(outcome.storage.contains_key(&account));
}

#[tokio::test]
async fn timestamp_is_a_banned_opcode() {
    assert_eq!(banned_opcode(mode::TIMESTAMP).await, ("OP-011", opcode::TIMESTAMP));
}

#[tokio::test]
async fn gasprice_is_a_banned_opcode() {
    assert_eq!(banned_opcode(mode::GASPRICE).await, ("OP-011", opcode::GASPRICE));
}

#[tokio::test]
async fn blockhash_is_a_banned_opcode() {
    assert_eq!(banned_opcode(mode::BLOCKHASH).await, ("OP-011", opcode::BLOCKHASH));
}

#[tokio::test]
async fn gas_not_followed_by_a_call_is_banned() {
    assert_eq!(banned_opcode(mode::GAS_READ).await, ("OP-012", opcode::GAS));
}

#[tokio::test]
async fn an_inner_out_of_gas_is_banned_even_when_caught() {
    assert_eq!(verdict(mode::INNER_OUT_OF_GAS).await, (ErrorCode::BannedOpcode, "OP-020".into()));
}

#[tokio::test]
async fn calling_a_codeless_address_is_banned() {
    assert_eq!(verdict(mode::CODELESS_CALL).await, (ErrorCode::BannedOpcode, "OP-041".into()));
}

#[tokio::test]
async fn reading_the_entry_point_other_than_deposit_is_banned() {
    assert_eq!(verdict(mode::ENTRY_POINT_READ).await, (ErrorCode::BannedOpcode, "OP-054".into()));
}

#[tokio::test]
async fn a_call_with_value_to_anyone_but_the_entry_point_is_banned() {
    assert_eq!(verdict(mode::VALUE_CALL).await, (ErrorCode::BannedOpcode, "OP-061".into()));
}

#[tokio::test]
async fn a_precompile_outside_the_allowlist_is_banned() {
    assert_eq!(verdict(mode::NON_PRECOMPILE).await, (ErrorCode::BannedOpcode, "OP-062".into()));
}

#[tokio::test]
async fn running_the_entry_points_code_by_delegatecall_is_banned() {
    // The call's target is the account itself: only its code address says EntryPoint.
    let v = ValidationHarness::start().await;
    let account = v.rule_account().await;
    let err = v.validate_mode(account, mode::DELEGATECALL_ENTRY_POINT).await.unwrap_err();
    assert_eq!(code_and_rule(Err(err)), (ErrorCode::BannedOpcode, "OP-054".into()));
}

#[tokio::test]
async fn a_valid_after_in_the_future_is_out_of_time_range() {
    let v = ValidationHarness::start().await;
    let account = v.rule_account().await;
    let now = v.h.now().await;
    // 10 s ahead: within the 30 s margin that validUntil gets, but ERC-4337 wants
    // validAfter <= block.timestamp, or handleOps refuses it (AA22) and blames the account.
    let soon = (now + 10).to_be_bytes();
    let err = v.validate_mode_with(account, mode::VALID_AFTER, &soon[2..]).await.unwrap_err();
    assert_eq!(code_and_rule(Err(err)), (ErrorCode::OutOfTimeRange, String::new()));
    // Already valid: passes.
    let past = (now - 1).to_be_bytes();
    v.validate_mode_with(account, mode::VALID_AFTER, &past[2..]).await.expect("valid since a second ago");
}

/// The 160-byte RIP-7212 input (hash, r, s, x, y) of a valid secp256r1 signature.
fn p256_input() -> Vec<u8> {
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    use p256::ecdsa::{Signature, SigningKey};
    let key = SigningKey::from_bytes(&[7u8; 32].into()).unwrap();
    let hash = [0x42u8; 32];
    let signature: Signature = key.sign_prehash(&hash).unwrap();
    let point = key.verifying_key().to_encoded_point(false);
    [&hash[..], &signature.r().to_bytes(), &signature.s().to_bytes(), point.x().unwrap(), point.y().unwrap()]
        .concat()
}

#[tokio::test]
async fn p256_verify_is_allowed_and_answered_only_where_the_chain_has_it() {
    // Off (the dev chain spec): 0x100 is an empty account in the simulation, as on such a
    // chain, so the account's own check fails first (the rule, OP-062, is pinned in rules.rs).
    let v = ValidationHarness::start().await;
    let account = v.rule_account().await;
    let err = v.validate_mode_with(account, mode::P256_VERIFY, &p256_input()).await.unwrap_err();
    assert!(err.to_string().contains("P256 signature invalid"), "{err}");
    // On (as on opBNB and Tensora): allowed, and the simulation runs the precompile, so the
    // account sees a valid signature (revm's Prague set has no 0x100 of its own).
    let v = ValidationHarness::start_with(tora_bundler::ValidationSettings {
        head_max_age: std::time::Duration::ZERO,
        p256_precompile: true,
        ..Default::default()
    })
    .await;
    let account = v.rule_account().await;
    v.validate_mode_with(account, mode::P256_VERIFY, &p256_input()).await.expect("P256VERIFY answers 1");
    // A wrong signature is the account's revert, not a rule.
    let mut wrong = p256_input();
    wrong[0] ^= 1;
    let err = v.validate_mode_with(account, mode::P256_VERIFY, &wrong).await.unwrap_err();
    assert!(err.to_string().contains("P256 signature invalid"), "{err}");
}

#[tokio::test]
async fn transient_storage_of_the_account_is_allowed() {
    let v = ValidationHarness::start().await;
    let account = v.rule_account().await;
    v.validate_mode(account, mode::OWN_TRANSIENT)
        .await
        .expect("OP-070 treats the account's own transient storage as its storage (STO-010)");
}

#[tokio::test]
async fn transient_write_to_another_contract_is_banned() {
    assert_eq!(verdict(mode::FOREIGN_TSTORE).await, (ErrorCode::BannedOpcode, "STO-033".into()));
}

#[tokio::test]
async fn unstaked_account_reading_unassociated_storage_needs_stake() {
    assert_eq!(verdict(mode::FOREIGN_STORAGE).await, (ErrorCode::BannedOpcode, "STO-033".into()));
}

#[tokio::test]
async fn balance_needs_a_staked_entity() {
    assert_eq!(verdict(mode::BALANCE).await, (ErrorCode::BannedOpcode, "OP-080".into()));
}

#[tokio::test]
async fn failed_account_signature_is_a_signature_error() {
    assert_eq!(verdict(mode::BAD_SIGNATURE).await, (ErrorCode::InvalidSignature, String::new()));
}

#[tokio::test]
async fn expired_validity_is_out_of_time_range() {
    assert_eq!(verdict(mode::EXPIRED).await, (ErrorCode::OutOfTimeRange, String::new()));
}
