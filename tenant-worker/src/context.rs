//! What a handler gets ([`Ctx`]: the request, its tenant, its principal) and what it
//! returns ([`Reply`]). Handlers stay thin: parse, call, map errors.

use crate::sql::{Schema, Tx};
use crate::{access::Principal, error::ApiError, App};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::{future::Future, pin::Pin, sync::Arc};
use tokio_postgres::{types::ToSql, Row};

/// What every route's handler is: the request in, the answer (or error) out. Boxed so the
/// route table can hold handlers of different futures in one list.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Reply, ApiError>> + Send>>;
pub type Handler = fn(Ctx) -> HandlerFuture;

/// The tenant a request belongs to, taken from the envelope the gateway filled.
#[derive(Debug, Clone)]
pub struct TenantRef {
    pub id: String,
    pub slug: String,
    /// Derived from `id` (validated as a ULID), never from user input.
    pub schema: Schema,
}

pub struct Ctx {
    pub app: Arc<App>,
    pub request_id: String,
    pub tenant: Option<TenantRef>,
    pub principal: Principal,
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub params: Vec<(&'static str, String)>,
    /// The client's address as the gateway determined it (peer, or the nearest untrusted
    /// `X-Forwarded-For` hop behind a trusted proxy). Empty if the gateway did not say.
    pub client_ip: String,
}

impl Ctx {
    /// A path parameter named in the route pattern (`:id` → `param("id")`).
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn tenant(&self) -> Result<&TenantRef, ApiError> {
        self.tenant.as_ref().ok_or_else(ApiError::internal)
    }

    /// Parses the JSON body. An empty body is treated as `{}` when `T` allows it.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let body: &[u8] = if self.body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &self.body
        };
        if std::str::from_utf8(body).is_err() {
            return Err(ApiError::invalid_body("body is not valid UTF-8"));
        }
        if has_nul_escape(body) {
            return Err(ApiError::invalid_body(
                "strings may not contain the NUL character (\\u0000)",
            ));
        }
        serde_json::from_slice(body).map_err(|e| ApiError::invalid_body(e.to_string()))
    }

    /// The decoded query string as pairs.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .collect()
    }

    pub fn query_value(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The `:id` path parameter, which names a `what` (a ULID, or `404 no <what> with id …`).
    pub fn id(&self, what: &str) -> Result<String, ApiError> {
        parse_id(self.param("id"), what)
    }

    /// A pooled connection, for statements that do not touch a tenant's tables (the
    /// control plane). Tenant tables are reached through [`Ctx::tx`].
    pub async fn conn(&self) -> Result<deadpool_postgres::Object, ApiError> {
        Ok(self.app.pool.get().await?)
    }

    /// A transaction in this tenant's schema ([`Tx`]: it owns its connection and rolls
    /// back unless committed).
    pub async fn tx(&self) -> Result<Tx, ApiError> {
        Tx::begin(&self.app.pool, &self.tenant()?.schema).await
    }

    /// This tenant's schema, for statements that name their tables in full.
    pub fn schema(&self) -> Result<&Schema, ApiError> {
        Ok(&self.tenant()?.schema)
    }

    /// One read-only statement in one round trip (prepared, no transaction): its tables
    /// are named with [`Ctx::schema`] (`FROM {schema}.partners`).
    pub async fn read(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, ApiError> {
        crate::sql::read(&self.app.pool, sql, params).await
    }

    /// [`Ctx::read`] for at most one row.
    pub async fn read_one(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, ApiError> {
        Ok(self.read(sql, params).await?.into_iter().next())
    }

    /// The row of `table` whose id is the `:id` path parameter (`what` names it in the `404`:
    /// "no campaign with id …"). `table` and `columns` are static names of the caller.
    pub async fn by_id(&self, table: &str, columns: &str, what: &str) -> Result<Row, ApiError> {
        let id = self.id(what)?;
        let sql = format!(
            "SELECT {columns} FROM {}.{table} WHERE id = $1",
            self.schema()?
        );
        self.read_one(&sql, &[&id])
            .await?
            .ok_or_else(|| ApiError::no_such(what, &id))
    }
}

impl TenantRef {
    pub fn from_proto(t: &op_proto::v1::Tenant) -> Option<TenantRef> {
        Some(TenantRef {
            schema: Schema::of_tenant(&t.id)?,
            id: t.id.clone(),
            slug: t.slug.clone(),
        })
    }
}

/// An HTTP answer plus the gateway cache entries it makes stale.
#[derive(Debug, Default)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub invalidate_tenant_slugs: Vec<String>,
    pub invalidate_key_ids: Vec<String>,
    pub invalidate_session_ids: Vec<String>,
}

impl Reply {
    pub fn json(status: u16, body: &Value) -> Reply {
        Reply::json_text(status, serde_json::to_vec(body).unwrap_or_default())
    }

    /// A reply whose body is already JSON text.
    pub fn json_text(status: u16, body: Vec<u8>) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body,
            ..Default::default()
        }
    }

    pub fn ok(body: Value) -> Reply {
        Reply::json(200, &body)
    }

    /// A JSON answer from a typed response struct (the one its route's documentation names).
    pub fn typed(status: u16, body: &impl serde::Serialize) -> Reply {
        Reply::json_text(status, serde_json::to_vec(body).unwrap_or_default())
    }

    pub fn created(body: Value) -> Reply {
        Reply::json(201, &body)
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn invalidate_keys(mut self, ids: impl IntoIterator<Item = String>) -> Reply {
        self.invalidate_key_ids.extend(ids);
        self
    }

    pub fn invalidate_sessions(mut self, ids: impl IntoIterator<Item = String>) -> Reply {
        self.invalidate_session_ids.extend(ids);
        self
    }

    pub fn invalidate_tenant(mut self, slug: &str) -> Reply {
        self.invalidate_tenant_slugs.push(slug.to_string());
        self
    }
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Reply {
        Reply::json(e.status, &e.body())
    }
}

