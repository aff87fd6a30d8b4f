//! A test harness over a fresh devnet: wallets, TORA, quotes signed with the devnet's paymaster
//! key, and `handleOps` with the EntryPoint's failure reason decoded. Used by every crate's
//! end-to-end tests (and by nothing in production).

use crate::keys::{self, signer};
use crate::{AnvilConfig, Devnet, SmartWallet, confirm, provider_for};
use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, B256, Bytes, U128, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolEvent, SolInterface};
use tora_core::contracts::{EntryPoint, TORA, ToraPaymaster};
use tora_core::paymaster_quote::{PaymasterData, Permit, Quote, QuoteMode, sign_quote};
use tora_core::permit::permit;
use tora_core::{ENTRY_POINT_V07, UserOperation};

/// The rate test quotes sign: 5,000.000000000123456789 TORA per BNB, not a round number, so
/// rounding shows.
pub fn rate() -> U256 {
    U256::from(5_000u64) * U256::from(10u64).pow(U256::from(18)) + U256::from(123_456_789u64)
}

/// `n` whole TORA, in base units (18 decimals).
pub fn tora(n: u64) -> U256 {
    eighteen_decimals(n)
}

/// `n` whole ETH (BNB on the opBNB chains), in wei.
pub fn ether(n: u64) -> U256 {
    eighteen_decimals(n)
}

