//! `eth_sendUserOperation` from many distinct SimpleAccounts. Setup (not measured) creates the
//! accounts with ordinary transactions (or leaves that to each operation, with `fresh`), funds
//! them, asks the bundler once for gas estimates and signs every operation ahead, so the run
//! measures the bundler alone.
//!
//! On `tora up` setup pays with the deployment's dev keys and funds with anvil_setBalance. For
//! a bundler whose node the test does not control, it pays with a funded key of its own, with
//! standard transactions only, and funds each account with just what its operation may cost.

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, B256, Bytes, U128, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use anyhow::{Context, bail};
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tora_core::contracts::SimpleAccountFactory;
use tora_core::rpc_api::bundler::{
    EstimateUserOperationGas, OperationToEstimate, SendUserOperation, SentOperation,
};
use tora_core::strict_hex::Hex;
use tora_core::{Deployment, UserOperation};
use tora_devnet::wallet::SmartWallet;
use tora_jsonrpc::{CallError, Client};

/// Setup requests in flight at once against the node.
const SETUP_CONCURRENCY: usize = 64;
/// createAccount transactions sent before waiting for them to be mined.
const SETUP_BATCH: usize = 500;
/// Enough native coin for every prefund the run can ask for.
const WALLET_FUNDS: u128 = 1_000_000_000_000_000_000;

/// Signed operations ready to send, with their userOpHashes.
pub struct PreparedOps {
    /// One signed operation per account.
    pub ops: Vec<UserOperation>,
    /// The EntryPoint they are signed for.
    pub entry_point: Address,
    /// The userOpHash of each operation, in the same order.
    pub hashes: Vec<B256>,
    /// The devnet's node, signing as the deployer.
    pub provider: DynProvider,
    /// The node's block number once setup finished: inclusions are watched for from there.
    pub start_block: u64,
}

/// How the load test sets up its wallets.
#[derive(Default)]
pub struct Setup {
    /// The node to set up through; `None`: the deployment's `rpcUrl`.
    pub node_url: Option<String>,
    /// A funded key that pays for setup with standard transactions, for a node the test does not
    /// control; `None`: the deployment's dev keys and anvil's methods (`tora up`).
    pub funder: Option<PrivateKeySigner>,
    /// Each operation deploys its own account (factory and factoryData, through the deployment's
    /// staked ToraAccountFactory), as a new wallet's first operation does, instead of setup
    /// creating SimpleAccounts beforehand.
    pub fresh: bool,
}

/// Gas limits the operations are signed with at most: funding covers them at the signed fee.
const CALL_GAS: u64 = 100_000;
const VERIFICATION_GAS: u64 = 300_000;
/// A first operation's verification also deploys the account.
const VERIFICATION_GAS_FRESH: u64 = 600_000;
const PRE_VERIFICATION_GAS: u64 = 100_000;

