//! `tora demo`: the whole story on a running `tora up`, told step by step and checked to the
//! wei. A new smart wallet holding TORA and no BNB gets its first operation sponsored by a dapp,
//! pays for its next one in TORA with a permit (it never approves the paymaster), and pays the
//! inference gateway with vouchers that the provider redeems. A step that does not add up ends
//! the command with an error.

use crate::paymaster::{DEVNET_DAPP, devnet_api_key};
use alloy::eips::BlockNumberOrTag;
use alloy::primitives::aliases::U192;
use alloy::primitives::{Address, Bytes, U64, U128, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use anyhow::{Context, anyhow, bail, ensure};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tora_core::clock::{unix_nanos, unix_now};
use tora_core::contracts::{EntryPoint, InferenceEscrow, SimpleAccount, TORA, ToraPaymaster};
use tora_core::deployment::DevKeys;
use tora_core::escrow_voucher::Voucher;
use tora_core::money::{ONE_COIN, ToraUnits};
use tora_core::paymaster_quote::QuoteMode;
use tora_core::permit::permit;
use tora_core::rpc_api::bundler::{
    EstimateUserOperationGas, GetUserOperationReceipt, OperationToEstimate, SendUserOperation, SentOperation,
    SupportedEntryPoints, UserOperationReceipt,
};
use tora_core::rpc_api::paymaster::{
    DraftOperation, GetPaymasterData, GetPaymasterStubData, GetTokenQuote, PaymasterContext, PermitContext,
    StubData,
};
use tora_core::sponsorship::{Budget, MicroTora, ResetInterval, SponsorshipPolicy};
use tora_core::strict_hex::Hex;
use tora_core::{Deployment, ENTRY_POINT_V07, UserOperation};
use tora_devnet::{SmartWallet, confirm, provider_for};
use tora_inference_gateway::api::{MODEL_ID, TEXT_MODEL_ID};
use tora_inference_gateway::payment::ledger::{Change, Outcome};
use tora_inference_gateway::payment::voucher::decimal;
use tora_inference_gateway::payment::{
    Escrow, MemoryVoucherStore, Redeemer, Redemption, SignedVoucher, VOUCHER_HEADER, VoucherStore,
};
use tora_jsonrpc::Client;
use tora_paymaster::sponsorship::auth::Role;

#[derive(clap::Args)]
pub(crate) struct DemoArgs {
    /// The deployment file `tora up` wrote; the demo signs with its devKeys, so a devnet's.
    #[arg(long, default_value = ".tora/devnet.json", env = "TORA_DEPLOYMENT")]
    deployment: PathBuf,
    /// The bundler's JSON-RPC endpoint.
    #[arg(long, default_value = "http://127.0.0.1:4337")]
    bundler_url: String,
    /// The paymaster's JSON-RPC endpoint.
    #[arg(long, default_value = "http://127.0.0.1:4338")]
    paymaster_url: String,
    /// Where the paymaster serves /admin, when `tora up` ran with --admin-listen (default: the
    /// paymaster's endpoint).
    #[arg(long)]
    admin_url: Option<String>,
    /// The inference gateway.
    #[arg(long, default_value = "http://127.0.0.1:4339")]
    gateway_url: String,
    /// Admin API key for the paymaster's /admin (default: one signed with the devnet's secret).
    #[arg(long)]
    admin_api_key: Option<String>,
    /// API key of the dapp the demo's policy names (default: the devnet dapp key `tora up` prints).
    #[arg(long)]
    dapp_api_key: Option<String>,
}

/// Whole TORA the deployer sends the new wallet.
const WALLET_TORA: u64 = 100;
/// Whole TORA the sponsored first operation sends to [`FRIEND`].
const GIFT_TORA: u64 = 1;
/// Who receives the gift: any address will do.
const FRIEND: Address = Address::repeat_byte(0xf1);
/// Whole TORA the wallet deposits in its escrow channel to the gateway's provider.
const ESCROW_TORA: u64 = 1;
/// The sponsor's deposit in ToraPaymaster is topped up below this many whole TORA...
const SPONSOR_FLOOR_TORA: u64 = 1_000;
/// ... by this many.
const SPONSOR_TOP_UP_TORA: u64 = 10_000;
/// The policy the demo puts (again on every run: a put replaces it).
const POLICY_ID: &str = "tora-demo";
/// Whole TORA the policy may spend a day, over all wallets...
const POLICY_DAILY_TORA: u64 = 10_000;
/// ... and per wallet.
const POLICY_PER_WALLET_TORA: u64 = 100;
/// The tip every operation offers, in wei per gas; its max fee is twice the base fee plus this,
/// what the bundler's own bundles offer.
const TIP_WEI: u64 = 1_000_000_000;
/// How long an operation may wait for its bundle (`tora up` bundles every second).
const RECEIPT_WAIT: Duration = Duration::from_secs(60);
/// The gateway's answer headers: this call's exact price, and everything charged so far.
const CHARGED_HEADER: &str = "x-tora-charged";
const CUMULATIVE_HEADER: &str = "x-tora-cumulative-amount";

/// `n` whole TORA, in base units.
fn tora(n: u64) -> U256 {
    U256::from(n) * U256::from(ONE_COIN)
}

pub(crate) async fn run(args: DemoArgs, stop: crate::shutdown::StopSignals) -> anyhow::Result<()> {
    tokio::select! {
        told = tell(args) => told,
        signal = stop.requested() => bail!("stopped ({signal}) before the story ended"),
    }
}

async fn tell(args: DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let stack = Stack::connect(args).await?;
    // Before anything is spent: every service answers, and the gateway serves both models and
    // redeems as the devnet's provider.
    stack.check_services().await?;
    let terms = stack.gateway_terms().await?;
    stack.fund_wallet().await?;
    stack.sponsored_first_operation().await?;
    stack.deposit_paid_in_tora(terms.provider).await?;
    stack.paid_inference(&terms).await?;
    println!(
        "\nEvery step added up, to the wei, in {:.1} s. Run it again: each run makes a new wallet.",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Prints a value before and after a step, exactly, and fails unless it ended at `expected`.
fn check(what: &str, before: U256, after: U256, expected: U256) -> anyhow::Result<()> {
    let change =
        if after >= before { format!("+{}", after - before) } else { format!("-{}", before - after) };
    println!("     {what:<46} {before} -> {after} ({change})");
    ensure!(after == expected, "{what}: expected {expected} after this step, found {after}");
    Ok(())
}

/// What the gateway charges and whom its vouchers name (its `GET /v1/pricing`).
struct GatewayTerms {
    provider: Address,
    /// TORA base units per MiniLM token.
    embedding_price: U256,
    /// TORA base units per SmolLM2 token, prompt and generated alike.
    text_price: U256,
}

/// A call the gateway served for a voucher.
struct Paid {
    /// Its exact price, in TORA base units.
    charged: U256,
    /// Everything the wallet was charged so far, in TORA base units: what the provider may claim.
    owed: U256,
    /// The voucher that paid for it.
    voucher: SignedVoucher,
    body: Value,
}

/// The stack `tora up` runs, and the wallet whose story the demo tells.
struct Stack {
    deployment: Deployment,
    keys: DevKeys,
    /// The chain, signing as the devnet's deployer (contract owner and TORA holder).
    chain: DynProvider,
    http: reqwest::Client,
    bundler: Client,
    /// The paymaster as a wallet paying for itself calls it: no API key.
    paymaster: Client,
    /// The paymaster as the dapp calls it: with the dapp's API key.
    dapp: Client,
    admin_url: String,
    admin_key: String,
    gateway_url: String,
    wallet: SmartWallet,
}

impl Stack {
    async fn connect(args: DemoArgs) -> anyhow::Result<Self> {
        let deployment = Deployment::read(&args.deployment)?;
        let keys = deployment.dev_keys.clone().with_context(|| {
            format!(
                "{} has no devKeys: `tora demo` runs on a devnet (`tora up`), with its well-known keys",
                args.deployment.display()
            )
        })?;
        let chain = provider_for(&deployment.rpc_url, keys.deployer)?;
        let chain_id = chain
            .get_chain_id()
            .await
            .with_context(|| format!("no chain answers at {}: is `tora up` running?", deployment.rpc_url))?;
        ensure!(
            chain_id == deployment.chain_id,
            "the chain is {chain_id}, the deployment says {}",
            deployment.chain_id
        );
        // A new salt each run: the same owner gets a new wallet, so the story can be told again.
        let owner = PrivateKeySigner::from_bytes(&keys.wallet_owner)?;
        let salt = U256::from(unix_nanos());
        let factory = deployment.contracts.tora_account_factory;
        let wallet =
            SmartWallet::at(&chain, factory, owner, salt).await.context("ToraAccountFactory.getAddress")?;
        ensure!(
            chain.get_code_at(wallet.address).await?.is_empty(),
            "wallet {} already exists",
            wallet.address
        );
        let http = reqwest::Client::new();
        let dapp_key = args.dapp_api_key.unwrap_or_else(|| devnet_api_key(DEVNET_DAPP, Role::Dapp));
        println!("Tensora, end to end, on chain {chain_id} ({})", args.deployment.display());
        println!(
            "  bundler {}, paymaster {}, gateway {}",
            args.bundler_url, args.paymaster_url, args.gateway_url
        );
        println!("  amounts are exact: TORA in base units (1 TORA = 10^18), BNB in wei");
        Ok(Self {
            keys,
            chain,
            bundler: Client::with_http(http.clone(), &args.bundler_url),
            paymaster: Client::with_http(http.clone(), &args.paymaster_url),
            dapp: Client::with_http(http.clone(), &args.paymaster_url).with_api_key(dapp_key),
            admin_url: args.admin_url.unwrap_or(args.paymaster_url),
            admin_key: args.admin_api_key.unwrap_or_else(|| devnet_api_key("tora-demo", Role::Admin)),
            gateway_url: args.gateway_url,
            http,
            wallet,
            deployment,
        })
    }

    fn chain_id(&self) -> U64 {
        U64::from(self.deployment.chain_id)
    }

    fn deployer(&self) -> anyhow::Result<Address> {
        Ok(PrivateKeySigner::from_bytes(&self.keys.deployer)?.address())
    }

    fn tora(&self) -> TORA::TORAInstance<&DynProvider> {
        TORA::new(self.deployment.contracts.tora, &self.chain)
    }

    fn tora_paymaster(&self) -> ToraPaymaster::ToraPaymasterInstance<&DynProvider> {
        ToraPaymaster::new(self.deployment.contracts.paymaster, &self.chain)
    }

    fn escrow(&self) -> InferenceEscrow::InferenceEscrowInstance<&DynProvider> {
        InferenceEscrow::new(self.deployment.contracts.inference_escrow, &self.chain)
    }

    async fn tora_of(&self, who: Address) -> anyhow::Result<U256> {
        Ok(self.tora().balanceOf(who).call().await?)
    }

    async fn bnb_of(&self, who: Address) -> anyhow::Result<U256> {
        Ok(self.chain.get_balance(who).await?)
    }

    async fn check_services(&self) -> anyhow::Result<()> {
        let entry_points = self.bundler.call::<SupportedEntryPoints>(()).await.with_context(|| {
            format!("eth_supportedEntryPoints at {}: is `tora up` running?", self.bundler.url())
        })?;
        ensure!(
            entry_points.iter().any(|e| e.0 == ENTRY_POINT_V07),
            "the bundler does not serve EntryPoint v0.7 ({ENTRY_POINT_V07})"
        );
        let url = format!("{}/health", self.paymaster.url());
        let health =
            self.http.get(&url).send().await.with_context(|| format!("GET {url}: is `tora up` running?"))?;
        ensure!(health.status().is_success(), "GET {url} answered {}", health.status());
        Ok(())
    }

    async fn gateway_terms(&self) -> anyhow::Result<GatewayTerms> {
        let url = format!("{}/v1/pricing", self.gateway_url);
        let pricing: Value = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}: is the gateway up?"))?
            .error_for_status()?
            .json()
            .await?;
        let address = |field: &str| -> anyhow::Result<Address> {
            let text = pricing[field].as_str().with_context(|| format!("no {field} in {pricing}"))?;
            Ok(text.parse()?)
        };
        let provider = address("provider")?;
        let escrow = address("escrow")?;
        ensure!(
            escrow == self.deployment.contracts.inference_escrow,
            "the gateway's vouchers are for the escrow at {escrow}, not this deployment's"
        );
        let price = |model: &str| {
            pricing["data"]
                .as_array()
                .and_then(|models| models.iter().find(|m| m["model"] == model))
                .and_then(|m| decimal::parse(m["price_per_token"].as_str()?))
                .with_context(|| format!("the gateway does not serve {model} (GET {url})"))
        };
        let terms =
            GatewayTerms { provider, embedding_price: price(MODEL_ID)?, text_price: price(TEXT_MODEL_ID)? };
        let redeemer = PrivateKeySigner::from_bytes(&self.keys.inference_provider)?.address();
        ensure!(
            provider == redeemer,
            "the gateway's provider is {provider}, not devKeys.inferenceProvider ({redeemer}), whose key the demo redeems with"
        );
        Ok(terms)
    }

    async fn fund_wallet(&self) -> anyhow::Result<()> {
        let w = &self.wallet;
        println!("\nSetup: a new ToraAccount {} (owner {}, salt {})", w.address, w.owner.address(), w.salt);
        println!("     not deployed yet; the deployer sends it {WALLET_TORA} TORA, and it gets no BNB");
        let (tora_before, bnb_before) = (self.tora_of(w.address).await?, self.bnb_of(w.address).await?);
        let amount = tora(WALLET_TORA);
        let pending = self.tora().transfer(w.address, amount).send().await?;
        let receipt = confirm(&self.chain, "send TORA to the wallet", pending).await?;
        println!("     TORA.transfer: tx {}", receipt.transaction_hash);
        check("wallet TORA", tora_before, self.tora_of(w.address).await?, tora_before + amount)?;
        check("wallet BNB (wei)", bnb_before, self.bnb_of(w.address).await?, U256::ZERO)
    }

    /// The wallet's next operation, calling `call_data`; `first` deploys the wallet in it.
    async fn operation(&self, first: bool, call_data: Bytes) -> anyhow::Result<UserOperation> {
        let entry_point = EntryPoint::new(ENTRY_POINT_V07, &self.chain);
        let nonce = entry_point.getNonce(self.wallet.address, U192::ZERO).call().await?;
        Ok(UserOperation {
            sender: self.wallet.address,
            nonce,
            factory: first.then_some(self.wallet.factory),
            factory_data: first.then(|| self.wallet.factory_data()),
            call_data,
            ..Default::default()
        })
    }

    /// ERC-7677 before estimation: fees for the chain now, the paymaster's stub data, then the
    /// bundler's gas estimate with it. The stub's paymaster gas limits stay in `op`.
    async fn stub_and_estimate(
        &self,
        paymaster: &Client,
        op: &mut UserOperation,
        context: &PaymasterContext,
    ) -> anyhow::Result<StubData> {
        let block =
            self.chain.get_block_by_number(BlockNumberOrTag::Latest).await?.context("no latest block")?;
        let base_fee = block.header.base_fee_per_gas.context("the chain has no base fee")?;
        op.max_priority_fee_per_gas = U128::from(TIP_WEI);
        op.max_fee_per_gas = U128::from(2 * base_fee + TIP_WEI);
        let params = (DraftOperation(op.clone()), ENTRY_POINT_V07, self.chain_id(), Some(context.clone()));
        let stub = paymaster.call::<GetPaymasterStubData>(params).await.context("pm_getPaymasterStubData")?;
        op.paymaster = Some(stub.paymaster);
        op.paymaster_verification_gas_limit = stub.paymaster_verification_gas_limit;
        op.paymaster_post_op_gas_limit = stub.paymaster_post_op_gas_limit;
        op.paymaster_data = Some(stub.paymaster_data.clone());
        // A signature of the right shape, so that the account's validation runs as it will.
        self.wallet.sign_user_op(op, ENTRY_POINT_V07, self.deployment.chain_id);
        let params = (OperationToEstimate(op.clone()), Hex(ENTRY_POINT_V07), None);
        let gas = self
            .bundler
            .call::<EstimateUserOperationGas>(params)
            .await
            .context("eth_estimateUserOperationGas")?;
        op.pre_verification_gas = gas.pre_verification_gas;
        op.verification_gas_limit = gas.verification_gas_limit;
        op.call_gas_limit = gas.call_gas_limit;
        println!(
            "     pm_getPaymasterStubData, then eth_estimateUserOperationGas: verification {} gas, call {}, preVerification {}",
            op.verification_gas_limit, op.call_gas_limit, op.pre_verification_gas
        );
        Ok(stub)
    }

    /// The paymaster's signed data for the estimated operation, then the wallet's signature.
    async fn finish(
        &self,
        paymaster: &Client,
        op: &mut UserOperation,
        context: &PaymasterContext,
    ) -> anyhow::Result<()> {
        let params = (DraftOperation(op.clone()), ENTRY_POINT_V07, self.chain_id(), Some(context.clone()));
        let data = paymaster.call::<GetPaymasterData>(params).await.context("pm_getPaymasterData")?;
        op.paymaster = Some(data.paymaster);
        op.paymaster_data = Some(data.paymaster_data);
        self.wallet.sign_user_op(op, ENTRY_POINT_V07, self.deployment.chain_id);
        println!(
            "     pm_getPaymasterData: the quote, signed by the paymaster; the wallet's owner signs the operation"
        );
        Ok(())
    }

    /// Sends `op` to the bundler and waits for the bundle that carries it; fails if its call
    /// reverted.
    async fn send(&self, op: &UserOperation) -> anyhow::Result<UserOperationReceipt> {
        let params = (SentOperation(op.clone()), Hex(ENTRY_POINT_V07));
        let hash = self.bundler.call::<SendUserOperation>(params).await.context("eth_sendUserOperation")?;
        println!("     eth_sendUserOperation: userOpHash {hash}");
        let deadline = Instant::now() + RECEIPT_WAIT;
        loop {
            let receipt = self.bundler.call::<GetUserOperationReceipt>((Hex(hash),)).await;
            if let Some(receipt) = receipt.context("eth_getUserOperationReceipt")? {
                let tx = receipt.receipt.transaction_hash;
                ensure!(
                    receipt.success,
                    "operation {hash} was bundled in {tx} but its call reverted: {}",
                    receipt.reason
                );
                println!(
                    "     bundled: tx {tx} (block {}), {} wei of gas",
                    receipt.receipt.block_number.unwrap_or_default(),
                    receipt.actual_gas_cost
                );
                return Ok(receipt);
            }
            ensure!(
                Instant::now() < deadline,
                "no receipt for {hash} after {RECEIPT_WAIT:?}: is the bundler bundling?"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn ensure_sponsor_deposit(&self, sponsor: Address) -> anyhow::Result<()> {
        let balance = self.tora_paymaster().sponsorBalance(sponsor).call().await?;
        if balance < tora(SPONSOR_FLOOR_TORA) {
            let (paymaster, amount) = (self.deployment.contracts.paymaster, tora(SPONSOR_TOP_UP_TORA));
            let pending = self.tora().approve(paymaster, amount).send().await?;
            confirm(&self.chain, "approve the sponsor's deposit", pending).await?;
            let pending = self.tora_paymaster().depositForSponsor(sponsor, amount).send().await?;
            let receipt = confirm(&self.chain, "deposit for the sponsor", pending).await?;
            println!(
                "     the sponsor deposits {} in ToraPaymaster: tx {}",
                ToraUnits(amount),
                receipt.transaction_hash
            );
        }
        Ok(())
    }

    async fn put_policy(&self, sponsor: Address) -> anyhow::Result<()> {
        let policy = SponsorshipPolicy {
            id: POLICY_ID.into(),
            name: "Tensora demo".into(),
            icon: None,
            dapp: DEVNET_DAPP.into(),
            sponsor,
            budget: Budget {
                global: Some(MicroTora::from_tora_floor(ToraUnits(tora(POLICY_DAILY_TORA)))),
                per_user: Some(MicroTora::from_tora_floor(ToraUnits(tora(POLICY_PER_WALLET_TORA)))),
                ..Budget::default()
            },
            reset: ResetInterval::Daily,
            // The dapp pays for TORA transfers only.
            allowed_targets: vec![self.deployment.contracts.tora],
            allowed_selectors: vec![TORA::transferCall::SELECTOR.into()],
            valid_after: 0,
            valid_until: unix_now() + 365 * 86_400,
        };
        let url = format!("{}/admin/policies", self.admin_url);
        let response = self.http.post(&url).bearer_auth(&self.admin_key).json(&policy).send().await?;
        let status = response.status();
        if status != StatusCode::CREATED {
            bail!("POST {url} answered {status}: {}", response.text().await.unwrap_or_default());
        }
        println!(
            "     POST /admin/policies ({status}): policy {POLICY_ID:?} of dapp {DEVNET_DAPP:?}, paid by sponsor {sponsor}: TORA.transfer only, {POLICY_DAILY_TORA} TORA a day, {POLICY_PER_WALLET_TORA} per wallet"
        );
        Ok(())
    }

    async fn sponsored_first_operation(&self) -> anyhow::Result<()> {
        println!(
            "\n1/3  A dapp sponsors the wallet's first operation: it deploys the wallet and sends {GIFT_TORA} TORA to {FRIEND}"
        );
        let sponsor = self.deployer()?;
        self.ensure_sponsor_deposit(sponsor).await?;
        self.put_policy(sponsor).await?;
        let gift = tora(GIFT_TORA);
        let transfer = TORA::transferCall { to: FRIEND, value: gift }.abi_encode();
        let call = SmartWallet::execute(self.deployment.contracts.tora, U256::ZERO, transfer.into());
        let mut op = self.operation(true, call).await?;
        let w = self.wallet.address;
        let sponsor_before = self.tora_paymaster().sponsorBalance(sponsor).call().await?;
        let (wallet_before, friend_before) = (self.tora_of(w).await?, self.tora_of(FRIEND).await?);
        let bnb_before = self.bnb_of(w).await?;

        let context =
            PaymasterContext { sponsorship_policy_id: Some(POLICY_ID.into()), ..Default::default() };
        let stub = self.stub_and_estimate(&self.dapp, &mut op, &context).await?;
        if let Some(shown) = stub.sponsor {
            println!("     the wallet would show the user: sponsored by {:?}", shown.name);
        }
        self.finish(&self.dapp, &mut op, &context).await?;
        let receipt = self.send(&op).await?;
        let charge = gas_charge(&receipt)?;
        ensure!(
            charge.mode == QuoteMode::Sponsor as u8 && charge.payer == sponsor,
            "the operation was not charged to the sponsor: {charge:?}"
        );
        println!(
            "     ToraPaymaster charged the sponsor {} ({} base units) and returned {} of what it reserved",
            ToraUnits(charge.charge),
            charge.charge,
            charge.refund
        );
        ensure!(!self.chain.get_code_at(w).await?.is_empty(), "no wallet deployed at {w}");
        let sponsor_after = self.tora_paymaster().sponsorBalance(sponsor).call().await?;
        check(
            "sponsor's deposit in ToraPaymaster",
            sponsor_before,
            sponsor_after,
            sponsor_before - charge.charge,
        )?;
        check("wallet TORA", wallet_before, self.tora_of(w).await?, wallet_before - gift)?;
        check("friend TORA", friend_before, self.tora_of(FRIEND).await?, friend_before + gift)?;
        check("wallet BNB (wei)", bnb_before, self.bnb_of(w).await?, U256::ZERO)?;
        println!(
            "  => step 1 ok: wallet deployed by its first operation in tx {}, gas paid by the dapp's sponsor",
            receipt.receipt.transaction_hash
        );
        Ok(())
    }

    async fn deposit_paid_in_tora(&self, provider: Address) -> anyhow::Result<()> {
        let c = &self.deployment.contracts;
        println!(
            "\n2/3  The wallet's next operation pays its gas in TORA with an EIP-2612 permit: it deposits {ESCROW_TORA} TORA in its InferenceEscrow channel to the gateway's provider {provider}"
        );
        let w = self.wallet.address;
        let deposit = tora(ESCROW_TORA);
        let calls = SimpleAccount::executeBatchCall {
            dest: vec![c.tora, c.inference_escrow],
            value: vec![U256::ZERO; 2],
            func: vec![
                TORA::approveCall { spender: c.inference_escrow, value: deposit }.abi_encode().into(),
                InferenceEscrow::depositCall { provider, amount: deposit }.abi_encode().into(),
            ],
        };
        let mut op = self.operation(false, calls.abi_encode().into()).await?;
        let allowance = self.tora().allowance(w, c.paymaster).call().await?;
        ensure!(allowance.is_zero(), "the wallet has an allowance of {allowance} to the paymaster already");
        println!("     the wallet's allowance to ToraPaymaster: 0 (it never sends an approve)");
        let (wallet_before, bnb_before) = (self.tora_of(w).await?, self.bnb_of(w).await?);
        let paymaster_before = self.tora_of(c.paymaster).await?;
        let channel_before = self.escrow().balanceOf(w, provider).call().await?;
        let nonce_before = self.tora().nonces(w).call().await?;

        // The stub has the permit's length; what the permit allows is known once the gas is.
        let placeholder =
            PermitContext { value: U256::ZERO, deadline: U256::MAX, signature: Bytes::from(vec![0xff; 65]) };
        let mut context =
            PaymasterContext { token: Some(c.tora), permit: Some(placeholder), ..Default::default() };
        self.stub_and_estimate(&self.paymaster, &mut op, &context).await?;
        let params = (DraftOperation(op.clone()), ENTRY_POINT_V07, self.chain_id());
        let quote = self.paymaster.call::<GetTokenQuote>(params).await.context("tora_getTokenQuote")?;
        println!(
            "     tora_getTokenQuote: {} TORA base units per BNB (markup included); at most {} ({} base units), likely {}",
            quote.exchange_rate,
            ToraUnits(quote.max_token_cost),
            quote.max_token_cost,
            ToraUnits(quote.estimated_token_cost)
        );
        // The wallet signs only what it checked: a permit of the quote's maximum to the paymaster.
        let deadline = quote.permit.typed_data.message.deadline;
        let expected = permit(w, c.paymaster, quote.max_token_cost, nonce_before, deadline);
        ensure!(
            quote.permit.digest == expected.tora_digest(self.deployment.chain_id, c.tora),
            "the quote's permit digest is not that of a permit of {} to the paymaster",
            quote.max_token_cost
        );
        let signature = Bytes::from(self.wallet.sign_digest(quote.permit.digest).to_vec());
        println!(
            "     the owner signs the permit digest {} for the wallet (ToraAccount's ERC-1271)",
            quote.permit.digest
        );
        context.permit = Some(PermitContext { value: quote.max_token_cost, deadline, signature });
        self.finish(&self.paymaster, &mut op, &context).await?;
        let receipt = self.send(&op).await?;
        let charge = gas_charge(&receipt)?;
        ensure!(
            charge.mode == QuoteMode::Token as u8 && charge.payer == c.tora,
            "the operation was not charged to the wallet in TORA: {charge:?}"
        );
        ensure!(charge.charge <= quote.max_token_cost, "charged {} over the quote's maximum", charge.charge);
        println!(
            "     ToraPaymaster took {} through the permit and refunded {}: the wallet paid {} ({} base units)",
            charge.charge + charge.refund,
            charge.refund,
            ToraUnits(charge.charge),
            charge.charge
        );
        let wallet_after = self.tora_of(w).await?;
        check("wallet TORA", wallet_before, wallet_after, wallet_before - deposit - charge.charge)?;
        let paymaster_after = self.tora_of(c.paymaster).await?;
        check("ToraPaymaster TORA", paymaster_before, paymaster_after, paymaster_before + charge.charge)?;
        let channel_after = self.escrow().balanceOf(w, provider).call().await?;
        check(
            "wallet's escrow channel to the provider",
            channel_before,
            channel_after,
            channel_before + deposit,
        )?;
        let nonce_after = self.tora().nonces(w).call().await?;
        check(
            "wallet's TORA permit nonce (permits used)",
            nonce_before,
            nonce_after,
            nonce_before + U256::from(1),
        )?;
        check("wallet BNB (wei)", bnb_before, self.bnb_of(w).await?, U256::ZERO)?;
        println!(
            "  => step 2 ok: gas paid in TORA with a permit, no approve and no BNB, tx {}",
            receipt.receipt.transaction_hash
        );
        Ok(())
    }

    /// A voucher letting `provider` take up to `cumulative` from the wallet in all, signed by the
    /// owner for the wallet (ToraAccount's ERC-1271).
    fn voucher(&self, provider: Address, cumulative: U256) -> SignedVoucher {
        let c = &self.deployment.contracts;
        let digest = Voucher::new(self.wallet.address, provider, cumulative)
            .digest(self.deployment.chain_id, c.inference_escrow);
        SignedVoucher {
            payer: self.wallet.address,
            cumulative_amount: cumulative,
            signature: Bytes::from(self.wallet.sign_digest(digest).to_vec()),
        }
    }

    /// A paid call as a client makes it: unpaid first, so that the 402 names the price, then
    /// again with a voucher for what the wallet owes so far (`owed`) plus that price.
    async fn paid_call(
        &self,
        path: &str,
        body: &Value,
        owed: U256,
        provider: Address,
    ) -> anyhow::Result<Paid> {
        let url = format!("{}{path}", self.gateway_url);
        let unpaid = self.http.post(&url).json(body).send().await.with_context(|| format!("POST {url}"))?;
        let status = unpaid.status();
        let refusal: Value = unpaid.json().await.with_context(|| format!("POST {url}: answer not JSON"))?;
        ensure!(
            status == StatusCode::PAYMENT_REQUIRED,
            "POST {path} without a voucher answered {status}: {refusal}"
        );
        let amount = |name: &str| refusal["error"][name].as_str().and_then(decimal::parse);
        let due = amount("amount_due").with_context(|| format!("a 402 without amount_due: {refusal}"))?;
        let cumulative = amount("cumulative_amount_expected").unwrap_or(owed + due);
        println!(
            "     POST {path}: 402, it costs up to {due}; the wallet signs a voucher for {cumulative} in all"
        );
        let voucher = self.voucher(provider, cumulative);
        let answer = self
            .http
            .post(&url)
            .header(VOUCHER_HEADER, serde_json::to_string(&voucher)?)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = answer.status();
        let header = |name: &str| {
            let value = answer.headers().get(name).and_then(|v| v.to_str().ok()).and_then(decimal::parse);
            value.with_context(|| format!("POST {path} answered {status} without {name}"))
        };
        if !status.is_success() {
            bail!("POST {path} with a voucher for {cumulative} answered {status}: {}", answer.text().await?);
        }
        let (charged, owed) = (header(CHARGED_HEADER)?, header(CUMULATIVE_HEADER)?);
        Ok(Paid { charged, owed, voucher, body: answer.json().await? })
    }

    /// The provider's side: its ledger of the wallet (the latest voucher, and what the gateway
    /// charged under it, as the gateway's answers said), redeemed with the provider's key. The
    /// gateway redeems by itself too, but only hourly or once a payer owes it 10 TORA.
    async fn redeem(
        &self,
        latest: &SignedVoucher,
        owed: U256,
        provider: Address,
    ) -> anyhow::Result<Redemption> {
        let c = &self.deployment.contracts;
        let escrow = Escrow::new(self.chain.clone(), self.deployment.chain_id, c.inference_escrow, provider);
        let payer = self.wallet.address;
        let redeemed = escrow.account(payer).await?.redeemed;
        let ledger = MemoryVoucherStore::default();
        let now = unix_now();
        let hold = Change::Hold { voucher: latest.clone(), price: owed, redeemed, now };
        let hold = match ledger.change(payer, &hold).await? {
            Ok(Outcome::Held { hold }) => hold,
            other => bail!("the provider's ledger refuses the latest voucher: {other:?}"),
        };
        let settle = Change::Settle { hold, exact: owed, now };
        ledger.change(payer, &settle).await?.map_err(|refusal| anyhow!("{refusal:?}"))?;
        let key = PrivateKeySigner::from_bytes(&self.keys.inference_provider)?;
        let redeemer = Redeemer::new(&self.deployment.rpc_url, key, escrow)?;
        Ok(redeemer.redeem_latest(&ledger).await?)
    }

    async fn paid_inference(&self, terms: &GatewayTerms) -> anyhow::Result<()> {
        println!(
            "\n3/3  The wallet pays the inference gateway per token with cumulative vouchers, and the provider redeems exactly what was charged"
        );
        println!(
            "     prices: {} base units per {MODEL_ID} token, {} per {TEXT_MODEL_ID} token",
            terms.embedding_price, terms.text_price
        );
        let (w, provider) = (self.wallet.address, terms.provider);
        let provider_before = self.tora_of(provider).await?;
        let wallet_before = self.tora_of(w).await?;
        let channel_before = self.escrow().balanceOf(w, provider).call().await?;
        let redeemed_before = self.escrow().redeemed(w, provider).call().await?;

        let body = json!({ "model": MODEL_ID, "input": "A smart wallet pays for its own inference." });
        let embedding = self.paid_call("/v1/embeddings", &body, U256::ZERO, provider).await?;
        let tokens = embedding.body["usage"]["total_tokens"].as_u64().context("no usage in the embedding")?;
        let dims = embedding.body["data"][0]["embedding"].as_array().map_or(0, Vec::len);
        println!(
            "     embedding: {dims} dimensions, {tokens} tokens, charged {} base units",
            embedding.charged
        );
        ensure!(
            embedding.charged == terms.embedding_price * U256::from(tokens),
            "the embedding's charge is not its tokens' price"
        );
        ensure!(
            embedding.owed == embedding.charged,
            "a new wallet owes its first call's price, not {}",
            embedding.owed
        );

        let body = json!({
            "model": TEXT_MODEL_ID,
            "messages": [{ "role": "user", "content": "What is the capital of France?" }],
            "max_tokens": 12,
            "temperature": 0,
        });
        let chat = self.paid_call("/v1/chat/completions", &body, embedding.owed, provider).await?;
        let usage = &chat.body["usage"];
        let prompt = usage["prompt_tokens"].as_u64().context("no usage in the completion")?;
        let generated = usage["completion_tokens"].as_u64().context("no usage in the completion")?;
        let reply = chat.body["choices"][0]["message"]["content"].as_str().unwrap_or_default();
        println!(
            "     chat completion: {reply:?} ({prompt} prompt + {generated} generated tokens), charged {} base units",
            chat.charged
        );
        ensure!(
            chat.charged == terms.text_price * U256::from(prompt + generated),
            "the completion's charge is not its tokens' price"
        );
        ensure!(
            chat.owed == embedding.owed + chat.charged,
            "the gateway's running total {} is not the two charges",
            chat.owed
        );
        println!(
            "     the latest voucher allows {} in all; the wallet owes {}",
            chat.voucher.cumulative_amount, chat.owed
        );

        let redemption = self.redeem(&chat.voucher, chat.owed, provider).await?;
        let tx = redemption.tx.context("the redemption sent no transaction")?;
        ensure!(redemption.failed.is_empty(), "the escrow refused the voucher of {:?}", redemption.failed);
        ensure!(
            redemption.paid.0 == chat.owed,
            "the provider was paid {}, not the {} charged",
            redemption.paid.0,
            chat.owed
        );
        println!(
            "     InferenceEscrow.redeemBatch with the provider's key: tx {tx}, paid {}",
            redemption.paid
        );
        check("provider TORA", provider_before, self.tora_of(provider).await?, provider_before + chat.owed)?;
        let channel_after = self.escrow().balanceOf(w, provider).call().await?;
        check(
            "wallet's escrow channel to the provider",
            channel_before,
            channel_after,
            channel_before - chat.owed,
        )?;
        let redeemed_after = self.escrow().redeemed(w, provider).call().await?;
        check("redeemed from the channel", redeemed_before, redeemed_after, redeemed_before + chat.owed)?;
        check("wallet TORA", wallet_before, self.tora_of(w).await?, wallet_before)?;
        println!(
            "  => step 3 ok: two calls paid with vouchers, {} base units redeemed to the provider in tx {tx}",
            chat.owed
        );
        Ok(())
    }
}

/// ToraPaymaster's account of an operation's gas, from its `GasChargedInToken` event.
fn gas_charge(receipt: &UserOperationReceipt) -> anyhow::Result<ToraPaymaster::GasChargedInToken> {
    receipt
        .logs
        .iter()
        .find_map(|log| log.log_decode::<ToraPaymaster::GasChargedInToken>().ok())
        .map(|log| log.inner.data)
        .context("no GasChargedInToken among the operation's logs")
}
