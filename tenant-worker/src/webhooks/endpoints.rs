//! Webhook endpoint management: create (the signing secret is shown once and stored only
//! sealed under `OP_SECRETS_KEY`, bound to the endpoint id), list, read, change, deactivate
//! or delete, and rotate the secret (the previous one keeps signing for 24 hours).
//!
//! Every URL is checked by [`ssrf::check`] when it is set; the delivery pipeline checks the
//! resolved addresses again when it sends. The delivery code reads endpoint rows itself
//! ([`COLUMNS`], [`to_json`] are shared with the delivery log).

use super::{signing, ssrf, subscriptions, EVENT_TYPES};
use crate::{
    context::{truncate, Ctx, Reply, Timestamp},
    error::{ApiError, ErrorCode},
    openapi::Op,
    pagination::{newest_first, MAX_LIMIT},
    secrets::SecretsKey,
};
use chrono::{DateTime, Utc};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};
use tokio_postgres::{types::ToSql, Row};

/// The endpoint columns a client may see (never the sealed secrets).
pub const COLUMNS: &str =
    "id, url, events, label, active, failing_since, disabled_reason, created_at, updated_at";

/// How long a rotated-out secret keeps signing alongside the new one.
pub const PREVIOUS_SECRET_HOURS: i64 = 24;

const MAX_LABEL_CHARS: usize = 200;

/// A webhook endpoint, as the API shows it (never its secret).
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointView {
    id: String,
    /// Where deliveries are POSTed.
    url: String,
    /// The event types it receives (`*`: all of them).
    #[schemars(schema_with = "subscriptions_schema")]
    events: Vec<String>,
    label: Option<String>,
    /// Inactive endpoints receive nothing: deactivated (`DELETE`, `PATCH active:false`) or
    /// disabled by the delivery pipeline (see `disabledReason`).
    active: bool,
    /// Why the delivery pipeline disabled the endpoint (the receiver answered `410`, or it
    /// failed for 5 days); cleared by `PATCH {"active": true}`.
    disabled_reason: Option<String>,
    /// Since when deliveries fail without a success in between; null while healthy.
    failing_since: Option<Timestamp>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl EndpointView {
    /// The view of a row with [`COLUMNS`].
    pub fn from_row(row: &Row) -> EndpointView {
        EndpointView {
            id: row.get("id"),
            url: row.get("url"),
            events: row.get("events"),
            label: row.get("label"),
            active: row.get("active"),
            disabled_reason: row.get("disabled_reason"),
            failing_since: row
                .get::<_, Option<DateTime<Utc>>>("failing_since")
                .map(Timestamp),
            created_at: Timestamp(row.get("created_at")),
            updated_at: Timestamp(row.get("updated_at")),
        }
    }
}

pub fn to_json(row: &Row) -> Value {
    serde_json::to_value(EndpointView::from_row(row)).unwrap_or_default()
}

/// The event types an endpoint may subscribe to: [`EVENT_TYPES`] and `*`, at least one.
fn subscriptions_schema(_: &mut SchemaGenerator) -> Schema {
    let mut types: Vec<&str> = vec!["*"];
    types.extend(EVENT_TYPES);
    json_schema!({
        "type": "array",
        "minItems": 1,
        "items": {"type": "string", "enum": types},
    })
}

/// The label rule of [`validate_label`]: at most 200 characters, no control characters.
fn label_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": ["string", "null"],
        "maxLength": MAX_LABEL_CHARS,
        "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$",
    })
}

/// The URL rule of [`ssrf::check`] that a schema can say: an absolute http(s) URL of at
/// most 2048 characters, without credentials or control characters.
fn url_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "format": "uri",
        "maxLength": 2048,
        "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$",
    })
}

/// `POST /webhooks` answers the endpoint and its signing secret, shown this once.
#[derive(Serialize, JsonSchema)]
struct CreatedEndpoint {
    endpoint: EndpointView,
    /// `whsec_` + standard base64 of 24 random bytes (Standard Webhooks): deliveries are
    /// signed with it. Shown only here (and by `rotate-secret`).
    #[schemars(regex(pattern = r"^whsec_[A-Za-z0-9+/]{32}$"))]
    secret: String,
}

