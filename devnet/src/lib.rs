//! A real local chain for development and tests: anvil (shipped inside an npm package) with
//! EntryPoint v0.7 deployed at its canonical address through the CREATE2 deployer, and the
//! Tensora contracts deployed on top. `tora devnet` / `tora up` and every end-to-end test use it.
//!
//! The test kit (`harness`, `test_contracts`, `redis_server`) is behind the `test-utils`
//! feature, which only the workspace's tests enable: the `tora` binary does not carry it.

mod anvil;
mod deploy;
#[cfg(feature = "test-utils")]
pub mod harness;
pub mod keys;
#[cfg(feature = "test-utils")]
pub mod redis_server;
#[cfg(feature = "test-utils")]
pub mod test_contracts;
pub mod wallet;

pub use anvil::{Anvil, AnvilConfig, AnvilError, contracts_dir, install_anvil, locate_anvil};
pub use deploy::{DeployError, DevnetPrices, confirm, deploy_all, deploy_entry_point, provider_for};
pub use wallet::SmartWallet;

use alloy::providers::DynProvider;
use tora_core::Deployment;

/// Why [`Devnet::start`] failed.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// anvil could not be found or started.
    #[error(transparent)]
    Anvil(#[from] AnvilError),
    /// Deploying EntryPoint v0.7 or the Tensora contracts failed.
    #[error(transparent)]
    Deploy(#[from] DeployError),
}

/// A running anvil with everything deployed. Dropping it stops the chain.
pub struct Devnet {
    /// The anvil process serving the chain.
    pub anvil: Anvil,
    /// The chain id, RPC URL, contract addresses and dev keys of this devnet.
    pub deployment: Deployment,
    /// Signs with the deployer key (contract owner, TORA holder).
    pub provider: DynProvider,
}

impl Devnet {
    /// Starts anvil and deploys the stack; fails loudly if EntryPoint's code is not canonical.
    pub async fn start(config: AnvilConfig) -> Result<Self, DevnetError> {
        let anvil = Anvil::spawn(config).await?;
        let (mut deployment, provider) = deploy_all(&anvil.rpc_url(), anvil.chain_id()).await?;
        deployment.ws_url = Some(anvil.ws_url());
        Ok(Self { anvil, deployment, provider })
    }
}
