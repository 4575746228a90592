//! The body of `POST /attribution/events`, validated: [`EventInput`] and its parsers.
//!
//! Its own module because both paths of the endpoint take it — the group-committed ingest
//! ([`super::events`]) and refunds ([`super::refunds`]), which `events` hands refunds to —
//! and `rederive` reads times the same way ([`parse_ts`]). Parsing only: no I/O.

use super::plan::EventFacts;
use crate::{
    context::Ctx,
    error::{ApiError, ErrorCode},
    money::{parse_amount, Currency},
};
use chrono::{DateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// A conversion event (or a refund/chargeback of one).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(transform = refund_needs_refund_of)]
pub(super) struct EventBody {
    /// The merchant's id of the user (as `POST /attribution/identify` stitched it): a string
    /// of 1 to 256 characters without control characters (trimmed), or an integer.
    #[schemars(schema_with = "text_256")]
    user_id: Value,
    /// What happened (`sale`, `signup`, ...): 1 to 64 characters, or an integer. `refund`
    /// and `chargeback` take back the commissions of the event `metadata.refundOf` names.
    #[serde(rename = "type")]
    #[schemars(schema_with = "event_type")]
    kind: Value,
    /// The event's value in `currency`: a non-negative decimal (JSON number or string) of at
    /// most 10^15, with no more decimals than the currency's minor unit. A refund's value is
    /// the part of the refunded event's value it refunds (all that remains when left out).
    #[serde(default)]
    #[schemars(schema_with = "amount")]
    value: Option<Value>,
    /// ISO 4217 code (default `USD`); a refund with a `value` must use the refunded event's.
    #[serde(default)]
    #[schemars(schema_with = "currency")]
    currency: Option<Value>,
    /// Free-form data (a JSON object of at most 16 KiB, no NUL characters). A refund or
    /// chargeback names the refunded event's `eventId` in `refundOf`.
    #[schemars(with = "Option<Map<String, Value>>")]
    metadata: Option<Value>,
    /// When the event happened (default: now): RFC 3339 or epoch milliseconds.
    #[serde(default)]
    #[schemars(schema_with = "optional_time")]
    ts: Option<Value>,
    /// The merchant's id of the event (e.g. the invoice id), 1 to 256 characters or an
    /// integer: makes the call idempotent (the same `eventId` again answers the first
    /// result, `200`, and creates nothing).
    #[serde(default)]
    #[schemars(schema_with = "optional_text_256")]
    event_id: Option<Value>,
    /// The original API's name of `eventId` (used when `eventId` is absent or null).
    #[serde(default)]
    #[schemars(schema_with = "optional_text_256")]
    external_event_id: Option<Value>,
}

/// Characters no text field may hold: Unicode control characters (what `char::is_control`
/// tells), as a regular expression class body.
const CONTROL: &str = "\\u0000-\\u001f\\u007f-\\u009f";

/// A trimmed text of 1 to `max` characters without control characters, or an integer
/// (taken as its decimal text) — what [`text`] accepts.
pub(super) fn text_or_integer(max: usize) -> Value {
    json!({"anyOf": [
        {
            "type": "string",
            "minLength": 1,
            "maxLength": max,
            "pattern": format!("^[^{CONTROL}]*[^\\s{CONTROL}][^{CONTROL}]*$"),
        },
        {"type": "integer", "minimum": i64::MIN, "maximum": u64::MAX},
    ]})
}

fn with_null(mut v: Value) -> Schema {
    if let Some(any) = v.get_mut("anyOf").and_then(Value::as_array_mut) {
        any.push(json!({"type": "null"}));
    }
    Schema::try_from(v).expect("an object")
}

pub(super) fn text_256(_: &mut SchemaGenerator) -> Schema {
    Schema::try_from(text_or_integer(256)).expect("an object")
}

fn optional_text_256(_: &mut SchemaGenerator) -> Schema {
    with_null(text_or_integer(256))
}

fn event_type(_: &mut SchemaGenerator) -> Schema {
    Schema::try_from(text_or_integer(64)).expect("an object")
}

fn amount(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"anyOf": [
        {"type": "number", "minimum": 0, "maximum": 1_000_000_000_000_000u64},
        {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$", "maxLength": 40},
        {"type": "null"},
    ]})
}

fn currency(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"anyOf": [
        {"type": "string", "pattern": "^[A-Z]{3}$"},
        {"type": "null"},
    ]})
}

/// Epoch milliseconds of 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z: the years an
/// RFC 3339 time can name (and the database can store).
const MIN_MS: i64 = -62_167_219_200_000;
const MAX_MS: i64 = 253_402_300_799_999;

/// What [`parse_ts`] accepts: an RFC 3339 time or epoch milliseconds, or null.
pub(super) fn optional_time(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"anyOf": [
        {"type": "string", "format": "date-time"},
        {"type": "integer", "minimum": MIN_MS, "maximum": MAX_MS},
        {"type": "null"},
    ]})
}