/// Creates `count` SimpleAccounts (or their addresses, `fresh`) and signs one operation for each.
pub async fn prepare(
    bundler: &Client,
    deployment: &Deployment,
    count: usize,
    setup: Setup,
) -> anyhow::Result<PreparedOps> {
    let on_anvil = setup.funder.is_none();
    let funder = match setup.funder {
        Some(key) => key,
        None => {
            let keys = deployment.dev_keys.as_ref().context(
                "this deployment has no dev keys: pass a funded key (--funder-key-env) for a node you do not control",
            )?;
            PrivateKeySigner::from_bytes(&keys.deployer)?
        }
    };
    let url = setup.node_url.as_deref().unwrap_or(&deployment.rpc_url).parse().context("node URL")?;
    // Signs setup's transactions as the funder.
    let provider =
        ProviderBuilder::new().wallet(EthereumWallet::from(funder.clone())).connect_http(url).erased();
    // A burst of first operations needs a staked factory: ERC-7562 keeps only a few operations
    // of an unstaked one in the pool at once, so the unstaked SimpleAccountFactory would see
    // nearly the whole burst refused by design.
    let factory = if setup.fresh {
        deployment.contracts.tora_account_factory
    } else {
        deployment.contracts.simple_account_factory
    };

    // A fresh owner per run, so a second run against the same chain gets new accounts.
    let owner = PrivateKeySigner::random();
    let wallets = addresses(&provider, factory, &owner, count).await?;
    let fees = fees(&provider).await?;
    let verification_gas = if setup.fresh { VERIFICATION_GAS_FRESH } else { VERIFICATION_GAS };
    if !setup.fresh {
        eprintln!("setup: creating {count} SimpleAccounts");
        let creations = wallets.iter().map(|wallet| {
            let data =
                SimpleAccountFactory::createAccountCall { owner: wallet.owner.address(), salt: wallet.salt };
            TransactionRequest::default()
                .with_to(wallet.factory)
                .with_input(data.abi_encode())
                .with_gas_limit(500_000)
        });
        send_in_order(&provider, funder.address(), creations, on_anvil).await?;
        for wallet in [wallets.first(), wallets.last()].into_iter().flatten() {
            if provider.get_code_at(wallet.address).await?.is_empty() {
                bail!("account {} has no code after its createAccount transaction", wallet.address);
            }
        }
    }
    if on_anvil {
        set_balances(&provider, &wallets).await?;
    } else {
        // What each operation may cost at its signed limits and fee, and no more.
        let prefund = U256::from(CALL_GAS + verification_gas + PRE_VERIFICATION_GAS) * U256::from(fees.0);
        eprintln!("setup: funding {count} accounts with {prefund} wei each");
        // A created account is a proxy whose receive costs more than a plain transfer's gas.
        let transfers = wallets.iter().map(|w| {
            TransactionRequest::default().with_to(w.address).with_value(prefund).with_gas_limit(60_000)
        });
        send_in_order(&provider, funder.address(), transfers, false).await?;
        for wallet in [wallets.first(), wallets.last()].into_iter().flatten() {
            let balance = provider.get_balance(wallet.address).await?;
            if balance < prefund {
                bail!("account {} holds {balance} wei after funding, short of {prefund}", wallet.address);
            }
        }
    }

    let entry_point = deployment.contracts.entry_point;
    let chain_id = deployment.chain_id;
    let call_data = SmartWallet::execute(owner.address(), U256::ZERO, Bytes::new());
    let mut template = UserOperation {
        sender: wallets[0].address,
        nonce: U256::ZERO,
        factory: setup.fresh.then_some(factory),
        factory_data: setup.fresh.then(|| wallets[0].factory_data()),
        call_data,
        call_gas_limit: U128::from(CALL_GAS),
        verification_gas_limit: U128::from(verification_gas),
        pre_verification_gas: U256::from(PRE_VERIFICATION_GAS),
        max_fee_per_gas: fees.0,
        max_priority_fee_per_gas: fees.1,
        paymaster: None,
        paymaster_verification_gas_limit: None,
        paymaster_post_op_gas_limit: None,
        paymaster_data: None,
        signature: Bytes::new(),
    };
    wallets[0].sign_user_op(&mut template, entry_point, chain_id);
    let estimate = bundler
        .call::<EstimateUserOperationGas>((OperationToEstimate(template.clone()), Hex(entry_point), None))
        .await
        .map_err(|e| anyhow::anyhow!("eth_estimateUserOperationGas failed with {}: {e}", e.label()))?;
    eprintln!("setup: eth_estimateUserOperationGas {estimate:?}");
    // Addresses differ in their zero bytes, so calldata cost varies a little between wallets.
    let pre_verification_gas = estimate.pre_verification_gas * U256::from(11) / U256::from(10);
    if estimate.call_gas_limit > template.call_gas_limit
        || estimate.verification_gas_limit > template.verification_gas_limit
        || pre_verification_gas > template.pre_verification_gas
    {
        bail!("the estimate {estimate:?} exceeds the limits the accounts were funded for");
    }
    template.call_gas_limit = estimate.call_gas_limit;
    template.verification_gas_limit = estimate.verification_gas_limit;
    template.pre_verification_gas = pre_verification_gas;

    let mut ops = Vec::with_capacity(count);
    let mut hashes = Vec::with_capacity(count);
    for wallet in &wallets {
        let mut op = UserOperation {
            sender: wallet.address,
            factory_data: setup.fresh.then(|| wallet.factory_data()),
            ..template.clone()
        };
        wallet.sign_user_op(&mut op, entry_point, chain_id);
        hashes.push(op.hash(entry_point, chain_id));
        ops.push(op);
    }
    let start_block = provider.get_block_number().await?;
    Ok(PreparedOps { ops, entry_point, hashes, provider, start_block })
}

/// Sends prepared operation `i`.
pub async fn send(bundler: &Client, ops: &PreparedOps, i: usize) -> Result<B256, CallError> {
    bundler.call::<SendUserOperation>((SentOperation(ops.ops[i].clone()), Hex(ops.entry_point))).await
}

/// Counterfactual addresses of `count` accounts of one owner, salts 0..count.
async fn addresses(
    provider: &DynProvider,
    factory: Address,
    owner: &PrivateKeySigner,
    count: usize,
) -> anyhow::Result<Vec<SmartWallet>> {
    let mut wallets = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(SETUP_CONCURRENCY) {
        let mut set = JoinSet::new();
        for &i in chunk {
            let (provider, owner) = (provider.clone(), owner.clone());
            set.spawn(async move { (i, SmartWallet::at(&provider, factory, owner, U256::from(i)).await) });
        }
        let mut part: Vec<_> = set.join_all().await;
        part.sort_by_key(|(i, _)| *i);
        for (_, wallet) in part {
            wallets.push(wallet.context("factory getAddress")?);
        }
    }
    Ok(wallets)
}