/// A page of endpoints: the list under `data`, `webhooks` and `endpoints` (the original's
/// names). What [`list`] builds from [`newest_first`]'s page (its items are [`EndpointView`]s).
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct EndpointPage {
    data: Vec<EndpointView>,
    webhooks: Vec<EndpointView>,
    endpoints: Vec<EndpointView>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

/// `GET /webhooks/:id` answers the endpoint at the top level and under `endpoint`.
#[derive(Serialize, JsonSchema)]
struct GotEndpoint {
    #[serde(flatten)]
    top: EndpointView,
    endpoint: EndpointView,
}

/// `PATCH /webhooks/:id` answers the endpoint as it is now.
#[derive(Serialize, JsonSchema)]
struct UpdatedEndpoint {
    endpoint: EndpointView,
}

#[derive(Serialize, JsonSchema)]
struct DeletedEndpoint {
    ok: bool,
    /// `true` for `?hard=1` (the endpoint and its delivery log are gone); `false`: deactivated.
    deleted: bool,
    /// The endpoint as it was deleted, or as it is now (inactive).
    endpoint: EndpointView,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct RotatedSecret {
    /// The new signing secret, shown this once.
    #[schemars(regex(pattern = r"^whsec_[A-Za-z0-9+/]{32}$"))]
    secret: String,
    /// Until then deliveries are signed with the previous secret too (24 hours).
    previous_secret_expires_at: Timestamp,
    endpoint: EndpointView,
}

pub fn create_doc() -> Op {
    Op::new("Create a webhook endpoint")
        .describe("The URL must be http(s), without credentials, and (unless `OP_WEBHOOK_ALLOW_PRIVATE=1`) resolve only to public addresses. The signing secret is in this answer only.")
        .body::<CreateEndpoint>()
        .ok::<CreatedEndpoint>(201, "The endpoint and its signing secret.")
        .errors(400, &[ErrorCode::UrlNotAllowed])
}

pub fn list_doc() -> Op {
    Op::new("List webhook endpoints")
        .query(
            "limit",
            "Items per page (default 50).",
            json!({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
        )
        .query(
            "cursor",
            "The `nextCursor` of the previous page.",
            json!({"type": "string"}),
        )
        .ok::<EndpointPage>(200, "A page, newest first.")
        .errors(400, &[ErrorCode::InvalidQuery, ErrorCode::InvalidCursor])
}

pub fn get_doc() -> Op {
    Op::new("Get a webhook endpoint")
        .ok::<GotEndpoint>(200, "The endpoint.")
        .errors(404, &[ErrorCode::NotFound])
}

pub fn update_doc() -> Op {
    Op::new("Change a webhook endpoint")
        .describe("Absent fields stay as they are. `active: true` also clears the failure state (`failingSince`, `disabledReason`).")
        .optional_body::<UpdateEndpoint>()
        .ok::<UpdatedEndpoint>(200, "The endpoint.")
        .errors(400, &[ErrorCode::UrlNotAllowed])
        .errors(404, &[ErrorCode::NotFound])
}

pub fn delete_doc() -> Op {
    Op::new("Deactivate or delete a webhook endpoint")
        .describe("Deactivates: the endpoint stays readable with `active: false` and receives nothing. `?hard=1` deletes it with its delivery log.")
        .query(
            "hard",
            "`1` (or `true`) deletes for good; `0`, `false` or empty deactivates.",
            json!({"type": "string", "enum": ["1", "true", "0", "false", ""]}),
        )
        .ok::<DeletedEndpoint>(200, "The endpoint, deactivated or deleted.")
        .errors(400, &[ErrorCode::InvalidQuery])
        .errors(404, &[ErrorCode::NotFound])
}

pub fn rotate_secret_doc() -> Op {
    Op::new("Rotate a webhook endpoint's signing secret")
        .describe("The current secret becomes the previous one, which keeps signing deliveries alongside the new one for 24 hours.")
        .ok::<RotatedSecret>(200, "The new secret, shown this once.")
        .errors(404, &[ErrorCode::NotFound])
}

fn secrets_key(ctx: &Ctx) -> Result<&SecretsKey, ApiError> {
    ctx.app.secrets.as_ref().ok_or_else(|| {
        ApiError::new(
            503,
            ErrorCode::SecretsKeyMissing,
            "OP_SECRETS_KEY is not configured, so webhook secrets cannot be stored",
        )
    })
}

/// Known event types (or `*`), at least one, duplicates dropped keeping the first.
pub fn validate_events(raw: &[String]) -> Result<Vec<String>, ApiError> {
    if raw.is_empty() {
        return Err(
            ApiError::invalid_body("events must name at least one event type or \"*\"")
                .with("field", "events"),
        );
    }
    let mut out: Vec<String> = Vec::new();
    for e in raw {
        if e != "*" && !EVENT_TYPES.contains(&e.as_str()) {
            return Err(ApiError::invalid_body(format!(
                "unknown event type `{}`; known types: {}, or \"*\" for all",
                truncate(e, 64),
                EVENT_TYPES.join(", ")
            ))
            .with("field", "events"));
        }
        if !out.contains(e) {
            out.push(e.clone());
        }
    }
    Ok(out)
}

/// Trimmed; empty means no label.
fn validate_label(raw: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let l = raw.trim();
    if l.chars().count() > MAX_LABEL_CHARS || l.chars().any(char::is_control) {
        return Err(ApiError::invalid_body(format!(
            "label must be at most {MAX_LABEL_CHARS} printable characters"
        ))
        .with("field", "label"));
    }
    Ok((!l.is_empty()).then(|| l.to_string()))
}

/// Shape and address checks; the stored URL is what the client sent, trimmed.
async fn validate_url(ctx: &Ctx, raw: &str) -> Result<String, ApiError> {
    ssrf::check(raw, ctx.app.config.webhook_allow_private).await?;
    Ok(raw.trim().to_string())
}

/// Tells a present `null` (`Some(None)`) from an absent field (`None`).
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateEndpoint {
    /// Where to POST deliveries: an absolute http(s) URL without credentials.
    #[schemars(schema_with = "url_schema")]
    url: String,
    /// The event types to receive (`*`: all); duplicates are dropped.
    #[schemars(schema_with = "subscriptions_schema")]
    events: Vec<String>,
    /// At most 200 characters (trimmed; empty means none).
    #[serde(default)]
    #[schemars(schema_with = "label_schema")]
    label: Option<String>,
}

/// `POST /webhooks {url, events, label?}` → `201 {"endpoint", "secret"}`
pub async fn create(ctx: Ctx) -> Result<Reply, ApiError> {
    let body: CreateEndpoint = ctx.json()?;
    let events = validate_events(&body.events)?;
    let label = validate_label(body.label)?;
    let key = secrets_key(&ctx)?;
    let url = validate_url(&ctx, &body.url).await?;
    let id = ulid::Ulid::new().to_string();
    let secret = signing::new_secret();
    let sealed = key.seal(&secret, &id);

    let tx = ctx.tx().await?;
    subscriptions::lock_for_change(&tx, &ctx.tenant()?.schema).await?;
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO webhook_endpoints (id, url, events, label, secret_sealed)
                 VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
            ),
            &[&id, &url, &events, &label, &sealed],
        )
        .await?;
    tx.commit().await?;
    Ok(Reply::typed(
        201,
        &CreatedEndpoint {
            endpoint: EndpointView::from_row(&row),
            secret,
        },
    ))
}

/// `GET /webhooks?limit=&cursor=`
pub async fn list(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut body = newest_first(&ctx, "webhook_endpoints", COLUMNS, "webhooks", to_json).await?;
    body["endpoints"] = body["data"].clone();
    Ok(Reply::ok(body))
}

/// `GET /webhooks/:id` → the endpoint under `endpoint` and at the top level.
pub async fn get(ctx: Ctx) -> Result<Reply, ApiError> {
    let row = ctx
        .by_id("webhook_endpoints", COLUMNS, "webhook endpoint")
        .await?;
    Ok(Reply::typed(
        200,
        &GotEndpoint {
            top: EndpointView::from_row(&row),
            endpoint: EndpointView::from_row(&row),
        },
    ))
}

/// Absent leaves a field as it is; `null` is refused where the field cannot be empty.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct UpdateEndpoint {
    /// A new URL (checked as on create).
    #[serde(default, deserialize_with = "present")]
    #[schemars(schema_with = "url_schema")]
    url: Option<String>,
    /// The new subscriptions (replacing the old).
    #[serde(default, deserialize_with = "present")]
    #[schemars(schema_with = "subscriptions_schema")]
    events: Option<Vec<String>>,
    /// `null` (or empty) clears the label.
    #[serde(default, deserialize_with = "present")]
    #[schemars(schema_with = "label_schema")]
    label: Option<Option<String>>,
    /// `false` deactivates; `true` reactivates and clears the failure state.
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "bool")]
    active: Option<bool>,
}

