//! `tora-loadtest`: drives a service at a constant arrival rate and prints latency percentiles.

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tora_core::Deployment;
use tora_jsonrpc::Client;
use tora_loadtest::inclusion::{InclusionWatcher, summarise};
use tora_loadtest::{Plan, bundler, paymaster, run};

#[derive(Parser)]
#[command(name = "tora-loadtest", about = "Open-loop load generator for the Tensora services")]
struct Cli {
    #[command(subcommand)]
    target: Target,
    /// Requests per second.
    #[arg(long, default_value_t = 500.0, global = true)]
    rate: f64,
    /// Seconds to run.
    #[arg(long, default_value_t = 10, global = true)]
    duration: u64,
    #[arg(long, default_value_t = 1_024, global = true)]
    max_in_flight: usize,
    /// Also write the figures as JSON here.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    #[arg(long, default_value = ".tora/devnet.json", global = true)]
    deployment: PathBuf,
}

#[derive(Subcommand)]
enum Target {
    /// `pm_getPaymasterData` in token mode, a distinct sender per request.
    Paymaster {
        #[arg(long, default_value = "http://127.0.0.1:4338")]
        url: String,
    },
    /// `eth_sendUserOperation`, one operation from each of rate × duration new SimpleAccounts;
    /// then waits for their inclusion. Setup uses the deployment's dev keys and anvil unless
    /// `--funder-key-env` names a funded key.
    Bundler {
        #[arg(long, default_value = "http://127.0.0.1:4337")]
        url: String,
        /// Each operation deploys its own account through the factory (a new wallet's first
        /// operation), instead of setup creating the accounts beforehand.
        #[arg(long)]
        fresh: bool,
        /// The node setup sends its transactions to and inclusion is watched on (default: the
        /// deployment's rpcUrl).
        #[arg(long)]
        node_url: Option<String>,
        /// The environment variable holding a funded private key (hex) that pays for setup with
        /// standard transactions: for a bundler whose node the test does not control.
        #[arg(long)]
        funder_key_env: Option<String>,
        /// The bundler's Prometheus endpoint, for node requests per operation.
        #[arg(long)]
        metrics_url: Option<String>,
        /// Stop waiting for inclusions after this many seconds without a new one.
        #[arg(long, default_value_t = 60)]
        inclusion_patience: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let plan = Plan {
        rate: cli.rate,
        duration: Duration::from_secs(cli.duration),
        max_in_flight: cli.max_in_flight,
    };
    let client = reqwest::Client::builder().pool_max_idle_per_host(cli.max_in_flight).build()?;
    let deployment = Deployment::read(&cli.deployment)?;
    let figures = match cli.target {
        Target::Paymaster { url } => {
            let paymaster = Arc::new(Client::with_http(client.clone(), url));
            let senders = Arc::new(paymaster::prepare(&deployment).await?);
            let deployment = Arc::new(deployment);
            let report =
                run(plan, move |i| {
                    let (paymaster, deployment, senders) =
                        (paymaster.clone(), deployment.clone(), senders.clone());
                    async move {
                        paymaster::quote(&paymaster, &deployment, &senders, i).await.map_err(|e| e.label())
                    }
                })
                .await;
            print!("{}", report.text());
            serde_json::to_value(report.summary())?
        }
        Target::Bundler { url, fresh, node_url, funder_key_env, metrics_url, inclusion_patience } => {
            let metrics_url = metrics_url.unwrap_or_else(|| format!("{}/metrics", url.trim_end_matches('/')));
            let bundler_client = Arc::new(Client::with_http(client.clone(), url.clone()));
            let funder = match funder_key_env {
                Some(var) => {
                    let key = std::env::var(&var).with_context(|| format!("${var} is not set"))?;
                    Some(key.trim().parse().with_context(|| format!("${var} is not a private key"))?)
                }
                None => None,
            };
            let setup = bundler::Setup { node_url, funder, fresh };
            let ops = bundler::prepare(&bundler_client, &deployment, plan.total() as usize, setup).await?;
            let watcher = InclusionWatcher::spawn(
                ops.provider.clone(),
                deployment.contracts.entry_point,
                ops.start_block,
            );
            let node_before = bundler::node_usage(&client, &metrics_url).await;
            let sent_at = Arc::new(Mutex::new(vec![None; ops.ops.len()]));
            let samples = Arc::new(Mutex::new(BTreeMap::new()));
            let ops = Arc::new(ops);
            let (run_ops, run_sent_at, run_samples) = (ops.clone(), sent_at.clone(), samples.clone());
            let report = run(plan, move |i| {
                let (bundler_client, ops, sent_at, samples) =
                    (bundler_client.clone(), run_ops.clone(), run_sent_at.clone(), run_samples.clone());
                async move {
                    let sent = Instant::now();
                    match bundler::send(&bundler_client, &ops, i as usize).await {
                        Ok(_) => {
                            sent_at.lock().unwrap()[i as usize] = Some(sent);
                            Ok(())
                        }
                        Err(failure) => {
                            let label = failure.label();
                            samples.lock().unwrap().entry(label.clone()).or_insert(failure.to_string());
                            Err(label)
                        }
                    }
                }
            })
            .await;
            print!("{}", report.text());
            for (label, message) in samples.lock().unwrap().iter() {
                println!("first {label}: {message}");
            }
            let accepted: Vec<_> = ops
                .hashes
                .iter()
                .zip(sent_at.lock().unwrap().iter())
                .filter_map(|(hash, sent)| sent.map(|sent| (*hash, sent)))
                .collect();
            eprintln!("waiting for {} accepted operations to be included", accepted.len());
            let seen = watcher.settle(accepted.len(), Duration::from_secs(inclusion_patience)).await;
            let inclusion = summarise(&accepted, &seen);
            print!("{}", inclusion.text());
            let node_after = bundler::node_usage(&client, &metrics_url).await;
            let ops_done = accepted.len().max(1) as f64;
            let per_op = match (node_before, node_after) {
                (Some(before), Some(after)) => {
                    let used = after.since(before);
                    let (calls, trips) = (used.calls as f64 / ops_done, used.round_trips as f64 / ops_done);
                    println!(
                        "node calls {} ({calls:.2} per accepted operation), HTTP round trips {} ({trips:.2} per operation)",
                        used.calls, used.round_trips
                    );
                    Some((calls, trips))
                }
                _ => {
                    println!("node usage: the bundler's node counters are not exported at {metrics_url}");
                    None
                }
            };
            json!({
                "send": report.summary(),
                "inclusion": inclusion,
                "nodeCallsPerOp": per_op.map(|p| p.0),
                "nodeRoundTripsPerOp": per_op.map(|p| p.1),
            })
        }
    };
    if let Some(path) = cli.json {
        std::fs::write(path, serde_json::to_string_pretty(&figures)?)?;
    }
    Ok(())
}
