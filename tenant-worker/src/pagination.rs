//! Cursor pagination shared by every list route: newest first, ties broken by id.
//!
//! The cursor is the `(created_at, id)` of the last row of the previous page, base64url
//! encoded. Keyset (not offset) paging means rows inserted while a client pages through a
//! list never cause duplicates or gaps among the rows that existed when it started.

use crate::{
    context::Ctx,
    error::{ApiError, ErrorCode},
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

#[derive(Debug, Clone, PartialEq)]
pub struct PageRequest {
    pub limit: i64,
    pub after: Option<(DateTime<Utc>, String)>,
}

impl PageRequest {
    pub fn from_ctx(ctx: &Ctx) -> Result<PageRequest, ApiError> {
        let limit = match ctx.query_value("limit") {
            None => DEFAULT_LIMIT,
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(ApiError::invalid_query(format!(
                        "limit must be an integer from 1 to {MAX_LIMIT}"
                    )))
                }
            },
        };
        let after = match ctx.query_value("cursor") {
            None => None,
            Some(c) if c.is_empty() => None,
            Some(c) => Some(decode_cursor(&c).ok_or_else(|| {
                ApiError::new(
                    400,
                    ErrorCode::InvalidCursor,
                    "cursor is not one this API issued",
                )
            })?),
        };
        Ok(PageRequest { limit, after })
    }

    /// Rows to fetch: one more than the page, to know whether another page follows.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }
}

pub fn encode_cursor(created_at: DateTime<Utc>, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1.{}.{id}", created_at.timestamp_micros()))
}

/// 9999-12-31T23:59:59.999999Z in microseconds since the epoch.
const MAX_CURSOR_MICROS: i64 = 253_402_300_799_999_999;

pub fn decode_cursor(raw: &str) -> Option<(DateTime<Utc>, String)> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.splitn(3, '.');
    if parts.next()? != "v1" {
        return None;
    }
    let micros: i64 = parts.next()?.parse().ok()?;
    // A position is a row's creation time: 1970 to 9999. Outside that a forged cursor could
    // name a time PostgreSQL cannot hold (before 4713 BC), a database error instead of 400.
    if !(0..=MAX_CURSOR_MICROS).contains(&micros) {
        return None;
    }
    let id = parts.next()?;
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return None;
    }
    Some((DateTime::from_timestamp_micros(micros)?, id.to_string()))
}

/// The `GET` of an unfiltered list, newest first: reads the page the query asks for and
/// shapes it with [`page_body`]. `table` and `columns` are static names from the calling
/// module (never input); the cursor position is a parameter.
pub async fn newest_first(
    ctx: &Ctx,
    table: &str,
    columns: &str,
    alias: &str,
    to_json: fn(&tokio_postgres::Row) -> Value,
) -> Result<Value, ApiError> {
    let page = PageRequest::from_ctx(ctx)?;
    let (after_t, after_id) = page.after.clone().unzip();
    let rows = ctx
        .read(
            &format!(
                "SELECT {columns} FROM {}.{table}
                  WHERE ($1::timestamptz IS NULL OR (created_at, id) < ($1, $2::text))
                  ORDER BY created_at DESC, id DESC LIMIT $3",
                ctx.schema()?
            ),
            &[&after_t, &after_id, &page.fetch()],
        )
        .await?;
    Ok(rows_body(&page, alias, &rows, to_json))
}

/// [`page_body`] of rows that have `created_at` and `id` columns, each shaped by `to_json`.
pub fn rows_body(
    req: &PageRequest,
    alias: &str,
    rows: &[tokio_postgres::Row],
    to_json: fn(&tokio_postgres::Row) -> Value,
) -> Value {
    let items = rows
        .iter()
        .map(|r| (r.get("created_at"), r.get("id"), to_json(r)))
        .collect();
    page_body(req, alias, items)
}

/// Builds `{"data": [...], "<alias>": [...], "nextCursor": ...}` from `limit + 1` fetched
/// items, each with its `(created_at, id)` for the cursor.
pub fn page_body(
    req: &PageRequest,
    alias: &str,
    mut items: Vec<(DateTime<Utc>, String, Value)>,
) -> Value {
    let more = items.len() as i64 > req.limit;
    items.truncate(req.limit as usize);
    let next = if more {
        items
            .last()
            .map(|(t, id, _)| Value::String(encode_cursor(*t, id)))
            .unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let data: Vec<Value> = items.into_iter().map(|(_, _, v)| v).collect();
    json!({ "data": data.clone(), alias: data, "nextCursor": next })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_outside_the_years_rows_are_made_in_are_refused() {
        let forged =
            |micros: i64| URL_SAFE_NO_PAD.encode(format!("v1.{micros}.01ARZ3NDEKTSV4RRFFQ69G5FAV"));
        assert!(decode_cursor(&forged(-8_000_000_000_000_000_000)).is_none());
        assert!(decode_cursor(&forged(-1)).is_none());
        assert!(decode_cursor(&forged(MAX_CURSOR_MICROS + 1)).is_none());
        assert!(decode_cursor(&forged(MAX_CURSOR_MICROS)).is_some());
        assert!(decode_cursor(&forged(0)).is_some());
    }

    #[test]
    fn cursor_round_trips_and_rejects_tampering() {
        let t = DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap();
        let c = encode_cursor(t, "01JABCDEFGHJKMNPQRSTVWXYZ0");
        assert_eq!(
            decode_cursor(&c),
            Some((t, "01JABCDEFGHJKMNPQRSTVWXYZ0".to_string()))
        );
        assert_eq!(decode_cursor("not-a-cursor!"), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("v2.1.x")), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("v1.abc.x")), None);
        assert_eq!(
            decode_cursor(&URL_SAFE_NO_PAD.encode("v1.1.x'; drop")),
            None
        );
    }

    #[test]
    fn page_body_sets_next_cursor_only_when_more() {
        let req = PageRequest {
            limit: 2,
            after: None,
        };
        let t = Utc::now();
        let items = |n: usize| {
            (0..n)
                .map(|i| (t, format!("id{i}"), json!(i)))
                .collect::<Vec<_>>()
        };
        let b = page_body(&req, "things", items(3));
        assert_eq!(b["data"], json!([0, 1]));
        assert_eq!(b["things"], json!([0, 1]));
        assert_eq!(
            decode_cursor(b["nextCursor"].as_str().unwrap()).unwrap().1,
            "id1"
        );
        assert_eq!(
            page_body(&req, "things", items(2))["nextCursor"],
            Value::Null
        );
    }
}
