//! The bundler's connection to its node. Every part (validator, builder, RPC) connects through
//! [`client`], so /metrics counts everything the bundler asks of the node, the figures behind
//! "node calls per operation": `bundler_node_requests_total{method}` counts JSON-RPC calls (each
//! call of a batch), `bundler_node_round_trips_total` HTTP requests (a batch counts once).

use alloy::rpc::client::RpcClient;
use alloy::transports::{TransportError, TransportFut};
use alloy_json_rpc::{RequestPacket, ResponsePacket};
use std::task::{Context, Poll};
pub use tora_core::node_client::InvalidNodeUrl;

/// A JSON-RPC client for `url` whose requests are counted by method, each bounded by
/// [`tora_core::node_client::NODE_TIMEOUT`].
pub fn client(url: &str) -> Result<RpcClient, InvalidNodeUrl> {
    tora_core::node_client::client_with(url, CountRequests)
}

/// Counts each call of a packet, and the packet, before sending it.
#[derive(Clone, Copy, Debug, Default)]
pub struct CountRequests;

impl<S> tower::Layer<S> for CountRequests {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Counted<S> {
        Counted { inner }
    }
}

/// The transport `S` wrapped by [`CountRequests`]: counts each request on /metrics, then sends it.
#[derive(Clone, Debug)]
pub struct Counted<S> {
    inner: S,
}

impl<S> tower::Service<RequestPacket> for Counted<S>
where
    S: tower::Service<RequestPacket, Response = ResponsePacket, Error = TransportError>
        + Send
        + Clone
        + 'static,
    S::Future: Send + 'static,
{
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: RequestPacket) -> Self::Future {
        metrics::counter!("bundler_node_round_trips_total").increment(1);
        for method in request.method_names() {
            metrics::counter!("bundler_node_requests_total", "method" => method.to_owned()).increment(1);
        }
        Box::pin(self.inner.call(request))
    }
}
