//! Optional OpenTelemetry trace export (OTLP over gRPC), and the W3C trace context that
//! makes one HTTP request one trace across the gateway and the worker that served it.
//!
//! Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is
//! set: then no OpenTelemetry layer is installed, the gateway opens no span of its own, and
//! the only work left is passing a client's `traceparent` on to the worker. On, every
//! request is a span in the gateway (kind server) and a child span in the worker, exported
//! in batches by a background thread (`OTEL_BSP_*` tune it). The context travels in the
//! envelope's `traceparent`/`tracestate` fields (proto), never as a forwarded header: the
//! worker believes only what its gateway sends. The exporter is the SDK's own, so the
//! standard `OTEL_*` variables (endpoint, headers, timeout, service name, resource
//! attributes, sampler) mean what they mean elsewhere; see deploy/CONFIG.md, "Traces".

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use std::collections::HashMap;
use std::sync::OnceLock;

/// The provider, kept so that [`flush`] can export what is still queued at exit.
static PROVIDER: OnceLock<opentelemetry_sdk::trace::SdkTracerProvider> = OnceLock::new();

/// Whether traces are exported (the OpenTelemetry layer is installed).
pub fn enabled() -> bool {
    PROVIDER.get().is_some()
}

/// What the environment asks for: `None` when export is off.
#[derive(Debug, PartialEq, Eq)]
pub struct Settings {
    /// `OTEL_SERVICE_NAME`, or the binary's name.
    pub service: String,
}

impl Settings {
    /// Reads the switch and checks what this build cannot do. `default_service` names the
    /// binary (`op-gateway`, `op-worker`) when `OTEL_SERVICE_NAME` is unset.
    pub fn from_env(default_service: &str) -> Result<Option<Settings>, String> {
        let endpoint = crate::env::trimmed("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| crate::env::trimmed("OTEL_EXPORTER_OTLP_ENDPOINT"));
        let disabled = crate::env::trimmed("OTEL_SDK_DISABLED")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if endpoint.is_none() || disabled {
            return Ok(None);
        }
        for name in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            match crate::env::trimmed(name).as_deref() {
                None | Some("grpc") => {}
                Some(other) => {
                    return Err(format!(
                        "{name}: only `grpc` is built in (OTLP over gRPC, a collector's port 4317), not `{other}`"
                    ))
                }
            }
        }
        let service =
            crate::env::trimmed("OTEL_SERVICE_NAME").unwrap_or_else(|| default_service.to_string());
        Ok(Some(Settings { service }))
    }
}

/// Builds the exporter and the provider; must run inside the tokio runtime (the gRPC
/// channel's tasks live on it). Returns the tracer for the `tracing` layer.
pub(crate) fn start(settings: &Settings) -> Result<opentelemetry_sdk::trace::Tracer, String> {
    use opentelemetry::trace::TracerProvider as _;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .map_err(|e| format!("OTEL_EXPORTER_OTLP_ENDPOINT: cannot build the exporter: {e}"))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(settings.service.clone())
        .build();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("openpartner");
    let _ = PROVIDER.set(provider);
    Ok(tracer)
}

/// How long an exiting process waits for its last spans to be exported: a collector that
/// is down must not hold the exit past the supervisor's stop timeout.
const FLUSH_BOUND: std::time::Duration = std::time::Duration::from_secs(2);

/// Exports the spans still queued, for at most [`FLUSH_BOUND`]; the binaries await it when
/// they exit. The export runs on a blocking thread while the runtime (which carries the
/// gRPC channel) keeps running.
pub async fn flush() {
    if let Some(provider) = PROVIDER.get() {
        let provider = provider.clone();
        let export = tokio::task::spawn_blocking(move || provider.force_flush());
        let _ = tokio::time::timeout(FLUSH_BOUND, export).await;
    }
}

