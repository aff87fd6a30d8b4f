//! The process's Prometheus recorder. `metrics` has one global recorder, and under `tora up`
//! every service runs in one process: each renders the same recorder on its own /metrics
//! (metric names carry the service's prefix: `rpc_`, `bundler_`, `gateway_`).

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Installs the recorder on first use and returns its handle. Call it when a service starts,
/// before it records anything: figures recorded before installation are lost.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (tests, embedding): then ours only renders.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// The body of `GET /metrics`: the Prometheus text exposition format.
pub async fn render_metrics() -> String {
    prometheus().render()
}
