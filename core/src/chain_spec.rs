//! A chain is data, not code: one small TOML file per chain in `chain_specs/`, compiled in for
//! the chains we ship and loadable from a path for any other.

use alloy::primitives::{Address, U256};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Everything a service needs to know about the chain it runs against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSpec {
    // Identity
    /// Short name of the chain (`dev`, `opbnb`, …): a built-in spec's name, as `load` takes it.
    pub name: String,
    /// EIP-155 chain id.
    pub id: u64,
    /// The chain an L2 settles on (BSC for opBNB and Tensora).
    #[serde(default)]
    pub l1_chain_id: Option<u64>,
    /// The EntryPoint v0.7 contract that the bundler submits to and user operation hashes name.
    pub entry_point: Address,

    // Blocks and gas
    /// Target time between blocks, in milliseconds.
    pub block_time_ms: u64,
    /// Gas target for one bundle transaction.
    pub max_bundle_gas: u64,

    // Fees
    /// How the chain charges for data availability, if at all.
    pub da_fee: DaFee,

    // ERC-7562 staking: "MIN_STAKE_VALUE and MIN_UNSTAKE_DELAY are adjustable per chain"
    /// The stake an entity needs on this chain to count as staked (ERC-7562).
    pub stake: StakeRequirement,

    // Precompiles beyond the EVM's own
    /// RIP-7212's secp256r1 verifier at 0x100 (live on OP Stack chains since Fjord).
    #[serde(default)]
    pub rip7212_p256: bool,

    // The node
    /// Whether the chain's nodes answer `eth_getProof` cheaply (a trie walk), so that a
    /// simulation reads each account, with its slots, in one call: what nodes billed per call
    /// want. anvil rebuilds its state trie for every proof, which under load is slower than
    /// reading balance, nonce, code and slots apart.
    #[serde(default = "proofs_by_default")]
    pub state_proofs: bool,
}

fn proofs_by_default() -> bool {
    true
}

/// What an entity must lock in the EntryPoint to count as staked (ERC-7562 SREP-010).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StakeRequirement {
    /// MIN_STAKE_VALUE, in wei of the chain's native coin (BNB on our chains).
    pub min_stake_wei: U256,
    /// MIN_UNSTAKE_DELAY, in seconds (the ERC's value is one day).
    pub min_unstake_delay_secs: u64,
}

/// How a chain charges for data availability on top of L2 execution gas.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DaFee {
    /// An L1 (or dev) chain: execution gas is the whole fee.
    None,
    /// OP Stack: an L1 data fee read from the GasPriceOracle predeploy.
    OpStack {
        /// Address of the GasPriceOracle predeploy (0x42…0F on OP Stack chains).
        gas_price_oracle: Address,
    },
}

/// Why [`ChainSpec::load`] found no chain spec.
#[derive(Debug, thiserror::Error)]
pub enum ChainSpecError {
    /// The name is neither a built-in chain nor a path ending in `.toml`.
    #[error("unknown chain {0:?}: expected one of {BUILTIN_NAMES:?} or a path to a .toml file")]
    Unknown(String),
    /// The spec file could not be read.
    #[error("cannot read chain spec {path}: {source}")]
    Read {
        /// The spec file's path, as given.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The spec's TOML is malformed or misses or adds a field.
    #[error("invalid chain spec {path}: {source}")]
    Parse {
        /// The built-in name or file path of the spec.
        path: String,
        /// The TOML error.
        source: toml::de::Error,
    },
}

/// Names of the chain specs compiled into every binary.
pub const BUILTIN_NAMES: [&str; 5] = ["dev", "opbnb", "opbnb-testnet", "bsc", "tensora"];

fn builtin_toml(name: &str) -> Option<&'static str> {
    Some(match name {
        "dev" => include_str!("../../chain_specs/dev.toml"),
        "opbnb" => include_str!("../../chain_specs/opbnb.toml"),
        "opbnb-testnet" => include_str!("../../chain_specs/opbnb-testnet.toml"),
        "bsc" => include_str!("../../chain_specs/bsc.toml"),
        "tensora" => include_str!("../../chain_specs/tensora.toml"),
        _ => return None,
    })
}

