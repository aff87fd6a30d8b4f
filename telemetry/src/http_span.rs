//! One span per HTTP request, named and attributed by the OpenTelemetry HTTP server
//! conventions, continuing the caller's trace from its W3C `traceparent` header.

use axum::extract::MatchedPath;
use axum::http::{Request, Response};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_http::HeaderExtractor;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use std::time::Duration;
use tower_http::trace::{DefaultOnRequest, HttpMakeClassifier, MakeSpan, OnResponse, TraceLayer};
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The layer [`http_trace_layer`] builds.
pub type HttpTraceLayer = TraceLayer<HttpMakeClassifier, ServerSpan, DefaultOnRequest, RecordStatus>;

/// Traces every request through a router: `router.layer(http_trace_layer())`. Added with
/// `Router::layer`, it runs after routing, so spans carry the route template (`http.route`).
pub fn http_trace_layer() -> HttpTraceLayer {
    TraceLayer::new_for_http().make_span_with(ServerSpan).on_response(RecordStatus)
}

/// Opens the request's span: `"{method} {route}"` (just the method when no route matched, so
/// scanners probing random paths cannot multiply span names).
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerSpan;

impl<B> MakeSpan<B> for ServerSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        let method = request.method().as_str();
        let route = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
        let name = match route {
            Some(route) => format!("{method} {route}"),
            None => method.to_owned(),
        };
        let span = tracing::info_span!(
            "http.request",
            otel.name = name,
            otel.kind = "server",
            otel.status_code = Empty,
            http.request.method = method,
            http.route = route,
            url.path = request.uri().path(),
            http.response.status_code = Empty,
        );
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(request.headers()));
        if parent.span().span_context().is_valid() {
            // Fails only when no OpenTelemetry layer is installed: then there is no trace to join.
            let _ = span.set_parent(parent);
        }
        span
    }
}

/// Records the status on the request's span; 5xx marks it failed (4xx are the caller's errors).
#[derive(Clone, Copy, Debug, Default)]
pub struct RecordStatus;

impl<B> OnResponse<B> for RecordStatus {
    fn on_response(self, response: &Response<B>, latency: Duration, span: &Span) {
        let status = response.status();
        // As i64: tracing-opentelemetry exports unsigned integers as strings.
        span.record("http.response.status_code", i64::from(status.as_u16()));
        if status.is_server_error() {
            span.record("otel.status_code", "ERROR");
        }
        tracing::debug!(
            status = status.as_u16(),
            latency_ms = latency.as_millis(),
            "finished processing request"
        );
    }
}
