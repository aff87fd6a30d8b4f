//! Signer lanes: one per bundler key, each with its own nonce and at most one bundle in
//! flight, so that several keys send bundles in parallel without nonce clashes.

use super::fees::BundleFees;
use super::{BuilderError, Settled};
use crate::pool::PoolOperation;
use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, Bytes};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use std::collections::HashSet;
use tokio::sync::oneshot;

/// A bundle sent at `nonce` and not yet settled.
pub(super) struct InFlight {
    pub nonce: u64,
    pub ops: Vec<PoolOperation>,
    pub gas: u64,
    pub calldata: Bytes,
    /// The fees of the latest transaction sent at this nonce (bundle or cancellation).
    pub fees: BundleFees,
    /// Every bundle transaction sent at this nonce, oldest first: any of them may land.
    pub sent: Vec<B256>,
    /// The cancellation, once sent.
    pub cancel: Option<B256>,
    pub last_sent_block: u64,
    /// When the first transaction at this nonce was sent: inclusion time counts from here.
    pub first_sent: std::time::Instant,
    pub resubmissions: u32,
    /// Operations dropped while building the bundle, for its outcome.
    pub dropped: Vec<(B256, String)>,
    pub done: Option<oneshot::Sender<Settled>>,
}

pub(super) struct Lane {
    pub address: Address,
    /// Signs with this lane's key only.
    pub provider: DynProvider,
    /// The bundle this key has sent and not yet seen settled; `None` when the lane is free.
    pub in_flight: tokio::sync::Mutex<Option<InFlight>>,
}

/// One lane per key, in the order given. The same key twice would share a nonce and clash,
/// so it is refused.
pub(super) fn lanes(rpc_url: &str, keys: &[B256]) -> Result<Vec<Lane>, BuilderError> {
    if keys.is_empty() {
        return Err(BuilderError::Keys("no bundler key".to_owned()));
    }
    // Checked once up front; each lane gets its own counted client.
    crate::node::client(rpc_url).map_err(|e| BuilderError::Url(e.0))?;
    let mut seen = HashSet::new();
    keys.iter()
        .map(|key| {
            let signer = PrivateKeySigner::from_bytes(key)
                .map_err(|e| BuilderError::Keys(format!("bundler key: {e}")))?;
            let address = signer.address();
            if !seen.insert(address) {
                return Err(BuilderError::Keys(format!("bundler key of {address} is given twice")));
            }
            let client = crate::node::client(rpc_url).map_err(|e| BuilderError::Url(e.0))?;
            let provider =
                ProviderBuilder::new().wallet(EthereumWallet::from(signer)).connect_client(client).erased();
            Ok(Lane { address, provider, in_flight: tokio::sync::Mutex::new(None) })
        })
        .collect()
}
