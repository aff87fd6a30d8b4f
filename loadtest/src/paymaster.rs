//! `pm_getPaymasterData` in token mode, each request a new operation (its own nonce) of one of
//! a few dozen senders holding TORA: the quote path with no cache hit to lean on. The paymaster
//! refuses a sender whose TORA does not cover its open quotes, so setup funds the senders.

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, U64, U128, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use anyhow::Context;
use tora_core::contracts::TORA;
use tora_core::rpc_api::paymaster::{DraftOperation, GetPaymasterData, PaymasterContext};
use tora_core::{Deployment, UserOperation};
use tora_jsonrpc::{CallError, Client};

/// Senders the requests take turns on.
const SENDERS: usize = 64;
/// TORA each sender gets: its open quotes (a few hundred of about 5.5 TORA each) fit.
const TORA_PER_SENDER: u64 = 100_000;

/// Funds [`SENDERS`] fresh addresses with TORA from the deployer (devnet only: it uses the
/// deployment's dev keys); returns them.
pub async fn prepare(deployment: &Deployment) -> anyhow::Result<Vec<Address>> {
    let keys = deployment.dev_keys.as_ref().context(
        "the paymaster load test funds its senders with the deployment's dev keys: run it against `tora up`",
    )?;
    let deployer = PrivateKeySigner::from_bytes(&keys.deployer)?;
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(deployer))
        .connect_http(deployment.rpc_url.parse().context("deployment rpcUrl")?)
        .erased();
    let tora = TORA::new(deployment.contracts.tora, provider);
    let amount = U256::from(TORA_PER_SENDER) * U256::from(10u64).pow(U256::from(18));
    let senders: Vec<Address> = (0..SENDERS).map(|_| PrivateKeySigner::random().address()).collect();
    eprintln!("setup: sending {TORA_PER_SENDER} TORA to each of {SENDERS} senders");
    for sender in &senders {
        tora.transfer(*sender, amount).send().await?.get_receipt().await?;
    }
    Ok(senders)
}

/// Request `i`: a token-mode quote for a new operation of one of `senders`.
pub async fn quote(
    paymaster: &Client,
    deployment: &Deployment,
    senders: &[Address],
    i: u64,
) -> Result<(), CallError> {
    let turn = usize::try_from(i).unwrap_or(usize::MAX);
    let op = UserOperation {
        sender: senders[turn % senders.len()],
        nonce: U256::from(i),
        call_gas_limit: U128::from(100_000),
        verification_gas_limit: U128::from(200_000),
        // The bundler charges about 46,000 for an operation this small; the paymaster signs up to 10% over.
        pre_verification_gas: U256::from(48_000),
        // Within what the paymaster signs on a devnet (twice the base fee, a few wei, plus its
        // 2 gwei priority cap): a quote past it is refused before any pricing work.
        max_fee_per_gas: U128::from(2_000_000_000u64),
        max_priority_fee_per_gas: U128::from(1_000_000_000u64),
        ..Default::default()
    };
    let context = PaymasterContext { token: Some(deployment.contracts.tora), ..Default::default() };
    let params =
        (DraftOperation(op), deployment.contracts.entry_point, U64::from(deployment.chain_id), Some(context));
    paymaster.call::<GetPaymasterData>(params).await.map(|_| ())
}