/// `PATCH /webhooks/:id {url?, events?, label?, active?}`; `active: true` also clears the
/// failure state (`failingSince`, `disabledReason`).
pub async fn update(ctx: Ctx) -> Result<Reply, ApiError> {
    let id = ctx.id("webhook endpoint")?;
    let body: UpdateEndpoint = ctx.json()?;
    let events = body.events.as_deref().map(validate_events).transpose()?;
    let label = body.label.map(validate_label).transpose()?;
    let url = match &body.url {
        Some(u) => Some(validate_url(&ctx, u).await?),
        None => None,
    };

    let mut sets: Vec<String> = Vec::new();
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(id.clone())];
    let mut set = |column: &str, value: Box<dyn ToSql + Sync + Send>| {
        params.push(value);
        sets.push(format!("{column} = ${}", params.len()));
    };
    if let Some(v) = url {
        set("url", Box::new(v));
    }
    if let Some(v) = events {
        set("events", Box::new(v));
    }
    if let Some(v) = label {
        set("label", Box::new(v));
    }
    if let Some(v) = body.active {
        set("active", Box::new(v));
        if v {
            sets.push("failing_since = NULL".into());
            sets.push("disabled_reason = NULL".into());
        }
    }
    let sql = if sets.is_empty() {
        // Nothing to change: answer the endpoint as it is, without touching updated_at.
        format!("SELECT {COLUMNS} FROM webhook_endpoints WHERE id = $1")
    } else {
        format!(
            "UPDATE webhook_endpoints SET {}, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}",
            sets.join(", ")
        )
    };
    let refs: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();

    // A change may subscribe the endpoint to more (events, reactivation): it waits for the
    // writers that proved nobody listens (webhooks::subscriptions).
    let tx = ctx.tx().await?;
    subscriptions::lock_for_change(&tx, &ctx.tenant()?.schema).await?;
    let row = tx.query_opt(sql.as_str(), &refs).await?;
    tx.commit().await?;
    let row = row.ok_or_else(|| ApiError::no_such("webhook endpoint", &id))?;
    Ok(Reply::typed(
        200,
        &UpdatedEndpoint {
            endpoint: EndpointView::from_row(&row),
        },
    ))
}

