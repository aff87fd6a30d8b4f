//! Traces of a JSON-RPC service leave over OTLP/HTTP and continue the caller's trace. The
//! collector is a real HTTP server in the test that decodes the protobuf export requests.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AttributeValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use serde_json::{Value, json};
use std::future::IntoFuture;
use std::sync::{Arc, Mutex};
use tora_core::{ErrorCode, RpcError};
use tora_jsonrpc::{CallMeta, Limits, Params, RpcService, router};

/// The caller's trace, as its `traceparent` header names it (W3C Trace Context, sampled).
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";

struct Adder;

impl RpcService for Adder {
    async fn call(&self, _: &CallMeta, method: &str, params: Params) -> Result<Value, RpcError> {
        match method {
            "test_add" => {
                let (a, b): (u64, u64) = params.positional(2)?;
                // A library's span (this test's target is not a Tensora crate) joins the trace.
                tracing::info_span!("library_call").in_scope(|| Ok(json!(a + b)))
            }
            _ => Err(RpcError::new(ErrorCode::MethodNotFound, format!("no method {method}"))),
        }
    }

    async fn ready(&self) -> Result<(), String> {
        Ok(())
    }
}

/// A received span with its resource's `service.name`.
type ServiceSpan = (Option<AttributeValue>, Span);

/// Every span the collector received.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<ServiceSpan>>>);

async fn collect(State(collector): State<Collector>, body: Bytes) -> StatusCode {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut spans = collector.0.lock().unwrap();
    for resource_spans in request.resource_spans {
        let resource = resource_spans.resource.unwrap_or_default();
        let service = attribute(&resource.attributes, "service.name");
        for scope_spans in resource_spans.scope_spans {
            spans.extend(scope_spans.spans.into_iter().map(|span| (service.clone(), span)));
        }
    }
    StatusCode::OK
}

fn attribute(attributes: &[KeyValue], key: &str) -> Option<AttributeValue> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()?.value)
}

fn text(value: &str) -> Option<AttributeValue> {
    Some(AttributeValue::StringValue(value.to_owned()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn request_and_call_spans_reach_the_collector_under_the_callers_trace() {
    let collector_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", collector_listener.local_addr().unwrap());
    // SAFETY: the only test in this binary, and no other thread runs yet.
    unsafe {
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint);
        for name in [
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "OTEL_SERVICE_NAME",
            "OTEL_SDK_DISABLED",
            "OTEL_TRACES_EXPORTER",
            "OTEL_TRACES_SAMPLER",
        ] {
            std::env::remove_var(name);
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let collector = Collector::default();
    collector_listener.set_nonblocking(true).unwrap();
    let app = axum::Router::new().route("/v1/traces", post(collect)).with_state(collector.clone());
    runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(collector_listener).unwrap();
        axum::serve(listener, app).await.unwrap();
    });

    let guard = tora_telemetry::init("tora-test-rpc", false);
    assert!(guard.exports_traces());

    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(
            axum::serve(listener, router(Arc::new(Adder), Limits::default()))
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .into_future(),
        );
        let client = reqwest::Client::new();
        let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"test_add","params":[2,3]},
                        {"jsonrpc":"2.0","id":2,"method":"nope"}]"#;
        let response = client
            .post(&url)
            .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN_ID}-01"))
            .body(batch)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let answers: Value = response.json().await.unwrap();
        assert_eq!(answers[0]["result"], 5);
        assert_eq!(answers[1]["error"]["code"], -32601);
        assert_eq!(client.get(format!("{url}/health")).send().await.unwrap().status(), 200);
        // Request spans end when the connection is done with the response: shutting the
        // server down gracefully waits for that, so every span is finished before the flush.
        drop(client);
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    });
    // Outside any traced span, a library's span (a node client polling for blocks) starts no
    // trace: it is not exported.
    tracing::info_span!("library_poll").in_scope(|| tracing::info!("polled"));
    // Blocks this thread only; the collector answers from the runtime's worker threads.
    guard.flush();

    let spans = collector.0.lock().unwrap().clone();
    let mut names: Vec<&str> = spans.iter().map(|(_, span)| span.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["GET /health", "POST /", "library_call", "test_add", "unknown"]);
    for (service, _) in &spans {
        assert_eq!(*service, text("tora-test-rpc"));
    }
    let span = |name: &str| &spans.iter().find(|(_, span)| span.name == name).unwrap().1;

    let request = span("POST /");
    assert_eq!(hex(&request.trace_id), TRACE_ID);
    assert_eq!(hex(&request.parent_span_id), CALLER_SPAN_ID);
    assert_eq!(request.kind, SpanKind::Server as i32);
    assert_eq!(attribute(&request.attributes, "http.request.method"), text("POST"));
    assert_eq!(attribute(&request.attributes, "url.path"), text("/"));
    assert_eq!(attribute(&request.attributes, "http.route"), text("/"));
    assert_eq!(
        attribute(&request.attributes, "http.response.status_code"),
        Some(AttributeValue::IntValue(200))
    );

    let add = span("test_add");
    assert_eq!(hex(&add.trace_id), TRACE_ID);
    assert_eq!(add.parent_span_id, request.span_id);
    assert_eq!(attribute(&add.attributes, "rpc.system"), text("jsonrpc"));
    assert_eq!(attribute(&add.attributes, "rpc.method"), text("test_add"));
    assert_eq!(attribute(&add.attributes, "rpc.jsonrpc.error_code"), None);
    assert_eq!(span("library_call").parent_span_id, add.span_id);

    let unknown = span("unknown");
    assert_eq!(hex(&unknown.trace_id), TRACE_ID);
    assert_eq!(unknown.parent_span_id, request.span_id);
    assert_eq!(attribute(&unknown.attributes, "rpc.method"), text("nope"));
    assert_eq!(
        attribute(&unknown.attributes, "rpc.jsonrpc.error_code"),
        Some(AttributeValue::IntValue(-32601))
    );

    let health = span("GET /health");
    assert_ne!(hex(&health.trace_id), TRACE_ID, "a request without traceparent starts its own trace");
    assert!(health.parent_span_id.is_empty());
    drop(guard);
}
