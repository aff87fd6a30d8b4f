//! Deploys the stack on a fresh chain, in dependency order, and returns the deployment file.

use crate::keys::{self, signer};
use alloy::network::{Ethereum, EthereumWallet, TransactionBuilder};
use alloy::primitives::{Bytes, I256, TxHash, U256, keccak256};
use alloy::providers::{DynProvider, PendingTransactionBuilder, Provider, ProviderBuilder};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use std::time::Duration;
use tora_core::contracts::{
    CREATE2_DEPLOYER, ENTRY_POINT_V07_CODE_HASH, ENTRY_POINT_V07_SALT, EntryPoint, InferenceEscrow,
    SENDER_CREATOR_V07, SimpleAccountFactory, TORA, ToraAccountFactory, ToraPaymaster, ToraPriceFeed,
};
use tora_core::deployment::{ContractAddresses, Deployment};
use tora_core::user_operation::ENTRY_POINT_V07;

/// The devnet's starting prices and balances.
pub struct DevnetPrices;

impl DevnetPrices {
    /// The feed's decimals, as Chainlink uses for native-denominated pairs.
    pub const FEED_DECIMALS: u8 = 18;
    /// 1 TORA = 0.0002 BNB, i.e. 5,000 TORA per BNB.
    pub const TORA_IN_BNB: u128 = 200_000_000_000_000;
    /// TORA minted to the deployer: 1e9 TORA.
    pub const DEPLOYER_TORA: u128 = 1_000_000_000 * 10u128.pow(18);
    /// ToraAccountFactory's stake in the EntryPoint, in wei.
    pub const FACTORY_STAKE_WEI: u128 = 10u128.pow(18);
    /// The paymaster's stake and EntryPoint deposit, in wei.
    pub const PAYMASTER_STAKE_WEI: u128 = 10u128.pow(18);
    /// The paymaster's EntryPoint deposit, from which the EntryPoint takes the gas of the
    /// operations it pays for, in wei.
    pub const PAYMASTER_DEPOSIT_WEI: u128 = 100 * 10u128.pow(18);
    /// One day: ERC-7562's MIN_UNSTAKE_DELAY.
    pub const UNSTAKE_DELAY_SECS: u32 = 86_400;
    /// Notice a payer gives before withdrawing unspent escrow.
    pub const ESCROW_NOTICE_SECS: u64 = 86_400;
}

/// Why deploying the stack failed, with the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The RPC URL does not parse.
    #[error("invalid RPC URL {0}")]
    Url(String),
    /// A step's RPC call or transaction failed, or its receipt never came.
    #[error("{step}: {message}")]
    Step {
        /// What was being done, e.g. "deploy TORA".
        step: &'static str,
        /// The RPC or contract error, as text.
        message: String,
    },
    /// A step's transaction was mined but reverted.
    #[error("{step}: transaction {tx} reverted")]
    Reverted {
        /// What was being done, e.g. "mint TORA".
        step: &'static str,
        /// The reverted transaction's hash.
        tx: TxHash,
    },
    /// The code at EntryPoint v0.7's canonical address is not the canonical EntryPoint v0.7.
    #[error(
        "EntryPoint at {ENTRY_POINT_V07} has code hash {actual}, not the canonical \
         {ENTRY_POINT_V07_CODE_HASH}: refusing to run against a non-canonical EntryPoint"
    )]
    EntryPointCodeHash {
        /// keccak256 of the runtime code found there.
        actual: alloy::primitives::B256,
    },
}

fn step_err(step: &'static str) -> impl FnOnce(alloy::contract::Error) -> DeployError {
    move |e| DeployError::Step { step, message: e.to_string() }
}

/// A provider that signs with `key`.
pub fn provider_for(rpc_url: &str, key: alloy::primitives::B256) -> Result<DynProvider, DeployError> {
    let url = rpc_url.parse().map_err(|_| DeployError::Url(rpc_url.to_owned()))?;
    Ok(ProviderBuilder::new().wallet(EthereumWallet::from(signer(key))).connect_http(url).erased())
}

