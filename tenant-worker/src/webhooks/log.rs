//! The delivery log (`GET /webhooks/:id/deliveries`, every attempt with status code,
//! latency, error and next attempt time), manual retries and test fires. Retries and test
//! fires make one synchronous attempt through the same code as the pipeline.

use super::delivery;
use crate::sql::Schema;
use crate::{
    context::{ts, ts_opt, Ctx, Reply},
    error::{ApiError, ErrorCode},
    pagination::{page_body, PageRequest},
};
use chrono::Utc;
use serde_json::{json, Value};
use tokio_postgres::Row;

const COLUMNS: &str =
    "id, endpoint_id, event_id, event_type, status, attempts, http_status, error, latency_ms,
    last_attempt_at, delivered_at, next_attempt_at, created_at";

fn to_json(row: &Row, attempts: Vec<Value>) -> Value {
    json!({
        "id": row.get::<_, String>("id"),
        "endpointId": row.get::<_, String>("endpoint_id"),
        "eventId": row.get::<_, String>("event_id"),
        "eventType": row.get::<_, String>("event_type"),
        "status": row.get::<_, String>("status"),
        "attempts": row.get::<_, i32>("attempts"),
        "httpStatus": row.get::<_, Option<i32>>("http_status"),
        "error": row.get::<_, Option<String>>("error"),
        "latencyMs": row.get::<_, Option<i32>>("latency_ms"),
        "lastAttemptAt": ts_opt(row.get("last_attempt_at")),
        "deliveredAt": ts_opt(row.get("delivered_at")),
        "nextAttemptAt": ts_opt(row.get("next_attempt_at")),
        "createdAt": ts(row.get("created_at")),
        "attemptLog": attempts,
    })
}

async fn attempt_log(
    client: &impl deadpool_postgres::GenericClient,
    schema: &Schema,
    ids: &[String],
) -> Result<Vec<(String, Value)>, ApiError> {
    let rows = client
        .query(
            format!(
                "SELECT delivery_id, attempt, http_status, error, latency_ms, worker_id, at FROM {schema}.webhook_attempts
                  WHERE delivery_id = ANY($1) ORDER BY delivery_id, attempt"
            )
            .as_str(),
            &[&ids],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get(0),
                json!({
                    "attempt": r.get::<_, i32>(1),
                    "httpStatus": r.get::<_, Option<i32>>(2),
                    "error": r.get::<_, Option<String>>(3),
                    "latencyMs": r.get::<_, i32>(4),
                    "worker": r.get::<_, Option<String>>(5),
                    "at": ts(r.get(6)),
                }),
            )
        })
        .collect())
}

async fn load(ctx: &Ctx, schema: &Schema, delivery_id: &str) -> Result<Value, ApiError> {
    let conn = ctx.conn().await?;
    let row = conn
        .query_one(
            format!("SELECT {COLUMNS} FROM {schema}.webhook_deliveries WHERE id = $1").as_str(),
            &[&delivery_id],
        )
        .await?;
    let log = attempt_log(&conn, schema, &[delivery_id.to_string()]).await?;
    Ok(to_json(&row, log.into_iter().map(|(_, v)| v).collect()))
}

async fn endpoint_active(ctx: &Ctx, schema: &Schema, id: &str) -> Result<bool, ApiError> {
    let conn = ctx.conn().await?;
    conn.query_opt(
        format!("SELECT active FROM {schema}.webhook_endpoints WHERE id = $1").as_str(),
        &[&id],
    )
    .await?
    .map(|r| r.get(0))
    .ok_or_else(|| ApiError::no_such("webhook endpoint", id))
}

