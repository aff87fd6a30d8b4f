//! How every service reaches its node: JSON-RPC over HTTP with each request bounded in time.
//! A node that stops answering without refusing (frozen, overloaded, a half-open connection)
//! then costs a clear error after [`NODE_TIMEOUT`] instead of a request that hangs forever and
//! holds whatever it was serving.

use alloy::rpc::client::{ClientBuilder, RpcClient};
use alloy::transports::http::{Http, reqwest};
use std::time::Duration;

/// The longest one node request may take, answer included: far above any healthy node's
/// answer (the bundler's largest reads are batches of state proofs), far below a caller's
/// patience.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest opening a connection to the node may take.
pub const NODE_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A node RPC URL that does not parse (the URL given).
#[derive(Debug, thiserror::Error)]
#[error("invalid node RPC URL {0}")]
pub struct InvalidNodeUrl(pub String);

/// The HTTP transport to the node at `url`, with [`NODE_TIMEOUT`] and [`NODE_CONNECT_TIMEOUT`].
pub fn http(url: &str) -> Result<Http<reqwest::Client>, InvalidNodeUrl> {
    let parsed = url.parse().map_err(|_| InvalidNodeUrl(url.to_owned()))?;
    let client = reqwest::Client::builder()
        .timeout(NODE_TIMEOUT)
        .connect_timeout(NODE_CONNECT_TIMEOUT)
        .build()
        .map_err(|_| InvalidNodeUrl(url.to_owned()))?;
    Ok(Http::with_client(client, parsed))
}

/// A JSON-RPC client of the node at `url` over [`http`]; `layer` wraps its transport (the
/// bundler counts its requests there).
pub fn client_with<L>(url: &str, layer: L) -> Result<RpcClient, InvalidNodeUrl>
where
    L: tower::Layer<Http<reqwest::Client>>,
    L::Service: alloy::transports::IntoBoxTransport,
{
    let transport = http(url)?;
    let is_local = transport.guess_local();
    Ok(ClientBuilder::default().layer(layer).transport(transport, is_local))
}

/// A JSON-RPC client of the node at `url` over [`http`].
pub fn client(url: &str) -> Result<RpcClient, InvalidNodeUrl> {
    client_with(url, tower::layer::util::Identity::new())
}
