//! Log lines: human text (the default) or, with `OP_LOG_FORMAT=json`, one JSON object per
//! line for log pipelines.
//!
//! A JSON line always has `ts` (RFC 3339, UTC, milliseconds), `level` (lower case), `msg`
//! and `target`, then the fields of the spans it happened in (outermost first: a worker's
//! `request_id`, `tenant`, `route`), then its own fields. Each request ends with one line
//! (`msg` `request`) carrying `request_id`, `tenant` (the slug, or null), `route` (the
//! route *pattern*, e.g. `/partners/:id`, never the raw path), `status` and `latency_ms`.
//!
//! Nothing here filters secrets: the code never hands a key, token, cookie or mail body to
//! a log macro (the e2e test `operate::logs_carry_no_secret` greps a whole run for them).
//! The one library that would — tokio-postgres logs statement parameters at `debug` — is
//! held at `info` whatever `RUST_LOG` says (`process::init_tracing`).

use serde_json::{Map, Value};
use std::io::Write;
use tracing::{
    field::{Field, Visit},
    span::{Attributes, Id, Record},
    Event, Subscriber,
};
use tracing_subscriber::{layer::Context, registry::LookupSpan, Layer};

/// `OP_LOG_FORMAT`: `text` (default) or `json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    pub fn from_env() -> Result<LogFormat, String> {
        match crate::env::trimmed("OP_LOG_FORMAT").as_deref() {
            None | Some("text") => Ok(LogFormat::Text),
            Some("json") => Ok(LogFormat::Json),
            Some(other) => Err(format!("OP_LOG_FORMAT must be text or json, not `{other}`")),
        }
    }
}

/// The `msg` of the one line each request ends with.
pub const REQUEST: &str = "request";
/// The fields every request line has (null when unknown, e.g. `tenant` on `/platform`).
const REQUEST_FIELDS: &[&str] = &["request_id", "tenant", "route", "status", "latency_ms"];

/// The JSON-lines layer (stderr).
pub struct JsonLines;

/// A span's fields, kept in its extensions for the events inside it.
struct SpanFields(Map<String, Value>);

struct Fields<'a>(&'a mut Map<String, Value>);

impl Fields<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        let key = match field.name() {
            "message" => "msg",
            name => name,
        };
        self.0.insert(key.to_string(), value);
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, Value::from(format!("{value:?}")));
    }
}

impl<S> Layer<S> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Map::new();
        attrs.record(&mut Fields(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(f) = span.extensions_mut().get_mut::<SpanFields>() {
                values.record(&mut Fields(&mut f.0));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "ts".into(),
            Value::from(
                chrono::Utc::now()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                    .to_string(),
            ),
        );
        line.insert(
            "level".into(),
            Value::from(meta.level().as_str().to_ascii_lowercase()),
        );
        line.insert("msg".into(), Value::from(""));
        line.insert("target".into(), Value::from(meta.target()));
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(f) = span.extensions().get::<SpanFields>() {
                    for (k, v) in &f.0 {
                        line.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        event.record(&mut Fields(&mut line));
        if line.get("msg").and_then(Value::as_str) == Some(REQUEST) {
            for key in REQUEST_FIELDS {
                line.entry(*key).or_insert(Value::Null);
            }
        }
        let mut text = Value::Object(line).to_string();
        text.push('\n');
        // One write per line: lines of concurrent tasks never interleave.
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::prelude::*;

    #[test]
    fn format_is_text_or_json() {
        // Only this test sets the variable.
        std::env::set_var("OP_LOG_FORMAT", "json");
        assert_eq!(LogFormat::from_env(), Ok(LogFormat::Json));
        std::env::set_var("OP_LOG_FORMAT", "yaml");
        assert!(LogFormat::from_env().unwrap_err().contains("OP_LOG_FORMAT"));
        std::env::remove_var("OP_LOG_FORMAT");
        assert_eq!(LogFormat::from_env(), Ok(LogFormat::Text));
    }

    #[test]
    fn json_lines_do_not_panic_with_spans_and_records() {
        let subscriber = tracing_subscriber::registry().with(JsonLines);
        tracing::subscriber::with_default(subscriber, || {
            let span =
                tracing::info_span!("request", request_id = "r1", route = tracing::field::Empty);
            let _g = span.enter();
            span.record("route", "/partners/:id");
            tracing::info!(status = 200u64, latency_ms = 1.5, "request");
        });
    }
}