/// `DELETE /webhooks/:id`: deactivates (the endpoint stays readable and receives nothing);
/// `?hard=1` removes it with its delivery log.
pub async fn delete(ctx: Ctx) -> Result<Reply, ApiError> {
    let id = ctx.id("webhook endpoint")?;
    let hard = match ctx.query_value("hard").as_deref() {
        None | Some("" | "0" | "false") => false,
        Some("1" | "true") => true,
        Some(_) => return Err(ApiError::invalid_query("hard must be 1 or 0")),
    };
    let row = if hard {
        // Deliveries first, then the endpoint: the order in which the delivery pipeline
        // locks them when it records an attempt. (Letting the cascade delete them would lock
        // the endpoint first, and a concurrent attempt could deadlock with this.)
        let tx = ctx.tx().await?;
        tx.execute(
            "DELETE FROM webhook_deliveries WHERE endpoint_id = $1",
            &[&id],
        )
        .await?;
        let sql = format!("DELETE FROM webhook_endpoints WHERE id = $1 RETURNING {COLUMNS}");
        let row = tx.query_opt(sql.as_str(), &[&id]).await?;
        tx.commit().await?;
        row
    } else {
        // The time is bound, not `now()` inside the CASE (CITUS.md rule 16).
        let sql = format!(
            "UPDATE webhook_endpoints
                SET active = false,
                    updated_at = CASE WHEN active THEN $2 ELSE updated_at END
              WHERE id = $1 RETURNING {COLUMNS}"
        );
        let tx = ctx.tx().await?;
        let row = tx.query_opt(&sql, &[&id, &chrono::Utc::now()]).await?;
        tx.commit().await?;
        row
    };
    let row = row.ok_or_else(|| ApiError::no_such("webhook endpoint", &id))?;
    Ok(Reply::typed(
        200,
        &DeletedEndpoint {
            ok: true,
            deleted: hard,
            endpoint: EndpointView::from_row(&row),
        },
    ))
}