/// Sends `txs` from `from` at consecutive nonces, in nonce order without waiting for receipts,
/// then waits for the last one. Sending them concurrently would let later nonces arrive first,
/// and anvil's automine leaves such transactions pending until something else triggers a block.
async fn send_in_order(
    sender: &DynProvider,
    from: Address,
    txs: impl ExactSizeIterator<Item = TransactionRequest>,
    on_anvil: bool,
) -> anyhow::Result<()> {
    let first_nonce = sender.get_transaction_count(from).pending().await?;
    let chain_id = sender.get_chain_id().await?;
    let (max_fee, priority) = fees(sender).await?;
    let total = txs.len();
    for (i, tx) in txs.enumerate() {
        let tx = tx
            .with_nonce(first_nonce + i as u64)
            .with_chain_id(chain_id)
            .with_max_fee_per_gas(max_fee.to())
            .with_max_priority_fee_per_gas(priority.to());
        let _pending = sender.send_transaction(tx).await.context("setup transaction")?;
        // anvil silently drops transactions past a few thousand waiting: let it catch up.
        if (i + 1) % SETUP_BATCH == 0 || i + 1 == total {
            mined(sender, from, first_nonce + i as u64 + 1, on_anvil).await?;
        }
    }
    Ok(())
}

/// Waits until `from` has sent `nonce` transactions. On anvil, mines a block for stragglers when
/// none came for a second. Each `evm_mine` moves the chain's clock a second ahead of the wall
/// clock's; mining every few milliseconds (as this did) put the devnet's time a minute ahead,
/// and anvil then held new transactions back until the wall clock caught up.
async fn mined(sender: &DynProvider, from: Address, nonce: u64, on_anvil: bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut seen = sender.get_transaction_count(from).await?;
    let mut progressed = Instant::now();
    while seen < nonce {
        if Instant::now() > deadline {
            bail!("setup transactions were not mined within 300 s ({seen} of {nonce})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = sender.get_transaction_count(from).await?;
        if now > seen {
            (seen, progressed) = (now, Instant::now());
        } else if on_anvil && progressed.elapsed() > STRAGGLER_WAIT {
            // On a chain with interval mining this only hurries it; on automine it is needed.
            let _ = sender.raw_request::<_, Value>("evm_mine".into(), ()).await;
            progressed = Instant::now();
        }
    }
    Ok(())
}

const STRAGGLER_WAIT: Duration = Duration::from_secs(1);

async fn set_balances(provider: &DynProvider, wallets: &[SmartWallet]) -> anyhow::Result<()> {
    for chunk in wallets.chunks(SETUP_CONCURRENCY) {
        let mut set = JoinSet::new();
        for wallet in chunk {
            let (provider, address) = (provider.clone(), wallet.address);
            set.spawn(async move {
                provider
                    .raw_request::<_, Value>("anvil_setBalance".into(), (address, U256::from(WALLET_FUNDS)))
                    .await
            });
        }
        for funded in set.join_all().await {
            funded
                .context("anvil_setBalance (without --funder-key-env the load test needs an anvil devnet)")?;
        }
    }
    Ok(())
}

/// maxFeePerGas with room for the base fee to triple while bundles fill blocks, and the
/// node's priority fee.
async fn fees(provider: &DynProvider) -> anyhow::Result<(U128, U128)> {
    let block = provider.get_block_by_number(Default::default()).await?.context("latest block")?;
    let base = u128::from(block.header.base_fee_per_gas.unwrap_or(0));
    let priority = provider.get_max_priority_fee_per_gas().await?;
    Ok((U128::from(base * 3 + priority), U128::from(priority)))
}

/// What the bundler has asked of its node so far, from its /metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeUsage {
    /// JSON-RPC calls, each call of a batch included (`bundler_node_requests_total`, summed
    /// over methods).
    pub calls: u64,
    /// HTTP requests: a batch counts once (`bundler_node_round_trips_total`).
    pub round_trips: u64,
}

impl NodeUsage {
    /// What was used between `earlier` and `self`, never below zero.
    pub fn since(self, earlier: NodeUsage) -> NodeUsage {
        NodeUsage {
            calls: self.calls.saturating_sub(earlier.calls),
            round_trips: self.round_trips.saturating_sub(earlier.round_trips),
        }
    }
}

/// None when the bundler does not export the counters.
pub async fn node_usage(client: &reqwest::Client, metrics_url: &str) -> Option<NodeUsage> {
    let text = client.get(metrics_url).send().await.ok()?.text().await.ok()?;
    Some(NodeUsage {
        calls: sum_counter(&text, "bundler_node_requests_total")?,
        round_trips: sum_counter(&text, "bundler_node_round_trips_total")?,
    })
}

fn sum_counter(exposition: &str, name: &str) -> Option<u64> {
    let values: Vec<f64> = exposition
        .lines()
        .filter(|line| {
            line.strip_prefix(name).is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_a_counter_over_its_labels_only() {
        let text = "# TYPE bundler_node_requests_total counter\n\
                    bundler_node_requests_total{method=\"eth_call\"} 7\n\
                    bundler_node_requests_total{method=\"eth_getCode\"} 5\n\
                    bundler_node_requests_total_other 100\n\
                    rpc_requests_total{method=\"x\"} 3\n";
        assert_eq!(sum_counter(text, "bundler_node_requests_total"), Some(12));
        assert_eq!(sum_counter(text, "missing_total"), None);
    }
}
