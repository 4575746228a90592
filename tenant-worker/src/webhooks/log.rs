//! The delivery log (`GET /webhooks/:id/deliveries`, every attempt with status code,
//! latency, error and next attempt time), manual retries and test fires. Retries and test
//! fires make one synchronous attempt through the same code as the pipeline.

use super::{delivery, EVENT_TYPES};
use crate::sql::Schema;
use crate::{
    context::{Ctx, Reply, Timestamp},
    error::{ApiError, ErrorCode},
    openapi::Op,
    pagination::{page_body, PageRequest},
};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{json, Map, Value};
use tokio_postgres::Row;

const COLUMNS: &str =
    "id, endpoint_id, event_id, event_type, status, attempts, http_status, error, latency_ms,
    last_attempt_at, delivered_at, next_attempt_at, created_at";

/// One delivery of one event to one endpoint, with its attempts.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct DeliveryView {
    id: String,
    endpoint_id: String,
    /// The envelope's id (`evt_<ulid>`), the same in every attempt.
    event_id: String,
    /// The event type (`webhook.test` for test fires).
    event_type: String,
    /// `pending` (an attempt is due at `nextAttemptAt`), `delivered` (the receiver answered
    /// 2xx) or `failed` (attempts exhausted, `410 Gone`, or the endpoint inactive).
    #[schemars(regex(pattern = "^(pending|delivered|failed)$"))]
    status: String,
    /// Attempts made so far (at most 8 by the pipeline; manual retries add to them).
    attempts: i32,
    /// The last attempt's HTTP status; null before any answer (none yet, or no connection).
    http_status: Option<i32>,
    /// Why the last attempt failed; null after a success or before any attempt.
    error: Option<String>,
    /// How long the last attempt took, in milliseconds.
    latency_ms: Option<i32>,
    last_attempt_at: Option<Timestamp>,
    delivered_at: Option<Timestamp>,
    /// When the next attempt is due; null unless `pending`.
    next_attempt_at: Option<Timestamp>,
    created_at: Timestamp,
    /// Every attempt, oldest first.
    attempt_log: Vec<DeliveryAttempt>,
}

/// One attempt of a delivery.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct DeliveryAttempt {
    /// 1 for the first attempt.
    attempt: i32,
    /// The receiver's HTTP status; null when there was no answer.
    http_status: Option<i32>,
    /// Why the attempt failed; null on success.
    error: Option<String>,
    latency_ms: i32,
    /// The worker that made the attempt.
    worker: Option<String>,
    at: Timestamp,
}

fn opt_ts(row: &Row, column: &str) -> Option<Timestamp> {
    row.get::<_, Option<DateTime<Utc>>>(column).map(Timestamp)
}

fn view(row: &Row, attempts: Vec<DeliveryAttempt>) -> DeliveryView {
    DeliveryView {
        id: row.get("id"),
        endpoint_id: row.get("endpoint_id"),
        event_id: row.get("event_id"),
        event_type: row.get("event_type"),
        status: row.get("status"),
        attempts: row.get("attempts"),
        http_status: row.get("http_status"),
        error: row.get("error"),
        latency_ms: row.get("latency_ms"),
        last_attempt_at: opt_ts(row, "last_attempt_at"),
        delivered_at: opt_ts(row, "delivered_at"),
        next_attempt_at: opt_ts(row, "next_attempt_at"),
        created_at: Timestamp(row.get("created_at")),
        attempt_log: attempts,
    }
}

/// The answer of a manual retry.
#[derive(Serialize, JsonSchema)]
struct RetriedDelivery {
    /// The delivery after the attempt.
    delivery: DeliveryView,
}

/// The answer of a test fire: the delivery after its one attempt, and what was sent.
#[derive(Serialize, JsonSchema)]
struct TestFired {
    delivery: DeliveryView,
    event: WebhookEnvelope,
}

/// The envelope a delivery POSTs.
#[derive(Serialize, JsonSchema)]
struct WebhookEnvelope {
    /// `evt_<ulid>`: the same in every attempt of the delivery (also the `webhook-id` and
    /// `X-OpenPartner-Delivery` headers).
    id: String,
    /// The event type.
    event: String,
    created: Timestamp,
    /// The event's data: sample data shaped like the real events' for a test fire.
    #[schemars(with = "Map<String, Value>")]
    data: Value,
}

