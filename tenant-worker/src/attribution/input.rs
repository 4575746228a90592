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
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct EventBody {
    user_id: Value,
    #[serde(rename = "type")]
    kind: Value,
    value: Option<Value>,
    currency: Option<Value>,
    metadata: Option<Value>,
    ts: Option<Value>,
    event_id: Option<Value>,
    external_event_id: Option<Value>,
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

/// An event time: RFC 3339 string or epoch milliseconds.
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
