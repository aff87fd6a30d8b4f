//! `tora-loadtest`: drives a service at a constant arrival rate and prints latency percentiles.

use alloy::primitives::{Address, U256};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;
use tora_core::Deployment;
use tora_loadtest::{Outcome, Plan, run};

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
}

#[derive(Subcommand)]
enum Target {
    /// `pm_getPaymasterData` in token mode, a distinct sender per request.
    Paymaster {
        #[arg(long)]
        url: String,
        #[arg(long, default_value = ".tora/devnet.json")]
        deployment: PathBuf,
    },
}

/// A JSON-RPC call; its label on failure is the error code, the HTTP status or "transport".
async fn json_rpc(client: &reqwest::Client, url: &str, body: Value) -> Outcome {
    let response = client.post(url).json(&body).send().await.map_err(|_| "transport".to_owned())?;
    if !response.status().is_success() {
        return Err(format!("http-{}", response.status().as_u16()));
    }
    let body: Value = response.json().await.map_err(|_| "bad-json".to_owned())?;
    match body.get("error") {
        Some(error) => Err(error["code"].to_string()),
        None => Ok(()),
    }
}

fn paymaster_request(deployment: &Deployment, i: u64) -> Value {
    let mut sender = [0u8; 20];
    sender[..8].copy_from_slice(&i.to_be_bytes());
    sender[19] = 0x7a;
    let op = json!({
        "sender": Address::from(sender),
        "nonce": "0x0",
        "callData": "0x",
        "callGasLimit": "0x186a0",
        "verificationGasLimit": "0x30d40",
        "preVerificationGas": "0xea60",
        "maxFeePerGas": "0xb2d05e00",
        "maxPriorityFeePerGas": "0x3b9aca00",
        "signature": "0x",
    });
    let chain = format!("{:#x}", U256::from(deployment.chain_id));
    let context = json!({ "token": deployment.contracts.tora });
    json!({
        "jsonrpc": "2.0",
        "id": i,
        "method": "pm_getPaymasterData",
        "params": [op, deployment.contracts.entry_point, chain, context],
    })
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
    let report = match cli.target {
        Target::Paymaster { url, deployment } => {
            let deployment = Deployment::read(&deployment)?;
            run(plan, move |i| {
                let (client, url, body) = (client.clone(), url.clone(), paymaster_request(&deployment, i));
                async move { json_rpc(&client, &url, body).await }
            })
            .await
        }
    };
    print!("{}", report.text());
    if let Some(path) = cli.json {
        std::fs::write(path, serde_json::to_string_pretty(&report.summary())?)?;
    }
    Ok(())
}