/// `POST /webhooks/:id/rotate-secret` → `{"secret", "previousSecretExpiresAt"}`: the current
/// secret becomes the previous one, which keeps signing for [`PREVIOUS_SECRET_HOURS`].
pub async fn rotate_secret(ctx: Ctx) -> Result<Reply, ApiError> {
    let id = ctx.id("webhook endpoint")?;
    let key = secrets_key(&ctx)?;
    let secret = signing::new_secret();
    let sealed = key.seal(&secret, &id);

    let tx = ctx.tx().await?;
    // SET expressions see the row as it was: the old secret moves to previous.
    let row = tx
        .query_opt(
            &format!(
                "UPDATE webhook_endpoints
                    SET previous_secret_sealed = secret_sealed,
                        previous_secret_until = now() + interval '{PREVIOUS_SECRET_HOURS} hours',
                        secret_sealed = $2,
                        updated_at = now()
                  WHERE id = $1 RETURNING previous_secret_until, {COLUMNS}"
            ),
            &[&id, &sealed],
        )
        .await?;
    tx.commit().await?;
    let row = row.ok_or_else(|| ApiError::no_such("webhook endpoint", &id))?;
    Ok(Reply::typed(
        200,
        &RotatedSecret {
            secret,
            previous_secret_expires_at: Timestamp(row.get("previous_secret_until")),
            endpoint: EndpointView::from_row(&row),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn events_are_known_non_empty_and_deduplicated_in_order() {
        assert_eq!(
            validate_events(&s(&["partner.created", "*", "partner.created"])).unwrap(),
            s(&["partner.created", "*"])
        );
        assert_eq!(validate_events(&s(&["*"])).unwrap(), s(&["*"]));
        for bad in [
            &[][..],
            &["nope"][..],
            &["webhook.test"][..],
            &["partner.created", "Partner.Created"][..],
        ] {
            let e = validate_events(&s(bad)).unwrap_err();
            assert_eq!((e.status, e.code), (400, ErrorCode::InvalidBody), "{bad:?}");
        }
    }

    #[test]
    fn labels_are_trimmed_bounded_and_printable() {
        assert_eq!(validate_label(None).unwrap(), None);
        assert_eq!(validate_label(Some("  ".into())).unwrap(), None);
        assert_eq!(
            validate_label(Some(" prod ".into())).unwrap().as_deref(),
            Some("prod")
        );
        assert!(validate_label(Some("a\u{0}b".into())).is_err());
        assert!(validate_label(Some("x".repeat(201))).is_err());
    }

    #[test]
    fn patch_tells_null_from_absent() {
        let b: UpdateEndpoint = serde_json::from_str(r#"{"label": null}"#).unwrap();
        assert_eq!(b.label, Some(None));
        let b: UpdateEndpoint = serde_json::from_str("{}").unwrap();
        assert_eq!(b.label, None);
        assert!(serde_json::from_str::<UpdateEndpoint>(r#"{"secret": "x"}"#).is_err());
        for null in ["url", "events", "active"] {
            assert!(
                serde_json::from_str::<UpdateEndpoint>(&format!(r#"{{"{null}": null}}"#)).is_err(),
                "{null}"
            );
        }
    }
}
