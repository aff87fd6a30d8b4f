//! The bundler's own Prometheus figures, named in one place (the JSON-RPC layer records
//! `rpc_*`, the node client `bundler_node_*`). k8s/tora/dashboards/tora.json charts them.

use std::time::Duration;

/// Operations in the mempool, set once per new head.
pub(crate) fn pool_size(operations: usize) {
    metrics::gauge!("bundler_pool_operations").set(operations as f64);
}

/// A bundle was sent with `operations` operations.
pub(crate) fn bundle_sent(operations: usize) {
    metrics::histogram!("bundler_bundle_operations").record(operations as f64);
}

/// A bundle landed with `included` of its operations, `waited` after it was first sent.
pub(crate) fn bundle_landed(included: usize, waited: Duration) {
    metrics::counter!("bundler_operations_included_total").increment(included as u64);
    metrics::histogram!("bundler_inclusion_seconds").record(waited.as_secs_f64());
}

/// An operation refused because the validation queue was full.
pub(crate) fn validation_shed() {
    metrics::counter!("bundler_validations_shed_total").increment(1);
}

/// A head the node pushed over its WebSocket feed.
pub(crate) fn head_pushed() {
    metrics::counter!("bundler_heads_pushed_total").increment(1);
}

/// Whether the node's head feed is up (1) or heads are fetched instead (0).
pub(crate) fn head_followed(followed: bool) {
    metrics::gauge!("bundler_head_feed_up").set(if followed { 1.0 } else { 0.0 });
}
