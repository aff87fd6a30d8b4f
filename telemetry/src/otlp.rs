//! The OTLP trace pipeline, configured the way every OpenTelemetry SDK is: from `OTEL_*`
//! variables (endpoint, headers, timeout and batch sizes are read by the SDK itself).

use opentelemetry_otlp::{ExporterBuildError, SpanExporter};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

/// Either of these turns the exporter on; the signal-specific one wins when both are set.
const ENDPOINT_VARS: [&str; 2] = ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"];

/// Reads one variable; the OpenTelemetry spec treats an empty value as unset.
pub(crate) trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub(crate) struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|value| !value.trim().is_empty())
    }
}

/// Whether spans leave the process: an endpoint is set, and neither `OTEL_SDK_DISABLED=true`
/// nor `OTEL_TRACES_EXPORTER=none` turns export off.
pub(crate) fn exporting(env: &impl Env) -> bool {
    let disabled = env.var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let no_exporter = env.var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim().eq_ignore_ascii_case("none"));
    let endpoint = ENDPOINT_VARS.iter().any(|name| env.var(name).is_some());
    endpoint && !disabled && !no_exporter
}

/// The `service.name` spans carry: `OTEL_SERVICE_NAME` when set, the binary's own otherwise.
pub(crate) fn service_name(default: &str, env: &impl Env) -> String {
    env.var("OTEL_SERVICE_NAME").unwrap_or_else(|| default.to_owned())
}

/// A tracer provider exporting over OTLP/HTTP (protobuf) through a batch processor, which
/// sends from its own thread so request handling never waits on the collector.
pub(crate) fn tracer_provider(service_name: String) -> Result<SdkTracerProvider, ExporterBuildError> {
    let exporter = SpanExporter::builder().with_http().build()?;
    // Resource::builder() also reads OTEL_RESOURCE_ATTRIBUTES; the name set here wins over a
    // `service.name` given there, as OTEL_SERVICE_NAME does in every SDK.
    let resource = Resource::builder().with_service_name(service_name).build();
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct FakeEnv(HashMap<&'static str, &'static str>);

    impl Env for FakeEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|v| v.to_string())
        }
    }

    fn env(pairs: &[(&'static str, &'static str)]) -> FakeEnv {
        FakeEnv(pairs.iter().copied().collect())
    }

    #[test]
    fn an_endpoint_turns_export_on_unless_the_sdk_or_exporter_is_off() {
        assert!(!exporting(&env(&[])));
        assert!(exporting(&env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")])));
        assert!(exporting(&env(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/v1/traces")])));
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        assert!(!exporting(&env(&[endpoint, ("OTEL_SDK_DISABLED", "TRUE")])));
        assert!(!exporting(&env(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")])));
        assert!(exporting(&env(&[endpoint, ("OTEL_SDK_DISABLED", "false")])));
    }

    #[test]
    fn otel_service_name_overrides_the_binarys_name() {
        assert_eq!(service_name("tora-bundler", &env(&[])), "tora-bundler");
        assert_eq!(service_name("tora-bundler", &env(&[("OTEL_SERVICE_NAME", "bundler-eu")])), "bundler-eu");
    }
}
