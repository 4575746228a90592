//! The gateway's part of a trace (deploy/CONFIG.md, "Traces"): one server span per request
//! when traces are exported, a child of the client's `traceparent` when it sent a valid one,
//! and the trace context handed to the worker in the envelope.
//!
//! With export off no span is opened ([`tracing::Span::none`]); a client's valid
//! `traceparent` still reaches the worker (re-encoded), so a worker that exports joins the
//! client's trace.

use http::HeaderMap;
use op_control::traces::{self, Carrier};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The span a request runs in: a real one only when traces are exported.
pub fn request_span(method: &http::Method, headers: &HeaderMap) -> tracing::Span {
    if !traces::enabled() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!("gateway request", otel.kind = "server");
    span.set_attribute("http.request.method", method.as_str().to_string());
    let (parent, state) = client_context(headers);
    if let Some(cx) = traces::extract(parent, state) {
        let _ = span.set_parent(cx);
    }
    span
}

/// Names the span after the route pattern (never the raw path) and records the answer.
pub fn finish(span: &tracing::Span, method: &http::Method, route: &str, status: u16) {
    if span.is_none() {
        return;
    }
    traces::rename(span, format!("{method} {route}"));
    span.set_attribute("http.route", route.to_string());
    span.set_attribute("http.response.status_code", i64::from(status));
}

/// What the worker gets in the envelope: this request's span, or the client's context
/// passed on when no span is exported.
pub fn carrier(headers: &HeaderMap) -> Carrier {
    if traces::enabled() {
        return traces::inject(&tracing::Span::current().context());
    }
    let (parent, state) = client_context(headers);
    if parent.is_empty() {
        return Carrier::default();
    }
    traces::pass_through(parent, state)
}

fn client_context(headers: &HeaderMap) -> (&str, &str) {
    let get = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    (get("traceparent"), get("tracestate"))
}
