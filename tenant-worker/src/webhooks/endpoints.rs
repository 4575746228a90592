//! Webhook endpoint management: create (the signing secret is shown once and stored only
//! sealed under `OP_SECRETS_KEY`, bound to the endpoint id), list, read, change, deactivate
//! or delete, and rotate the secret (the previous one keeps signing for 24 hours).
//!
//! Every URL is checked by [`ssrf::check`] when it is set; the delivery pipeline checks the
//! resolved addresses again when it sends. The delivery code reads endpoint rows itself
//! ([`COLUMNS`], [`to_json`] are shared with the delivery log).

use super::{signing, ssrf, subscriptions, EVENT_TYPES};
use crate::{
    context::{truncate, ts, ts_opt, Ctx, Reply},
    error::{ApiError, ErrorCode},
    pagination::newest_first,
    secrets::SecretsKey,
};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use tokio_postgres::{types::ToSql, Row};

/// The endpoint columns a client may see (never the sealed secrets).
pub const COLUMNS: &str =
    "id, url, events, label, active, failing_since, disabled_reason, created_at, updated_at";

/// How long a rotated-out secret keeps signing alongside the new one.
pub const PREVIOUS_SECRET_HOURS: i64 = 24;

const MAX_LABEL_CHARS: usize = 200;

pub fn to_json(row: &Row) -> Value {
    json!({
        "id": row.get::<_, String>("id"),
        "url": row.get::<_, String>("url"),
        "events": row.get::<_, Vec<String>>("events"),
        "label": row.get::<_, Option<String>>("label"),
        "active": row.get::<_, bool>("active"),
        "disabledReason": row.get::<_, Option<String>>("disabled_reason"),
        "failingSince": ts_opt(row.get("failing_since")),
        "createdAt": ts(row.get("created_at")),
        "updatedAt": ts(row.get("updated_at")),
    })
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateEndpoint {
    url: String,
    events: Vec<String>,
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
    Ok(Reply::created(json!({
        "endpoint": to_json(&row),
        "secret": secret,
    })))
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
    let mut body = to_json(&row);
    body["endpoint"] = body.clone();
    Ok(Reply::ok(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateEndpoint {
    /// Absent leaves a field as it is; `null` is refused where the field cannot be empty.
    #[serde(default, deserialize_with = "present")]
    url: Option<String>,
    #[serde(default, deserialize_with = "present")]
    events: Option<Vec<String>>,
    /// `null` clears the label.
    #[serde(default, deserialize_with = "present")]
    label: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
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
    Ok(Reply::ok(json!({ "endpoint": to_json(&row) })))
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
    Ok(Reply::ok(json!({
        "ok": true,
        "deleted": hard,
        "endpoint": to_json(&row),
    })))
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
    Ok(Reply::ok(json!({
        "secret": secret,
        "previousSecretExpiresAt": ts(row.get("previous_secret_until")),
        "endpoint": to_json(&row),
    })))
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