/// The event types a test fire may send: [`EVENT_TYPES`] and `webhook.test`.
fn test_event_types() -> Value {
    let mut types: Vec<&str> = vec!["webhook.test"];
    types.extend(EVENT_TYPES);
    json!({"type": "string", "enum": types})
}

pub fn deliveries_doc() -> Op {
    Op::new("List an endpoint's deliveries")
        .describe("Every delivery with every attempt: status code, latency, error, and when the next attempt is due.")
        .page::<DeliveryView>("deliveries")
        .errors(404, &[ErrorCode::NotFound])
}

pub fn retry_doc() -> Op {
    Op::new("Retry a delivery now")
        .describe("Makes one attempt now, synchronously, through the same code as the pipeline (an inactive endpoint's attempt fails at once).")
        .ok::<RetriedDelivery>(200, "The delivery after the attempt.")
        .errors(400, &[ErrorCode::EndpointMismatch])
        .errors(404, &[ErrorCode::NotFound])
}

pub fn test_fire_doc() -> Op {
    Op::new("Send a test event to an endpoint")
        .describe("Sends an envelope of the type `event` names (default `webhook.test`) with sample data, signed like every delivery, in one synchronous attempt.")
        .query(
            "event",
            "The event type to send (default `webhook.test`).",
            test_event_types(),
        )
        .ok::<TestFired>(200, "The delivery after its attempt, and the envelope sent.")
        .errors(400, &[ErrorCode::InvalidBody, ErrorCode::EndpointInactive])
        .errors(404, &[ErrorCode::NotFound])
}

async fn attempt_log(
    client: &impl deadpool_postgres::GenericClient,
    schema: &Schema,
    ids: &[String],
) -> Result<Vec<(String, DeliveryAttempt)>, ApiError> {
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
                DeliveryAttempt {
                    attempt: r.get(1),
                    http_status: r.get(2),
                    error: r.get(3),
                    latency_ms: r.get(4),
                    worker: r.get(5),
                    at: Timestamp(r.get(6)),
                },
            )
        })
        .collect())
}

async fn load(ctx: &Ctx, schema: &Schema, delivery_id: &str) -> Result<DeliveryView, ApiError> {
    let conn = ctx.conn().await?;
    let row = conn
        .query_one(
            format!("SELECT {COLUMNS} FROM {schema}.webhook_deliveries WHERE id = $1").as_str(),
            &[&delivery_id],
        )
        .await?;
    let log = attempt_log(&conn, schema, &[delivery_id.to_string()]).await?;
    Ok(view(&row, log.into_iter().map(|(_, v)| v).collect()))
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
            // The log is ordered by delivery: take this delivery's attempts out of it.
            let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut logs)
                .into_iter()
                .partition(|(d, _)| *d == did);
            logs = rest;
            let mine = mine.into_iter().map(|(_, a)| a).collect();
            let json = serde_json::to_value(view(r, mine)).unwrap_or_default();
            (r.get("created_at"), did, json)
        })
        .collect();
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
    Ok(Reply::typed(
        200,
        &RetriedDelivery {
            delivery: load(&ctx, &schema, &delivery_id).await?,
        },
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
    let envelope = WebhookEnvelope {
        id: event_id.clone(),
        event: event_type.clone(),
        created: Timestamp(Utc::now()),
        data: delivery::sample(&event_type),
    };
    let payload = serde_json::to_value(&envelope).unwrap_or_default();
    let delivery_id = format!("dlv_{}", ulid::Ulid::new());
    {
        let conn = ctx.conn().await?;
        conn.execute(
            format!(
                "INSERT INTO {schema}.webhook_deliveries (id, endpoint_id, event_id, event_type, payload, status, next_attempt_at)
                 VALUES ($1, $2, $3, $4, $5, 'pending', NULL)"
            )
            .as_str(),
            &[&delivery_id, &id, &event_id, &event_type, &payload],
        )
        .await?;
    }
    delivery::attempt(&ctx.app, &schema, &delivery_id).await?;
    Ok(Reply::typed(
        200,
        &TestFired {
            delivery: load(&ctx, &schema, &delivery_id).await?,
            event: envelope,
        },
    ))
}