/// Waits for a receipt by polling briefly: anvil mines at once, and the default watcher's
/// block polling would add a quarter second per transaction.
pub async fn confirm(
    provider: &DynProvider,
    step: &'static str,
    pending: PendingTransactionBuilder<Ethereum>,
) -> Result<TransactionReceipt, DeployError> {
    let tx = *pending.tx_hash();
    for _ in 0..3_000 {
        let receipt = provider
            .get_transaction_receipt(tx)
            .await
            .map_err(|e| DeployError::Step { step, message: e.to_string() })?;
        if let Some(receipt) = receipt {
            return if receipt.status() { Ok(receipt) } else { Err(DeployError::Reverted { step, tx }) };
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(DeployError::Step { step, message: format!("no receipt for {tx} after 30 s") })
}

/// Deploys EntryPoint v0.7 canonically (CREATE2 deployer + canonical salt), unless it is
/// already there, and checks its runtime code hash.
pub async fn deploy_entry_point(provider: &DynProvider) -> Result<(), DeployError> {
    const STEP: &str = "deploy EntryPoint v0.7";
    let err = |e: alloy::transports::TransportError| DeployError::Step { step: STEP, message: e.to_string() };
    if provider.get_code_at(ENTRY_POINT_V07).await.map_err(err)?.is_empty() {
        let input: Bytes = [ENTRY_POINT_V07_SALT.as_slice(), &EntryPoint::BYTECODE[..]].concat().into();
        let tx = TransactionRequest::default().with_to(CREATE2_DEPLOYER).with_input(input);
        let pending = provider.send_transaction(tx).await.map_err(err)?;
        confirm(provider, STEP, pending).await?;
    }
    let code = provider.get_code_at(ENTRY_POINT_V07).await.map_err(err)?;
    let actual = keccak256(&code);
    if actual != ENTRY_POINT_V07_CODE_HASH {
        return Err(DeployError::EntryPointCodeHash { actual });
    }
    Ok(())
}

/// Deploys everything on the chain at `rpc_url` and returns the deployment (with dev keys) and
/// a provider signing as the deployer.
pub async fn deploy_all(rpc_url: &str, chain_id: u64) -> Result<(Deployment, DynProvider), DeployError> {
    let provider = provider_for(rpc_url, keys::DEPLOYER)?;
    let deployer = signer(keys::DEPLOYER).address();
    deploy_entry_point(&provider).await?;

    let simple_factory = SimpleAccountFactory::deploy(provider.clone(), ENTRY_POINT_V07)
        .await
        .map_err(step_err("deploy SimpleAccountFactory"))?;
    let tora_factory = ToraAccountFactory::deploy(provider.clone(), ENTRY_POINT_V07, deployer)
        .await
        .map_err(step_err("deploy ToraAccountFactory"))?;
    // A staked factory lets a new wallet's first operation pay in TORA (ERC-7562 STO-022).
    let step = "stake ToraAccountFactory";
    let pending = tora_factory
        .addStake(DevnetPrices::UNSTAKE_DELAY_SECS)
        .value(U256::from(DevnetPrices::FACTORY_STAKE_WEI))
        .send()
        .await
        .map_err(step_err(step))?;
    confirm(&provider, step, pending).await?;
    let tora = TORA::deploy(provider.clone(), deployer).await.map_err(step_err("deploy TORA"))?;
    let step = "mint TORA";
    let pending =
        tora.mint(deployer, U256::from(DevnetPrices::DEPLOYER_TORA)).send().await.map_err(step_err(step))?;
    confirm(&provider, step, pending).await?;

    let updater = signer(keys::PRICE_UPDATER).address();
    let feed = ToraPriceFeed::deploy(
        provider.clone(),
        DevnetPrices::FEED_DECIMALS,
        "TORA / BNB".to_owned(),
        deployer,
        updater,
    )
    .await
    .map_err(step_err("deploy ToraPriceFeed"))?;
    let updater_provider = provider_for(rpc_url, keys::PRICE_UPDATER)?;
    let step = "set the first TORA/BNB price";
    let pending = ToraPriceFeed::new(*feed.address(), updater_provider.clone())
        .updateAnswer(I256::try_from(DevnetPrices::TORA_IN_BNB).expect("fits"))
        .send()
        .await
        .map_err(step_err(step))?;
    confirm(&updater_provider, step, pending).await?;

    let quote_signer = signer(keys::PAYMASTER_SIGNER).address();
    let paymaster = ToraPaymaster::deploy(provider.clone(), ENTRY_POINT_V07, *tora.address(), quote_signer)
        .await
        .map_err(step_err("deploy ToraPaymaster"))?;
    let step = "stake the paymaster";
    let pending = paymaster
        .addStake(DevnetPrices::UNSTAKE_DELAY_SECS)
        .value(U256::from(DevnetPrices::PAYMASTER_STAKE_WEI))
        .send()
        .await
        .map_err(step_err(step))?;
    confirm(&provider, step, pending).await?;
    let step = "fund the paymaster's EntryPoint deposit";
    let pending = paymaster
        .deposit()
        .value(U256::from(DevnetPrices::PAYMASTER_DEPOSIT_WEI))
        .send()
        .await
        .map_err(step_err(step))?;
    confirm(&provider, step, pending).await?;

    let escrow = InferenceEscrow::deploy(provider.clone(), *tora.address(), DevnetPrices::ESCROW_NOTICE_SECS)
        .await
        .map_err(step_err("deploy InferenceEscrow"))?;

    let deployment = Deployment {
        chain: "dev".to_owned(),
        chain_id,
        rpc_url: rpc_url.to_owned(),
        ws_url: None,
        contracts: ContractAddresses {
            entry_point: ENTRY_POINT_V07,
            sender_creator: SENDER_CREATOR_V07,
            simple_account_factory: *simple_factory.address(),
            tora_account_factory: *tora_factory.address(),
            tora: *tora.address(),
            price_feed: *feed.address(),
            paymaster: *paymaster.address(),
            inference_escrow: *escrow.address(),
        },
        dev_keys: Some(keys::dev_keys()),
    };
    Ok((deployment, provider))
}