fn eighteen_decimals(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

/// Verification gas of an operation whose account is deployed (or does more than check one
/// signature) during validation; a deployed wallet's later operations get 120,000.
const ROOMY_VERIFICATION_GAS: u64 = 400_000;

/// An unsigned operation from `sender` at `nonce` with the kit's fixed, generous gas limits
/// and fees and `verification_gas_limit`; no initCode, call or paymaster.
fn fixed_gas_op(sender: Address, nonce: U256, verification_gas_limit: u64) -> UserOperation {
    UserOperation {
        sender,
        nonce,
        call_gas_limit: U128::from(120_000),
        verification_gas_limit: U128::from(verification_gas_limit),
        pre_verification_gas: U256::from(60_000),
        max_fee_per_gas: U128::from(3_000_000_000u64),
        max_priority_fee_per_gas: U128::from(1_000_000_000u64),
        ..Default::default()
    }
}

/// A fresh devnet with providers for the deployer and bundler keys, for end-to-end tests.
pub struct Harness {
    /// The chain and its deployment; dropping the harness stops anvil.
    pub devnet: Devnet,
    /// The devnet's chain id.
    pub chain_id: u64,
    /// Signs as the deployer: contract owner and TORA holder.
    pub deployer: DynProvider,
    /// Signs as the bundler key, which sends `handleOps`.
    pub bundler: DynProvider,
    /// The `handleOps` beneficiary, which collects the operations' gas fees (0xbebe…be).
    pub beneficiary: Address,
}

/// Why `handleOps` refused an operation: the EntryPoint's `AAxx` reason and the inner revert.
#[derive(Debug)]
pub struct Rejection {
    /// The EntryPoint's reason string, e.g. "AA33 reverted".
    pub reason: String,
    /// The inner revert data from `FailedOpWithRevert`; empty for `FailedOp`.
    pub inner: Bytes,
}

impl Harness {
    /// Starts a fresh devnet with everything deployed; panics when it cannot (test support).
    pub async fn start() -> Self {
        let devnet = Devnet::start(AnvilConfig::default()).await.expect("devnet starts");
        let rpc = devnet.deployment.rpc_url.clone();
        let bundler = provider_for(&rpc, keys::BUNDLER).unwrap();
        Self {
            chain_id: devnet.deployment.chain_id,
            deployer: devnet.provider.clone(),
            bundler,
            beneficiary: Address::repeat_byte(0xbe),
            devnet,
        }
    }

    /// The deployer: contract owner and TORA holder.
    pub fn deployer_address(&self) -> Address {
        signer(keys::DEPLOYER).address()
    }

    /// The deployed contracts' addresses.
    pub fn contracts(&self) -> &tora_core::deployment::ContractAddresses {
        &self.devnet.deployment.contracts
    }

    /// The TORA token, called as the deployer.
    pub fn tora(&self) -> TORA::TORAInstance<DynProvider> {
        TORA::new(self.contracts().tora, self.deployer.clone())
    }

    /// ToraPaymaster, called as the deployer (its owner).
    pub fn paymaster(&self) -> ToraPaymaster::ToraPaymasterInstance<DynProvider> {
        ToraPaymaster::new(self.contracts().paymaster, self.deployer.clone())
    }

    /// EntryPoint v0.7, called as the bundler.
    pub fn entry_point(&self) -> EntryPoint::EntryPointInstance<DynProvider> {
        EntryPoint::new(ENTRY_POINT_V07, self.bundler.clone())
    }

    /// A ToraAccount (SimpleAccount + ERC-1271) of the devnet's wallet owner, not deployed yet.
    pub async fn new_wallet(&self, salt: u64) -> SmartWallet {
        self.new_wallet_of(self.contracts().tora_account_factory, salt).await
    }

    /// A wallet of the devnet's wallet owner behind `factory`, not deployed yet: ToraAccountFactory
    /// (staked on the devnet) or the npm SimpleAccountFactory (not staked), which share
    /// `createAccount` / `getAddress`.
    pub async fn new_wallet_of(&self, factory: Address, salt: u64) -> SmartWallet {
        SmartWallet::at(&self.deployer, factory, signer(keys::WALLET_OWNER), U256::from(salt)).await.unwrap()
    }

    /// [`Self::new_wallet`] holding 1 ETH, so that it pays its own prefund (under 0.002 ETH for
    /// the operations the kit builds).
    pub async fn funded_wallet(&self, salt: u64) -> SmartWallet {
        self.funded_wallet_of(self.contracts().tora_account_factory, salt).await
    }

    /// [`Self::new_wallet_of`] holding 1 ETH, so that it pays its own prefund.
    pub async fn funded_wallet_of(&self, factory: Address, salt: u64) -> SmartWallet {
        let wallet = self.new_wallet_of(factory, salt).await;
        self.fund(wallet.address, ether(1)).await;
        wallet
    }

    /// A ToraAccount deployed by its first operation (paid in ETH), holding 1,000 TORA and
    /// having approved the ToraPaymaster for all of it: its next operations can pay with token
    /// quotes and no permit.
    pub async fn wallet_paying_in_tora(&self, salt: u64) -> SmartWallet {
        let wallet = self.funded_wallet(salt).await;
        let paymaster = self.contracts().paymaster;
        let approve = TORA::approveCall { spender: paymaster, value: U256::MAX };
        let call_data = SmartWallet::execute(self.contracts().tora, U256::ZERO, approve.abi_encode().into());
        let op = self.first_op(&wallet, call_data).await;
        self.handle_ops(&[op]).await.expect("the wallet's first operation is accepted");
        self.send_tora(wallet.address, tora(1_000)).await;
        // A failed approve does not fail handleOps; a quote test would then fail for the wrong
        // reason.
        let allowance = self.tora().allowance(wallet.address, paymaster).call().await.unwrap();
        assert_eq!(allowance, U256::MAX, "the approval landed");
        wallet
    }

    /// Sends `wei` of the deployer's native balance to `to` and waits for the receipt.
    pub async fn fund(&self, to: Address, wei: U256) {
        let tx = TransactionRequest::default().with_to(to).with_value(wei);
        let pending = self.deployer.send_transaction(tx).await.unwrap();
        confirm(&self.deployer, "fund", pending).await.unwrap();
    }

    /// `sender`'s next EntryPoint nonce (key 0).
    pub async fn nonce(&self, sender: Address) -> U256 {
        self.entry_point().getNonce(sender, U256::ZERO.to()).call().await.unwrap()
    }

    /// Transfers `amount` TORA base units from the deployer to `to` and waits for the receipt.
    pub async fn send_tora(&self, to: Address, amount: U256) {
        let pending = self.tora().transfer(to, amount).send().await.unwrap();
        confirm(&self.deployer, "transfer TORA", pending).await.unwrap();
    }

    /// Puts `amount` of the deployer's TORA in `payer`'s InferenceEscrow channel to `provider`
    /// (approve, then depositFor, which serves the deployer as payer too: `deposit` is
    /// depositFor of the caller).
    pub async fn deposit_in_escrow(&self, payer: Address, provider: Address, amount: U256) {
        let escrow_addr = self.contracts().inference_escrow;
        let escrow = tora_core::contracts::InferenceEscrow::new(escrow_addr, self.deployer.clone());
        let pending = self.tora().approve(escrow_addr, amount).send().await.unwrap();
        confirm(&self.deployer, "approve", pending).await.unwrap();
        let pending = escrow.depositFor(payer, provider, amount).send().await.unwrap();
        confirm(&self.deployer, "deposit", pending).await.unwrap();
    }

    /// `who`'s TORA balance, in base units.
    pub async fn tora_balance(&self, who: Address) -> U256 {
        self.tora().balanceOf(who).call().await.unwrap()
    }

    /// `who`'s native balance, in wei.
    pub async fn eth_balance(&self, who: Address) -> U256 {
        self.deployer.get_balance(who).await.unwrap()
    }

    /// The paymaster's EntryPoint deposit, in wei.
    pub async fn paymaster_deposit(&self) -> U256 {
        self.entry_point().balanceOf(self.contracts().paymaster).call().await.unwrap()
    }

    /// An operation from `wallet` with fixed, generous gas limits; `first` adds the initCode.
    pub async fn op(&self, wallet: &SmartWallet, first: bool, call_data: Bytes) -> UserOperation {
        let verification_gas = if first { ROOMY_VERIFICATION_GAS } else { 120_000 };
        UserOperation {
            factory: first.then_some(wallet.factory),
            factory_data: first.then(|| wallet.factory_data()),
            call_data,
            ..fixed_gas_op(wallet.address, self.nonce(wallet.address).await, verification_gas)
        }
    }

    /// The wallet's first operation (with its initCode) making `call_data`, signed by its owner.
    pub async fn first_op(&self, wallet: &SmartWallet, call_data: Bytes) -> UserOperation {
        let mut op = self.op(wallet, true, call_data).await;
        wallet.sign_user_op(&mut op, ENTRY_POINT_V07, self.chain_id);
        op
    }

    /// An unsigned operation from `sender`, any account, at its next nonce: [`Self::op`]'s gas
    /// limits and fees, but a first operation's 400,000 verification gas, room for accounts that
    /// do more than check a signature (the rule-breaking test accounts); no initCode or call.
    pub async fn op_from(&self, sender: Address) -> UserOperation {
        fixed_gas_op(sender, self.nonce(sender).await, ROOMY_VERIFICATION_GAS)
    }

    /// The wallet's next operation (no call), paying with [`Self::token_quote`] of
    /// `max_token_cost` signed by `quote_key` ([`keys::PAYMASTER_SIGNER`] unless a test forges
    /// the signer), then signed by the wallet; and the quote.
    pub async fn token_quote_op(
        &self,
        wallet: &SmartWallet,
        max_token_cost: U256,
        quote_key: B256,
    ) -> (UserOperation, Quote) {
        let mut op = self.op(wallet, false, Bytes::new()).await;
        let quote = self.token_quote(max_token_cost).await;
        let (key, paymaster) = (signer(quote_key), self.contracts().paymaster);
        self.attach_quote_signed_by(&mut op, quote.clone(), None, &key, self.chain_id, paymaster);
        wallet.sign_user_op(&mut op, ENTRY_POINT_V07, self.chain_id);
        (op, quote)
    }

    /// A token-mode quote valid for an hour.
    pub async fn token_quote(&self, max_token_cost: U256) -> Quote {
        Quote {
            mode: QuoteMode::Token,
            valid_until: self.now().await + 3_600,
            valid_after: 0,
            payer: self.contracts().tora,
            exchange_rate: rate(),
            max_token_cost,
        }
    }

    /// The latest block's timestamp in Unix seconds: the chain's clock, which tests can move.
    pub async fn now(&self) -> u64 {
        let block = self.deployer.get_block_number().await.unwrap();
        let block = self.deployer.get_block_by_number(block.into()).await.unwrap().unwrap();
        block.header.timestamp
    }

    /// Points `op` at the paymaster with `quote`, signed by the paymaster service's key for
    /// `chain_id` and `paymaster` (the real ones unless a test forges them).
    pub fn attach_quote_for(
        &self,
        op: &mut UserOperation,
        quote: Quote,
        permit: Option<Permit>,
        chain_id: u64,
        paymaster: Address,
    ) {
        self.attach_quote_signed_by(op, quote, permit, &signer(keys::PAYMASTER_SIGNER), chain_id, paymaster);
    }

    /// Points `op` at the ToraPaymaster with `quote` and `permit`, signed by `key` for
    /// `chain_id` and `paymaster`.
    fn attach_quote_signed_by(
        &self,
        op: &mut UserOperation,
        quote: Quote,
        permit: Option<Permit>,
        key: &PrivateKeySigner,
        chain_id: u64,
        paymaster: Address,
    ) {
        op.paymaster = Some(self.contracts().paymaster);
        op.paymaster_verification_gas_limit = Some(U128::from(250_000));
        op.paymaster_post_op_gas_limit = Some(U128::from(60_000));
        let signature = sign_quote(key, op, &quote, chain_id, paymaster).unwrap();
        op.paymaster_data = Some(PaymasterData { quote, signature, permit }.encode());
    }

    /// [`Self::attach_quote_for`] with this devnet's chain id and paymaster.
    pub fn attach_quote(&self, op: &mut UserOperation, quote: Quote, permit: Option<Permit>) {
        self.attach_quote_for(op, quote, permit, self.chain_id, self.contracts().paymaster);
    }

    /// An EIP-2612 permit of `value` TORA from the wallet to the paymaster, signed by the wallet
    /// through ERC-1271.
    pub async fn permit(&self, wallet: &SmartWallet, value: U256) -> Permit {
        // The maximal deadline: permits in paymasterData must not read the clock (ERC-7562 OP-011).
        self.permit_until(wallet, value, U256::MAX).await
    }

    /// [`Self::permit`] valid until `deadline` (Unix seconds): a finite one makes TORA read the
    /// clock during validation.
    pub async fn permit_until(&self, wallet: &SmartWallet, value: U256, deadline: U256) -> Permit {
        let nonce = self.tora().nonces(wallet.address).call().await.unwrap();
        let digest = permit(wallet.address, self.contracts().paymaster, value, nonce, deadline)
            .tora_digest(self.chain_id, self.contracts().tora);
        Permit { deadline, signature: wallet.sign_digest(digest) }
    }

    /// Runs `handleOps` from the bundler key; a refused operation comes back decoded.
    pub async fn handle_ops(&self, ops: &[UserOperation]) -> Result<TransactionReceipt, Rejection> {
        let packed: Vec<_> = ops.iter().map(UserOperation::pack).collect();
        let entry_point = self.entry_point();
        let call = entry_point.handleOps(packed, self.beneficiary);
        if let Err(err) = call.call().await {
            let data = err.as_revert_data().expect("handleOps reverts with data");
            return Err(match EntryPoint::EntryPointErrors::abi_decode(&data).unwrap() {
                EntryPoint::EntryPointErrors::FailedOp(e) => {
                    Rejection { reason: e.reason, inner: Bytes::new() }
                }
                EntryPoint::EntryPointErrors::FailedOpWithRevert(e) => {
                    Rejection { reason: e.reason, inner: e.inner }
                }
                other => panic!("unexpected EntryPoint error {other:?}"),
            });
        }
        let pending = call.gas(3_000_000).send().await.unwrap();
        Ok(confirm(&self.bundler, "handleOps", pending).await.unwrap())
    }

    /// Signs `op` as `wallet`'s owner and runs `handleOps` with it alone.
    pub async fn sign_and_handle(
        &self,
        wallet: &SmartWallet,
        mut op: UserOperation,
    ) -> Result<TransactionReceipt, Rejection> {
        wallet.sign_user_op(&mut op, ENTRY_POINT_V07, self.chain_id);
        self.handle_ops(&[op]).await
    }

    /// anvil's JSON-RPC extensions (time travel, impersonation).
    pub async fn anvil(&self, method: &'static str, params: serde_json::Value) -> serde_json::Value {
        self.deployer.raw_request(method.into(), params).await.unwrap()
    }
}

/// The first `E` event in `receipt`; panics when there is none.
pub fn event<E: SolEvent>(receipt: &TransactionReceipt) -> E {
    receipt
        .inner
        .logs()
        .iter()
        .find_map(|log| log.log_decode::<E>().ok())
        .map(|log| log.inner.data)
        .unwrap_or_else(|| panic!("no {} in receipt", E::SIGNATURE))
}

/// Whether `receipt` holds an `E` event.
pub fn has_event<E: SolEvent>(receipt: &TransactionReceipt) -> bool {
    receipt.inner.logs().iter().any(|log| log.log_decode::<E>().is_ok())
}

/// `ToraPaymaster`'s upper bound for gas it cannot see from postOp (see the contract).
pub fn extra_gas(op: &UserOperation) -> U256 {
    U256::from(op.paymaster_post_op_gas_limit.unwrap())
        + U256::from(op.call_gas_limit) / U256::from(10)
        + U256::from(10_000)
}

/// The error of a call that must revert (return types of empty outputs have no `Debug`).
pub fn expect_revert<T>(result: Result<T, alloy::contract::Error>) -> alloy::contract::Error {
    match result {
        Ok(_) => panic!("expected a revert"),
        Err(err) => err,
    }
}

/// The revert data of a call that must revert.
pub fn revert_data<T>(result: Result<T, alloy::contract::Error>) -> Bytes {
    let err = expect_revert(result);
    err.as_revert_data().unwrap_or_else(|| panic!("no revert data: {err}"))
}

/// The order of secp256k1: `s` and `n - s` both verify, but only the low one is canonical.
pub const SECP256K1_N: U256 =
    alloy::primitives::uint!(0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141_U256);

/// `r || s || v` as given, for signatures in forms a contract must refuse (v = 0/1, high s).
pub fn rsv(r: U256, s: U256, v: u8) -> Bytes {
    [&r.to_be_bytes::<32>()[..], &s.to_be_bytes::<32>()[..], &[v]].concat().into()
}