/// `GET /webhooks/:id/deliveries`
pub async fn deliveries(ctx: Ctx) -> Result<Reply, ApiError> {
    let id = ctx.id("webhook endpoint")?;
    let page = PageRequest::from_ctx(&ctx)?;
    let schema = ctx.tenant()?.schema.clone();
    endpoint_active(&ctx, &schema, &id).await?;
    let (after_t, after_id) = page.after.clone().unzip();
    let conn = ctx.conn().await?;
    let rows = conn
        .query(
            format!(
                "SELECT {COLUMNS} FROM {schema}.webhook_deliveries
                  WHERE endpoint_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::text))
                  ORDER BY created_at DESC, id DESC LIMIT $4"
            )
            .as_str(),
            &[&id, &after_t, &after_id, &page.fetch()],
        )
        .await?;
    let ids: Vec<String> = rows.iter().map(|r| r.get("id")).collect();
    let mut logs = attempt_log(&conn, &schema, &ids).await?;
    let items = rows
        .iter()
        .map(|r| {
            let did: String = r.get("id");
            let mine: Vec<Value> = logs
                .iter()
                .filter(|(d, _)| *d == did)
                .map(|(_, v)| v.clone())
                .collect();
            (r.get("created_at"), did, to_json(r, mine))
        })
        .collect();
    logs.clear();
    Ok(Reply::ok(page_body(&page, "deliveries", items)))
}

/// `POST /webhooks/:id/deliveries/:deliveryId/retry`: one attempt now.
pub async fn retry(ctx: Ctx) -> Result<Reply, ApiError> {
    let id = ctx.id("webhook endpoint")?;
    let delivery_id = ctx.param("deliveryId").to_string();
    let schema = ctx.tenant()?.schema.clone();
    endpoint_active(&ctx, &schema, &id).await?;
    let owner: String = {
        let conn = ctx.conn().await?;
        conn.query_opt(
            format!("SELECT endpoint_id FROM {schema}.webhook_deliveries WHERE id = $1").as_str(),
            &[&delivery_id],
        )
        .await?
        .ok_or_else(|| ApiError::not_found("no delivery with this id"))?
        .get(0)
    };
    if owner != id {
        return Err(ApiError::new(
            400,
            ErrorCode::EndpointMismatch,
            "this delivery belongs to another endpoint",
        ));
    }
    delivery::attempt(&ctx.app, &schema, &delivery_id).await?;
    Ok(Reply::ok(
        json!({ "delivery": load(&ctx, &schema, &delivery_id).await? }),
    ))
}

/// `POST /webhooks/:id/test?event=`: sends an envelope of that type with sample data.
pub async fn test_fire(ctx: Ctx) -> Result<Reply, ApiError> {
    let id = ctx.id("webhook endpoint")?;
    let event_type = ctx
        .query_value("event")
        .unwrap_or_else(|| "webhook.test".into());
    if !super::is_known_event(&event_type) {
        return Err(ApiError::invalid_body(format!(
            "unknown event type `{}`",
            crate::context::truncate(&event_type, 64)
        )));
    }
    let schema = ctx.tenant()?.schema.clone();
    if !endpoint_active(&ctx, &schema, &id).await? {
        return Err(ApiError::new(
            400,
            ErrorCode::EndpointInactive,
            "the endpoint is inactive; activate it first",
        ));
    }
    let event_id = format!("evt_{}", ulid::Ulid::new());
    let envelope = json!({
        "id": event_id,
        "event": event_type,
        "created": ts(Utc::now()),
        "data": delivery::sample(&event_type),
    });
    let delivery_id = format!("dlv_{}", ulid::Ulid::new());
    {
        let conn = ctx.conn().await?;
        conn.execute(
            format!(
                "INSERT INTO {schema}.webhook_deliveries (id, endpoint_id, event_id, event_type, payload, status, next_attempt_at)
                 VALUES ($1, $2, $3, $4, $5, 'pending', NULL)"
            )
            .as_str(),
            &[&delivery_id, &id, &event_id, &event_type, &envelope],
        )
        .await?;
    }
    delivery::attempt(&ctx.app, &schema, &delivery_id).await?;
    Ok(Reply::ok(
        json!({ "delivery": load(&ctx, &schema, &delivery_id).await?, "event": envelope }),
    ))
}