/// A refund or chargeback names the event it refunds in `metadata.refundOf`.
fn refund_needs_refund_of(schema: &mut Schema) {
    schema.insert(
        "if".into(),
        json!({"properties": {"type": {"enum": ["refund", "chargeback"]}}, "required": ["type"]}),
    );
    schema.insert(
        "then".into(),
        json!({
            "required": ["metadata"],
            "properties": {"metadata": {
                "type": "object",
                "required": ["refundOf"],
                "properties": {"refundOf": text_or_integer(256)},
            }},
        }),
    );
}

/// A validated event.
pub struct EventInput {
    pub facts: EventFacts,
    pub metadata: Value,
    /// `metadata.refundOf` of a refund/chargeback.
    pub refund_of: Option<String>,
}

impl EventInput {
    pub fn is_refund(&self) -> bool {
        matches!(self.facts.kind.as_str(), "refund" | "chargeback")
    }
}

fn text(v: &Value, field: &str, max: usize) -> Result<String, ApiError> {
    let bad = || {
        ApiError::invalid_body(format!(
            "{field} must be a non-empty string of at most {max} characters"
        ))
        .with("field", field)
    };
    let s = match v {
        Value::String(s) => s.trim().to_string(),
        // Integer ids are common in merchants' systems; take them as their decimal text.
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        _ => return Err(bad()),
    };
    if s.is_empty() || s.chars().count() > max || s.chars().any(char::is_control) {
        return Err(bad());
    }
    Ok(s)
}

/// Whether a JSON value holds a NUL character in a string or key (PostgreSQL's `jsonb`
/// cannot store one).
fn holds_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(holds_nul),
        Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

/// An event time: RFC 3339 string or epoch milliseconds, in the years 0000 to 9999.
pub fn parse_ts(v: Option<&Value>, field: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    let bad = || {
        ApiError::invalid_body(format!(
            "{field} must be an ISO 8601 time or epoch milliseconds"
        ))
        .with("field", field)
    };
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s.trim())
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| bad()),
        Some(Value::Number(n)) => n
            .as_i64()
            .filter(|ms| (MIN_MS..=MAX_MS).contains(ms))
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            .map(Some)
            .ok_or_else(bad),
        Some(_) => Err(bad()),
    }
}

pub fn parse(ctx: &Ctx) -> Result<EventInput, ApiError> {
    let body: EventBody = ctx.json()?;
    let user_id = text(&body.user_id, "userId", 256)?;
    let kind = text(&body.kind, "type", 64)?;
    let currency = match &body.currency {
        None | Some(Value::Null) => Currency::parse("USD")?,
        Some(Value::String(c)) => Currency::parse(c.trim())?,
        Some(_) => {
            return Err(ApiError::new(
                400,
                ErrorCode::InvalidCurrency,
                "currency must be an ISO 4217 code string",
            ))
        }
    };
    let value: Option<Decimal> = match &body.value {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_amount(v, &currency, "value")?),
    };
    let metadata = match body.metadata {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => {
            if serde_json::to_vec(&v).map_or(0, |b| b.len()) > 16 * 1024 {
                return Err(ApiError::invalid_body("metadata is larger than 16 KiB")
                    .with("field", "metadata"));
            }
            if holds_nul(&v) {
                return Err(ApiError::invalid_body(
                    "metadata must not hold NUL characters (\\u0000)",
                )
                .with("field", "metadata"));
            }
            v
        }
        Some(_) => {
            return Err(
                ApiError::invalid_body("metadata must be a JSON object").with("field", "metadata")
            )
        }
    };
    let client_id = match (&body.event_id, &body.external_event_id) {
        (Some(v), _) if !v.is_null() => Some(text(v, "eventId", 256)?),
        (_, Some(v)) if !v.is_null() => Some(text(v, "externalEventId", 256)?),
        _ => None,
    };
    let ts = parse_ts(body.ts.as_ref(), "ts")?.unwrap_or_else(Utc::now);
    let id = format!("evt_{}", ulid::Ulid::new());
    let refund_of = if matches!(kind.as_str(), "refund" | "chargeback") {
        match metadata.get("refundOf") {
            Some(v) => Some(text(v, "metadata.refundOf", 256)?),
            None => {
                return Err(ApiError::invalid_body(format!(
                    "a {kind} needs metadata.refundOf (the refunded event's eventId)"
                ))
                .with("field", "metadata.refundOf"))
            }
        }
    } else {
        None
    };
    Ok(EventInput {
        facts: EventFacts {
            event_id: client_id.unwrap_or_else(|| id.clone()),
            id,
            user_id,
            kind,
            value,
            currency,
            ts,
        },
        metadata,
        refund_of,
    })
}
