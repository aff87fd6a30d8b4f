//! The harness: a devnet, a validator on it, wallets and the rule-breaking test contracts.

use alloy::network::TransactionBuilder;
use alloy::primitives::aliases::U192;
use alloy::primitives::{Address, Bytes, U128, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;
use std::time::Duration;
use tora_bundler::evm::{EntryPointSimulations, ValidationResult};
use tora_bundler::{ValidationError, ValidationOutcome, ValidationSettings, Validator};
use tora_core::contracts::EntryPoint;
use tora_core::{ChainSpec, ENTRY_POINT_V07, ErrorCode, UserOperation};
use tora_devnet::keys::{self, signer};
use tora_devnet::{AnvilConfig, Devnet, SmartWallet, confirm, provider_for};

use test_contracts::{RuleBreakingAccount, RuleHelper};
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

pub(crate) fn ether(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

pub(crate) struct Harness {
    pub devnet: Devnet,
    pub validator: Validator,
    pub chain_id: u64,
    pub deployer: DynProvider,
}

impl Harness {
    /// A validator that asks for the latest block at every validation, so that each test's
    /// verdicts follow the chain changes it just made.
    pub(crate) async fn start() -> Self {
        Self::start_with(ValidationSettings { head_max_age: Duration::ZERO, ..Default::default() }).await
    }

    pub(crate) async fn start_with(settings: ValidationSettings) -> Self {
        let devnet = Devnet::start(AnvilConfig::default()).await.expect("devnet starts");
        let chain_id = devnet.deployment.chain_id;
        let spec = ChainSpec::load("dev").unwrap().with_id(chain_id);
        let validator =
            Validator::new(&devnet.deployment.rpc_url, &spec, settings).await.expect("validator connects");
        Self { chain_id, deployer: devnet.provider.clone(), validator, devnet }
    }

    pub(crate) fn contracts(&self) -> &tora_core::deployment::ContractAddresses {
        &self.devnet.deployment.contracts
    }

    pub(crate) async fn fund(&self, to: Address, wei: U256) {
        let tx = TransactionRequest::default().with_to(to).with_value(wei);
        let pending = self.deployer.send_transaction(tx).await.unwrap();
        confirm(&self.deployer, "fund", pending).await.unwrap();
    }

    pub(crate) async fn nonce(&self, sender: Address) -> U256 {
        EntryPoint::new(ENTRY_POINT_V07, self.deployer.clone())
            .getNonce(sender, U192::ZERO)
            .call()
            .await
            .unwrap()
    }

    /// An operation with fixed, generous gas limits and no factory or paymaster.
    pub(crate) fn op(sender: Address, nonce: U256) -> UserOperation {
        UserOperation {
            sender,
            nonce,
            call_gas_limit: U128::from(120_000),
            verification_gas_limit: U128::from(400_000),
            pre_verification_gas: U256::from(60_000),
            max_fee_per_gas: U128::from(3_000_000_000u64),
            max_priority_fee_per_gas: U128::from(1_000_000_000u64),
            ..Default::default()
        }
    }

    /// A ToraAccount of the devnet's wallet owner, not deployed yet, funded with 1 ETH for its
    /// prefund.
    pub(crate) async fn new_wallet(&self, salt: u64) -> SmartWallet {
        self.new_wallet_of(self.contracts().tora_account_factory, salt).await
    }

    /// A wallet behind `factory` (ToraAccountFactory or the npm SimpleAccountFactory, which
    /// share `createAccount` / `getAddress`), funded with 1 ETH.
    pub(crate) async fn new_wallet_of(&self, factory: Address, salt: u64) -> SmartWallet {
        let wallet = SmartWallet::at(&self.deployer, factory, signer(keys::WALLET_OWNER), U256::from(salt))
            .await
            .unwrap();
        self.fund(wallet.address, ether(1)).await;
        wallet
    }

    /// The wallet's first operation: deploys it through initCode, signed.
    pub(crate) async fn first_op(&self, wallet: &SmartWallet, call_data: Bytes) -> UserOperation {
        let mut op = Self::op(wallet.address, self.nonce(wallet.address).await);
        op.factory = Some(wallet.factory);
        op.factory_data = Some(wallet.factory_data());
        op.call_data = call_data;
        wallet.sign_user_op(&mut op, ENTRY_POINT_V07, self.chain_id);
        op
    }

    /// Deploys a `RuleBreakingAccount` (and its helper), funded with 1 ETH.
    pub(crate) async fn rule_account(&self) -> Address {
        let helper = RuleHelper::deploy(self.deployer.clone()).await.unwrap();
        let account = RuleBreakingAccount::deploy(self.deployer.clone(), ENTRY_POINT_V07, *helper.address())
            .await
            .unwrap();
        self.fund(*account.address(), ether(1)).await;
        *account.address()
    }

    /// Validates an operation of a `RuleBreakingAccount` in `mode`.
    pub(crate) async fn validate_mode(
        &self,
        account: Address,
        mode: u8,
    ) -> Result<ValidationOutcome, ValidationError> {
        self.validate_mode_with(account, mode, &[]).await
    }

    /// [`Harness::validate_mode`] with `args` after the mode byte of the signature.
    pub(crate) async fn validate_mode_with(
        &self,
        account: Address,
        mode: u8,
        args: &[u8],
    ) -> Result<ValidationOutcome, ValidationError> {
        let mut op = Self::op(account, self.nonce(account).await);
        op.signature = [&[mode][..], args].concat().into();
        self.validator.validate(&op).await
    }

    /// Runs `handleOps` for real from the bundler key.
    pub(crate) async fn handle_ops(&self, ops: &[UserOperation]) {
        let bundler = provider_for(&self.devnet.deployment.rpc_url, keys::BUNDLER).unwrap();
        let packed: Vec<_> = ops.iter().map(UserOperation::pack).collect();
        let pending = EntryPoint::new(ENTRY_POINT_V07, bundler.clone())
            .handleOps(packed, Address::repeat_byte(0xbe))
            .gas(3_000_000)
            .send()
            .await
            .unwrap();
        confirm(&bundler, "handleOps", pending).await.unwrap();
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

/// A deployed wallet holding 1,000 TORA that has approved the ToraPaymaster for all of it:
/// its next operation can pay gas with a token quote.
pub(crate) async fn wallet_ready_for_token_quotes(h: &Harness) -> SmartWallet {
    use tora_core::contracts::{TORA, ToraPaymaster};
    let wallet = h.new_wallet(7).await;
    let approve = TORA::approveCall { spender: h.contracts().paymaster, value: U256::MAX };
    let call_data = SmartWallet::execute(h.contracts().tora, U256::ZERO, approve.abi_encode().into());
    let op = h.first_op(&wallet, call_data).await;
    h.handle_ops(&[op]).await;
    let tora = TORA::new(h.contracts().tora, h.deployer.clone());
    let pending = tora.transfer(wallet.address, ether(1_000)).send().await.unwrap();
    confirm(&h.deployer, "transfer TORA", pending).await.unwrap();
    // Sanity: the approval really landed, or the quote test would fail for the wrong reason.
    let allowance = tora.allowance(wallet.address, h.contracts().paymaster).call().await.unwrap();
    assert_eq!(allowance, U256::MAX);
    let _ = ToraPaymaster::new(h.contracts().paymaster, h.deployer.clone());
    wallet
}

/// 5,000 TORA per ETH, as the devnet's price feed says.
pub(crate) fn rate() -> U256 {
    ether(5_000)
}

/// The wallet's next operation, paying with a token quote valid for an hour and signed by
/// `quote_key` (the paymaster service's key unless a test forges it).
pub(crate) async fn token_quote_op(
    h: &Harness,
    wallet: &SmartWallet,
    quote_key: alloy::primitives::B256,
) -> (UserOperation, tora_core::paymaster_quote::Quote) {
    token_quote_op_capped(h, wallet, quote_key, ether(100)).await
}

/// [`token_quote_op`] with the quote's `maxTokenCost` set by the test.
pub(crate) async fn token_quote_op_capped(
    h: &Harness,
    wallet: &SmartWallet,
    quote_key: alloy::primitives::B256,
    max_token_cost: U256,
) -> (UserOperation, tora_core::paymaster_quote::Quote) {
    use tora_core::paymaster_quote::{PaymasterData, Quote, QuoteMode, sign_quote};
    let mut op = Harness::op(wallet.address, h.nonce(wallet.address).await);
    op.verification_gas_limit = U128::from(150_000);
    op.paymaster = Some(h.contracts().paymaster);
    op.paymaster_verification_gas_limit = Some(U128::from(250_000));
    op.paymaster_post_op_gas_limit = Some(U128::from(60_000));
    let now = h
        .deployer
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap()
        .header
        .timestamp;
    let quote = Quote {
        mode: QuoteMode::Token,
        valid_until: now + 3_600,
        valid_after: 0,
        payer: h.contracts().tora,
        exchange_rate: rate(),
        max_token_cost,
    };
    let signature = sign_quote(&signer(quote_key), &op, &quote, h.chain_id, h.contracts().paymaster).unwrap();
    op.paymaster_data = Some(PaymasterData { quote: quote.clone(), signature, permit: None }.encode());
    wallet.sign_user_op(&mut op, ENTRY_POINT_V07, h.chain_id);
    (op, quote)
}
