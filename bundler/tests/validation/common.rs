//! The validation tests' harness: the shared test kit's devnet with a validator on it, and the
//! rule-breaking test contracts.

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, U128};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;
use std::time::Duration;
use tora_bundler::evm::{EntryPointSimulations, ValidationResult};
use tora_bundler::{ValidationError, ValidationOutcome, ValidationSettings, Validator};
use tora_core::{ChainSpec, ENTRY_POINT_V07, ErrorCode, UserOperation};
use tora_devnet::confirm;
use tora_devnet::harness::{Harness, ether};

use test_contracts::{RuleBreakingAccount, RuleHelper, UnstakedPaymaster};
pub(crate) use tora_devnet::test_contracts;

/// `RuleBreakingAccount`'s modes: the first signature byte picks what `validateUserOp` does.
pub(crate) mod mode {
    pub(crate) const GOOD: u8 = 0;
    pub(crate) const TIMESTAMP: u8 = 1;
    pub(crate) const GASPRICE: u8 = 2;
    pub(crate) const BLOCKHASH: u8 = 3;
    pub(crate) const FOREIGN_STORAGE: u8 = 4;
    pub(crate) const CODELESS_CALL: u8 = 5;
    pub(crate) const VALUE_CALL: u8 = 6;
    pub(crate) const FOREIGN_TSTORE: u8 = 7;
    pub(crate) const OWN_TRANSIENT: u8 = 8;
    pub(crate) const BALANCE: u8 = 9;
    pub(crate) const BAD_SIGNATURE: u8 = 10;
    pub(crate) const EXPIRED: u8 = 11;
    pub(crate) const GAS_READ: u8 = 12;
    pub(crate) const INNER_OUT_OF_GAS: u8 = 13;
    pub(crate) const ENTRY_POINT_READ: u8 = 14;
    pub(crate) const NON_PRECOMPILE: u8 = 15;
    pub(crate) const DELEGATECALL_ENTRY_POINT: u8 = 16;
    pub(crate) const P256_VERIFY: u8 = 17;
    pub(crate) const VALID_AFTER: u8 = 18;
}

/// A devnet (with the shared test kit's wallets and op builders) and a validator on it.
pub(crate) struct ValidationHarness {
    /// The devnet and the shared test kit.
    pub h: Harness,
    /// The validator under test, connected to `h`'s node.
    pub validator: Validator,
}

impl ValidationHarness {
    /// A validator that asks for the latest block at every validation, so that each test's
    /// verdicts follow the chain changes it just made.
    pub(crate) async fn start() -> Self {
        Self::start_with(ValidationSettings { head_max_age: Duration::ZERO, ..Default::default() }).await
    }

    /// A validator with `settings`, on a fresh devnet.
    pub(crate) async fn start_with(settings: ValidationSettings) -> Self {
        let h = Harness::start().await;
        let spec = ChainSpec::load("dev").unwrap().with_id(h.chain_id);
        let validator =
            Validator::new(&h.devnet.deployment.rpc_url, &spec, settings).await.expect("validator connects");
        Self { h, validator }
    }

    /// Deploys a `RuleBreakingAccount` (and its helper), funded with 1 ETH.
    pub(crate) async fn rule_account(&self) -> Address {
        let deployer = &self.h.deployer;
        let helper = RuleHelper::deploy(deployer.clone()).await.unwrap();
        let account =
            RuleBreakingAccount::deploy(deployer.clone(), ENTRY_POINT_V07, *helper.address()).await.unwrap();
        self.h.fund(*account.address(), ether(1)).await;
        *account.address()
    }

    /// Deploys an `UnstakedPaymaster` with 1 ETH deposited at the EntryPoint and points `op` at
    /// it, with `paymaster_data` (its mode byte first) saying what its validation does.
    pub(crate) async fn pay_with_unstaked_paymaster(&self, op: &mut UserOperation, paymaster_data: Bytes) {
        let deployer = &self.h.deployer;
        let paymaster = UnstakedPaymaster::deploy(deployer.clone(), ENTRY_POINT_V07).await.unwrap();
        let pending = paymaster.deposit().value(ether(1)).send().await.unwrap();
        confirm(deployer, "paymaster deposit", pending).await.unwrap();
        op.paymaster = Some(*paymaster.address());
        op.paymaster_verification_gas_limit = Some(U128::from(100_000));
        op.paymaster_post_op_gas_limit = Some(U128::from(50_000));
        op.paymaster_data = Some(paymaster_data);
    }

    /// Validates an operation of a `RuleBreakingAccount` in `mode`.
    pub(crate) async fn validate_mode(
        &self,
        account: Address,
        mode: u8,
    ) -> Result<ValidationOutcome, ValidationError> {
        self.validate_mode_with(account, mode, &[]).await
    }

    /// [`Self::validate_mode`] with `args` after the mode byte of the signature.
    pub(crate) async fn validate_mode_with(
        &self,
        account: Address,
        mode: u8,
        args: &[u8],
    ) -> Result<ValidationOutcome, ValidationError> {
        let mut op = self.h.op_from(account).await;
        op.signature = [&[mode][..], args].concat().into();
        self.validator.validate(&op).await
    }

    /// The same simulation through the node: `eth_call` of `simulateValidation` with the
    /// EntryPoint's code overridden by EntryPointSimulations, at `block`.
    pub(crate) async fn eth_call_simulation(&self, op: &UserOperation, block: u64) -> ValidationResult {
        let call = EntryPointSimulations::simulateValidationCall { userOp: op.pack().into() };
        let tx = TransactionRequest::default()
            .with_to(ENTRY_POINT_V07)
            .with_input(call.abi_encode())
            .with_gas_limit(10_000_000);
        let overrides = tora_bundler::evm::simulation::eth_call_overrides(ENTRY_POINT_V07);
        let output = self
            .h
            .deployer
            .call(tx)
            .overrides(overrides)
            .block(block.into())
            .await
            .expect("eth_call simulateValidation succeeds");
        EntryPointSimulations::simulateValidationCall::abi_decode_returns(&output).unwrap()
    }
}

/// The error's ERC-4337 code and ERC-7562 rule id (empty when it is not a rule violation).
pub(crate) fn code_and_rule(result: Result<ValidationOutcome, ValidationError>) -> (ErrorCode, String) {
    let err = match result {
        Ok(outcome) => panic!("expected a rejection, got {outcome:?}"),
        Err(err) => err,
    };
    let code = tora_core::RpcError::from(&err).code;
    match &err {
        ValidationError::Rule(v) => (code, v.rule().to_owned()),
        other => {
            eprintln!("rejected: {other}");
            (code, String::new())
        }
    }
}