/// Whether a JSON text holds a `\u0000` escape. PostgreSQL's `text` and `jsonb` cannot hold
/// NUL, so a body carrying one is refused once, here, instead of failing as a database error
/// in whichever statement stores it. (A raw NUL byte is not valid JSON to begin with.)
fn has_nul_escape(body: &[u8]) -> bool {
    let mut backslashes = 0usize;
    for (i, &b) in body.iter().enumerate() {
        match b {
            b'\\' => {
                backslashes += 1;
                continue;
            }
            b'u' if backslashes % 2 == 1 && body[i + 1..].starts_with(b"0000") => return true,
            _ => {}
        }
        backslashes = 0;
    }
    false
}

/// `{"ok": true}`: the answer of an action that has nothing else to say.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Acknowledged {
    pub ok: bool,
}

/// A time as the API writes it, `2026-11-24T10:00:00.000Z` (RFC 3339, milliseconds, UTC):
/// the field type of the typed response structs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(pub DateTime<Utc>);

impl From<DateTime<Utc>> for Timestamp {
    fn from(t: DateTime<Utc>) -> Timestamp {
        Timestamp(t)
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

impl schemars::JsonSchema for Timestamp {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "format": "date-time"})
    }
}

/// `2026-11-24T10:00:00.000Z`
pub fn ts(t: DateTime<Utc>) -> Value {
    Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// Path ids are ULIDs; anything else cannot name a resource, so it is a plain 404.
pub fn parse_id(raw: &str, what: &str) -> Result<String, ApiError> {
    // A ULID's first character is at most `7` (128 bits); the ulid crate would wrap a larger
    // one onto another id, so that two spellings would name one resource.
    match ulid::Ulid::from_string(raw) {
        Ok(u) if raw.len() == 26 && raw.as_bytes()[0] <= b'7' => Ok(u.to_string()),
        _ => Err(ApiError::not_found(format!(
            "no {what} with id `{}`",
            truncate(raw, 64)
        ))),
    }
}

/// Shortens user input before echoing it in an error detail.
pub fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::has_nul_escape;

    #[test]
    fn ids_are_ulids_in_either_case_and_never_wrap() {
        let id = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
        assert_eq!(super::parse_id(id, "x").unwrap(), id);
        assert_eq!(super::parse_id(&id.to_lowercase(), "x").unwrap(), id);
        assert!(super::parse_id("Z1ARZ3NDEKTSV4RRFFQ69G5FAV", "x").is_err());
        assert!(super::parse_id("81ARZ3NDEKTSV4RRFFQ69G5FAV", "x").is_err());
        assert!(super::parse_id("01ARZ3NDEKTSV4RRFFQ69G5FA", "x").is_err());
    }

    #[test]
    fn nul_escapes_are_found_and_escaped_backslashes_are_not() {
        assert!(has_nul_escape(br#"{"name":"a\u0000b"}"#));
        assert!(has_nul_escape(br#"{"a\u0000":1}"#));
        assert!(has_nul_escape(br#"{"name":"\\\u0000"}"#));
        // `\\` is a backslash: what follows is plain text.
        assert!(!has_nul_escape(br#"{"name":"\\u0000"}"#));
        assert!(!has_nul_escape(br#"{"name":"\u0001 u0000"}"#));
    }
}
