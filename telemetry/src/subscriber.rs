//! The process-wide subscriber: logs filtered by `RUST_LOG`, and spans to OTLP when configured.

use crate::otlp::{self, ProcessEnv};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::subscriber::Interest;
use tracing::{Level, Metadata};
use tracing_subscriber::filter::{DynFilterFn, LevelFilter};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Keeps the trace pipeline alive; dropping it flushes the spans still queued and shuts the
/// exporter down, so keep it in `main` until the process ends.
#[must_use = "dropping the guard shuts the trace exporter down"]
pub struct Guard {
    provider: Option<SdkTracerProvider>,
}

impl Guard {
    /// Whether spans are being exported (an OTLP endpoint was configured and the exporter built).
    pub fn exports_traces(&self) -> bool {
        self.provider.is_some()
    }

    /// Sends every finished span now instead of at the next batch; blocks until the collector
    /// answered or the export timed out.
    pub fn flush(&self) {
        if let Some(provider) = &self.provider
            && let Err(e) = provider.force_flush()
        {
            tracing::warn!(error = %e, "flushing spans to the OTLP endpoint failed");
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "shutting the OTLP span exporter down failed");
        }
    }
}

/// Installs logging to stdout (JSON lines when `log_json`) filtered by `RUST_LOG` (default
/// `info`), and OpenTelemetry traces when `OTEL_EXPORTER_OTLP_ENDPOINT` or
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set. `OTEL_SERVICE_NAME` overrides `service_name`.
pub fn init(service_name: &str, log_json: bool) -> Guard {
    init_with_writer(service_name, log_json, std::io::stdout)
}

/// [`init`] with log lines going to `writer` instead of stdout.
///
/// A second call in one process keeps the first subscriber (it is global) and only logs why.
pub fn init_with_writer<W>(service_name: &str, log_json: bool, writer: W) -> Guard
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let (provider, build_error) = if otlp::exporting(&ProcessEnv) {
        match otlp::tracer_provider(otlp::service_name(service_name, &ProcessEnv)) {
            Ok(provider) => (Some(provider), None),
            Err(e) => (None, Some(e)),
        }
    } else {
        (None, None)
    };
    let log_filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = if log_json {
        tracing_subscriber::fmt::layer().json().with_writer(writer).with_filter(log_filter).boxed()
    } else {
        tracing_subscriber::fmt::layer().with_writer(writer).with_filter(log_filter).boxed()
    };
    // Traces have their own filter so that quieting logs (RUST_LOG=warn) keeps the request and
    // call spans, which are all at INFO.
    let traces = provider.as_ref().map(|provider| {
        let filter = DynFilterFn::new(traced)
            // Callsites below INFO are never traced: decided once, not at every event.
            .with_callsite_filter(|meta| {
                if *meta.level() <= Level::INFO { Interest::sometimes() } else { Interest::never() }
            })
            .with_max_level_hint(LevelFilter::INFO);
        tracing_opentelemetry::layer().with_tracer(provider.tracer("tora-telemetry")).with_filter(filter)
    });
    let installed = tracing_subscriber::registry().with(logs).with(traces).try_init();
    // Outgoing calls (and libraries that read the global) propagate W3C trace context too.
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    if let Err(e) = installed {
        tracing::warn!(error = %e, "a tracing subscriber was already installed; keeping it");
    }
    if let Some(e) = build_error {
        tracing::warn!(error = %e, "OpenTelemetry traces are off: the OTLP exporter could not be built");
    }
    if let Some(provider) = &provider {
        opentelemetry::global::set_tracer_provider(provider.clone());
        tracing::info!(service = service_name, "exporting OpenTelemetry traces over OTLP/HTTP");
    }
    Guard { provider }
}

/// What becomes an OpenTelemetry span or span event: INFO and above, where a library's span
/// (alloy's node `request`, say) counts only inside a traced span. A trace thus starts at a
/// Tensora span (an HTTP request, a bundling pass), and a node client polling for blocks does
/// not start one every tick.
fn traced<S>(meta: &Metadata<'_>, cx: &Context<'_, S>) -> bool
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    *meta.level() <= Level::INFO
        && (!meta.is_span() || meta.target().starts_with("tora") || cx.lookup_current().is_some())
}
