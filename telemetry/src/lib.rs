//! Observability shared by every Tensora service: one `init` that installs structured logs
//! (text or JSON) and, when an OTLP endpoint is configured through the standard `OTEL_*`
//! variables, OpenTelemetry traces; the tower layer that opens one span per HTTP request; and
//! the process's Prometheus recorder behind every service's /metrics; and the HTTP server loop
//! that drains requests in flight when a service stops.

mod http_span;
mod otlp;
mod prometheus;
mod serve;
mod subscriber;

pub use http_span::{HttpTraceLayer, RecordStatus, ServerSpan, http_trace_layer};
pub use prometheus::{prometheus, render_metrics};
pub use serve::{DRAIN_WAIT, Drain, serve, stop_serving};
pub use subscriber::{Guard, init, init_with_writer};

use opentelemetry::trace::TraceContextExt;
use std::borrow::Cow;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Renames a span's exported OpenTelemetry span. Recording `otel.name` works only until the span
/// is first entered; this works after, e.g. once a call turned out to name an unknown method.
pub fn rename_span(span: &tracing::Span, name: impl Into<Cow<'static, str>>) {
    span.context().span().update_name(name);
}
