//! `init` with no OTLP endpoint configured: logs work, no exporter is built, and the HTTP span
//! layer still names and attributes request spans (seen here through the JSON log lines).

use axum::Router;
use axum::extract::Path;
use axum::http::Request;
use axum::routing::get;
use serde_json::Value;
use std::io;
use std::sync::{Arc, Mutex};
use tower::ServiceExt;
use tracing_subscriber::fmt::MakeWriter;

/// Log lines kept in memory so the test can read them back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'w> MakeWriter<'w> for Captured {
    type Writer = Captured;

    fn make_writer(&'w self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect()
    }
}

#[test]
fn without_an_endpoint_init_builds_no_exporter_and_logs_json_with_request_spans() {
    // SAFETY: the only test in this binary, run before anything else reads the environment.
    unsafe {
        for name in ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "RUST_LOG"] {
            std::env::remove_var(name);
        }
    }
    let captured = Captured::default();
    let guard = tora_telemetry::init_with_writer("tora-test", true, captured.clone());
    assert!(!guard.exports_traces());

    tracing::info!(answer = 42, "telemetry is up");
    tracing::debug!("below the default level");
    let app = Router::new()
        .route(
            "/items/{id}",
            get(|Path(id): Path<u32>| async move {
                tracing::info!(id, "serving an item");
                "ok"
            }),
        )
        .layer(tora_telemetry::http_trace_layer());
    let request = Request::get("/items/7?x=1")
        .header("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        .body(axum::body::Body::empty())
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let response = runtime.block_on(app.oneshot(request)).unwrap();
    assert_eq!(response.status(), 200);
    drop(guard);

    let lines = captured.lines();
    assert_eq!(lines.len(), 2, "the debug line is filtered out: {lines:?}");
    assert_eq!(lines[0]["level"], "INFO");
    assert_eq!(lines[0]["fields"]["message"], "telemetry is up");
    assert_eq!(lines[0]["fields"]["answer"], 42);
    assert_eq!(lines[1]["fields"]["message"], "serving an item");
    let span = &lines[1]["span"];
    assert_eq!(span["name"], "http.request");
    assert_eq!(span["otel.name"], "GET /items/{id}");
    assert_eq!(span["http.request.method"], "GET");
    assert_eq!(span["http.route"], "/items/{id}");
    assert_eq!(span["url.path"], "/items/7");
}