/// Renames a span that may have started already (`otel.name` only names one that has
/// not): e.g. after the route pattern that served the request is known.
pub fn rename(span: &tracing::Span, name: String) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    span.context().span().update_name(name);
}

/// A W3C trace context as carried in the envelope (empty strings: none).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Carrier {
    pub traceparent: String,
    pub tracestate: String,
}

/// The OpenTelemetry context a carrier names, or `None` when its `traceparent` is absent
/// or not a valid W3C one (an invalid one is ignored, as the W3C spec says).
pub fn extract(traceparent: &str, tracestate: &str) -> Option<opentelemetry::Context> {
    if !well_formed(traceparent) {
        return None;
    }
    let mut fields = HashMap::with_capacity(2);
    fields.insert("traceparent".to_string(), traceparent.to_string());
    if !tracestate.is_empty() {
        fields.insert("tracestate".to_string(), tracestate.to_string());
    }
    let cx = TraceContextPropagator::new().extract(&fields);
    cx.span().span_context().is_valid().then_some(cx)
}

/// `version-traceid-parentid-flags` in lower-case hex of exactly 2, 32, 16 and 2 digits,
/// version not `ff` (W3C Trace Context, level 1; a later version may append `-…`). The
/// propagator alone would take a short trace id and pad it.
fn well_formed(traceparent: &str) -> bool {
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let mut parts = traceparent.split('-');
    let (Some(version), Some(trace), Some(parent), Some(flags)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let rest_ok = match version {
        "00" => parts.next().is_none(),
        _ => true,
    };
    hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && rest_ok
}

/// The carrier for a context (empty when it holds no valid span).
pub fn inject(cx: &opentelemetry::Context) -> Carrier {
    let mut fields: HashMap<String, String> = HashMap::with_capacity(2);
    TraceContextPropagator::new().inject_context(cx, &mut fields);
    Carrier {
        traceparent: fields.remove("traceparent").unwrap_or_default(),
        tracestate: fields.remove("tracestate").unwrap_or_default(),
    }
}

/// A client's trace context, re-encoded, or an empty carrier when it sent none or an
/// invalid one: what a gateway with export off hands the worker.
pub fn pass_through(traceparent: &str, tracestate: &str) -> Carrier {
    extract(traceparent, tracestate).map_or_else(Carrier::default, |cx| inject(&cx))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_survives_extract_and_inject() {
        let c = pass_through(PARENT, "vendor=abc");
        assert_eq!(c.traceparent, PARENT);
        assert_eq!(c.tracestate, "vendor=abc");
    }

    #[test]
    fn invalid_traceparents_are_dropped() {
        for bad in [
            "",
            "garbage",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero span id
            "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",   // short trace id
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // forbidden version
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // upper case
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", // v00 has 4 parts
        ] {
            assert_eq!(pass_through(bad, ""), Carrier::default(), "{bad}");
        }
    }

    #[test]
    fn export_is_off_without_an_endpoint_and_refuses_other_protocols() {
        // One test owns these variables (tests of a crate share the process environment).
        std::env::remove_var("OTEL_EXPORTER_OTLP_ENDPOINT");
        std::env::remove_var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        assert_eq!(Settings::from_env("op-worker"), Ok(None));
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317");
        assert_eq!(
            Settings::from_env("op-worker"),
            Ok(Some(Settings {
                service: "op-worker".into()
            }))
        );
        std::env::set_var("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json");
        let e = Settings::from_env("op-worker").unwrap_err();
        assert!(e.contains("OTEL_EXPORTER_OTLP_PROTOCOL"), "{e}");
        std::env::remove_var("OTEL_EXPORTER_OTLP_PROTOCOL");
        std::env::set_var("OTEL_SDK_DISABLED", "true");
        assert_eq!(Settings::from_env("op-worker"), Ok(None));
        std::env::remove_var("OTEL_SDK_DISABLED");
        std::env::remove_var("OTEL_EXPORTER_OTLP_ENDPOINT");
    }
}
