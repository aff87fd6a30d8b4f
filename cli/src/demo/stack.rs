//! The stack `tora up` runs, connected to and checked before the story starts, with the
//! contracts and balances every step reads.

use super::DemoArgs;
use crate::paymaster::{DEVNET_DAPP, devnet_api_key};
use alloy::primitives::{Address, U64, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, ensure};
use tora_core::clock::unix_nanos;
use tora_core::contracts::{InferenceEscrow, TORA, ToraPaymaster};
use tora_core::deployment::DevKeys;
use tora_core::rpc_api::bundler::SupportedEntryPoints;
use tora_core::{Deployment, ENTRY_POINT_V07};
use tora_devnet::{SmartWallet, provider_for};
use tora_jsonrpc::Client;
use tora_paymaster::sponsorship::auth::Role;

/// The stack `tora up` runs, and the wallet whose story the demo tells.
pub(super) struct Stack {
    pub(super) deployment: Deployment,
    pub(super) keys: DevKeys,
    /// The chain, signing as the devnet's deployer (contract owner and TORA holder).
    pub(super) chain: DynProvider,
    pub(super) http: reqwest::Client,
    pub(super) bundler: Client,
    /// The paymaster as a wallet paying for itself calls it: no API key.
    pub(super) paymaster: Client,
    /// The paymaster as the dapp calls it: with the dapp's API key.
    pub(super) dapp: Client,
    pub(super) admin_url: String,
    pub(super) admin_key: String,
    pub(super) gateway_url: String,
    pub(super) wallet: SmartWallet,
}

impl Stack {
    pub(super) async fn connect(args: DemoArgs) -> anyhow::Result<Self> {
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

    pub(super) fn chain_id(&self) -> U64 {
        U64::from(self.deployment.chain_id)
    }

    pub(super) fn deployer(&self) -> anyhow::Result<Address> {
        Ok(PrivateKeySigner::from_bytes(&self.keys.deployer)?.address())
    }

    pub(super) fn tora(&self) -> TORA::TORAInstance<&DynProvider> {
        TORA::new(self.deployment.contracts.tora, &self.chain)
    }

    pub(super) fn tora_paymaster(&self) -> ToraPaymaster::ToraPaymasterInstance<&DynProvider> {
        ToraPaymaster::new(self.deployment.contracts.paymaster, &self.chain)
    }

    pub(super) fn escrow(&self) -> InferenceEscrow::InferenceEscrowInstance<&DynProvider> {
        InferenceEscrow::new(self.deployment.contracts.inference_escrow, &self.chain)
    }

    pub(super) async fn tora_of(&self, who: Address) -> anyhow::Result<U256> {
        Ok(self.tora().balanceOf(who).call().await?)
    }

    pub(super) async fn bnb_of(&self, who: Address) -> anyhow::Result<U256> {
        Ok(self.chain.get_balance(who).await?)
    }

    /// What the wallet holds in its escrow channel to `provider`, in TORA base units.
    pub(super) async fn channel_of(&self, provider: Address) -> anyhow::Result<U256> {
        Ok(self.escrow().balanceOf(self.wallet.address, provider).call().await?)
    }

    pub(super) async fn check_services(&self) -> anyhow::Result<()> {
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
}