impl ChainSpec {
    /// A built-in chain by name (`dev`, `opbnb`, …) or a spec file by path.
    pub fn load(name_or_path: &str) -> Result<Self, ChainSpecError> {
        if let Some(text) = builtin_toml(name_or_path) {
            return Self::parse(text, name_or_path);
        }
        if !name_or_path.ends_with(".toml") {
            return Err(ChainSpecError::Unknown(name_or_path.to_owned()));
        }
        let path = Path::new(name_or_path);
        let text = std::fs::read_to_string(path)
            .map_err(|source| ChainSpecError::Read { path: name_or_path.to_owned(), source })?;
        Self::parse(&text, name_or_path)
    }

    fn parse(text: &str, path: &str) -> Result<Self, ChainSpecError> {
        toml::from_str(text).map_err(|source| ChainSpecError::Parse { path: path.to_owned(), source })
    }

    /// The same chain under another id: Tensora's id is set per deployment.
    pub fn with_id(mut self, id: u64) -> Self {
        self.id = id;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ENTRY_POINT_V07;

    #[test]
    fn every_builtin_parses_with_the_canonical_entry_point() {
        for name in BUILTIN_NAMES {
            let spec = ChainSpec::load(name).unwrap();
            assert_eq!(spec.name, name);
            assert_eq!(spec.entry_point, ENTRY_POINT_V07);
        }
    }

    #[test]
    fn builtin_ids_and_settlement_layers() {
        let ids: Vec<_> = BUILTIN_NAMES
            .iter()
            .map(|n| {
                let s = ChainSpec::load(n).unwrap();
                (s.id, s.l1_chain_id)
            })
            .collect();
        assert_eq!(ids, [(31337, None), (204, Some(56)), (5611, Some(97)), (56, None), (7433, Some(56))]);
    }

    #[test]
    fn op_stack_chains_name_the_gas_price_oracle() {
        let oracle: Address = "0x420000000000000000000000000000000000000F".parse().unwrap();
        for name in ["opbnb", "opbnb-testnet", "tensora"] {
            assert_eq!(ChainSpec::load(name).unwrap().da_fee, DaFee::OpStack { gas_price_oracle: oracle });
        }
        assert_eq!(ChainSpec::load("dev").unwrap().da_fee, DaFee::None);
    }

    #[test]
    fn unknown_names_and_bad_files_are_clear_errors() {
        assert!(matches!(ChainSpec::load("mainnet"), Err(ChainSpecError::Unknown(_))));
        assert!(matches!(ChainSpec::load("/nonexistent.toml"), Err(ChainSpecError::Read { .. })));
        let dir = std::env::temp_dir().join(format!("tora-spec-{}.toml", std::process::id()));
        std::fs::write(&dir, "name = \"x\"\nid = \"not a number\"\n").unwrap();
        let err = ChainSpec::load(dir.to_str().unwrap()).unwrap_err();
        assert!(matches!(err, ChainSpecError::Parse { .. }), "{err}");
        std::fs::remove_file(dir).unwrap();
    }

    #[test]
    fn stake_minimums_and_p256_are_per_chain() {
        let bnb = U256::from(10u64).pow(U256::from(18));
        for name in BUILTIN_NAMES {
            let spec = ChainSpec::load(name).unwrap();
            assert_eq!(spec.stake.min_unstake_delay_secs, 86_400, "{name}");
            assert_eq!(
                spec.rip7212_p256,
                spec.l1_chain_id.is_some(),
                "{name}: P256 exactly on OP Stack chains"
            );
        }
        assert_eq!(ChainSpec::load("dev").unwrap().stake.min_stake_wei, bnb);
        assert_eq!(ChainSpec::load("opbnb").unwrap().stake.min_stake_wei, bnb);
    }

    #[test]
    fn state_proofs_everywhere_but_anvil() {
        for name in BUILTIN_NAMES {
            assert_eq!(ChainSpec::load(name).unwrap().state_proofs, name != "dev", "{name}");
        }
    }

    #[test]
    fn tensora_id_is_configurable() {
        assert_eq!(ChainSpec::load("tensora").unwrap().with_id(99).id, 99);
    }
}
