//! The deployment file: where a chain's contracts live and, on a devnet only, the well-known
//! keys that run it. `tora devnet` writes it; every service reads it.

use alloy::primitives::{Address, B256};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The contents of a deployment file (JSON, camelCase keys).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Deployment {
    /// Name of the chain spec this deployment belongs to (`dev`, `opbnb`, …).
    pub chain: String,
    /// EIP-155 id of the chain the contracts are deployed on.
    pub chain_id: u64,
    /// JSON-RPC endpoint of a node of that chain.
    pub rpc_url: String,
    /// The same node's WebSocket endpoint, where the bundler follows new heads as they come
    /// instead of asking for them; without it the bundler asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ws_url: Option<String>,
    /// Where each contract of the deployment lives.
    pub contracts: ContractAddresses,
    /// Present only on throwaway chains: never put a real key in a deployment file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev_keys: Option<DevKeys>,
}

/// Addresses of the contracts of one deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContractAddresses {
    /// The EntryPoint v0.7.
    pub entry_point: Address,
    /// The EntryPoint's SenderCreator, through which it calls account factories (`initCode`).
    pub sender_creator: Address,
    /// Factory of eth-infinitism's SimpleAccount wallets.
    pub simple_account_factory: Address,
    /// SimpleAccount plus ERC-1271, for permits and escrow vouchers.
    pub tora_account_factory: Address,
    /// The TORA ERC-20 token (with EIP-2612 permits).
    pub tora: Address,
    /// ToraPriceFeed, the AggregatorV3 feed of the TORA/BNB price the paymaster quotes from.
    pub price_feed: Address,
    /// ToraPaymaster, which takes gas payment in TORA from senders or sponsors.
    pub paymaster: Address,
    /// InferenceEscrow, which holds TORA deposits and redeems inference vouchers.
    pub inference_escrow: Address,
}

/// Private keys of the devnet's roles (anvil's well-known test accounts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DevKeys {
    /// Owns every contract and holds the TORA supply.
    pub deployer: B256,
    /// Signs bundle transactions.
    pub bundler: B256,
    /// Signs paymaster quotes (the ToraPaymaster's `signer`).
    pub paymaster_signer: B256,
    /// Writes the TORA/BNB price feed.
    pub price_updater: B256,
    /// Owns the demo smart wallet.
    pub wallet_owner: B256,
    /// The inference gateway's provider: vouchers name it, it redeems them.
    pub inference_provider: B256,
}

/// Why a deployment file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    /// The file could not be read (usually: it does not exist yet).
    #[error("cannot read deployment file {path}: {source} (run `tora devnet` to create one)")]
    Read {
        /// The file's path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file, its directory or its temporary copy could not be written.
    #[error("cannot write deployment file {path}: {source}")]
    Write {
        /// The file's path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid deployment (bad JSON, or a missing or unknown field).
    #[error("invalid deployment file {path}: {source}")]
    Parse {
        /// The file's path.
        path: String,
        /// The JSON error.
        source: serde_json::Error,
    },
}

impl Deployment {
    /// Reads and parses the deployment file at `path`.
    pub fn read(path: &Path) -> Result<Self, DeploymentError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|source| DeploymentError::Read { path: display.clone(), source })?;
        serde_json::from_str(&text).map_err(|source| DeploymentError::Parse { path: display, source })
    }

    /// Writes atomically (temp file + rename) so a reader never sees half a file.
    pub fn write(&self, path: &Path) -> Result<(), DeploymentError> {
        let display = path.display().to_string();
        let err = |source| DeploymentError::Write { path: display.clone(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let tmp = path.with_extension("json.tmp");
        let json = serde_json::to_string_pretty(self).expect("deployment serialises");
        std::fs::write(&tmp, json + "\n").map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Deployment {
        let a = |n: u8| Address::repeat_byte(n);
        Deployment {
            chain: "dev".into(),
            chain_id: 31337,
            rpc_url: "http://127.0.0.1:8545".into(),
            ws_url: Some("ws://127.0.0.1:8545".into()),
            contracts: ContractAddresses {
                entry_point: a(1),
                sender_creator: a(2),
                simple_account_factory: a(3),
                tora_account_factory: a(4),
                tora: a(5),
                price_feed: a(6),
                paymaster: a(7),
                inference_escrow: a(8),
            },
            dev_keys: None,
        }
    }

    #[test]
    fn write_then_read_round_trips() {
        let path = std::env::temp_dir().join(format!("tora-deploy-{}/d.json", std::process::id()));
        sample().write(&path).unwrap();
        assert_eq!(Deployment::read(&path).unwrap(), sample());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"inferenceEscrow\""), "{text}");
        assert!(!text.contains("devKeys"), "no keys unless it is a devnet");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn missing_file_names_the_fix() {
        let err = Deployment::read(Path::new("/nonexistent/deployment.json")).unwrap_err();
        assert!(err.to_string().contains("tora devnet"), "{err}");
    }
}
