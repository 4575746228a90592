//! The delivery pipeline, run by every worker for the tenants that have work.
//!
//! 1. **Wake** for a tenant when the `jobs` module queues it: right after this worker
//!    committed a write of the tenant (the event's outbox rows), when a retry or a lease
//!    recorded in the pending-work set is due, or when the safety sweep found work.
//! 2. **Fan out** a tenant's outbox rows into one delivery per subscribed active endpoint
//!    (`ON CONFLICT (endpoint_id, event_id) DO NOTHING`: idempotent) and delete them, in one
//!    transaction.
//! 3. **Claim** due deliveries with `FOR UPDATE SKIP LOCKED` and a lease (`locked_until`,
//!    [`LEASE`]: the send timeout + 30 s, whatever the retry scale):
//!    two workers never send the same attempt, and a worker killed mid-send leaves the
//!    delivery to be claimed again when its lease runs out — at least once, never lost.
//! 4. **Send** each claimed delivery in a task of its own (a slow receiver only holds its own
//!    delivery), signed with both schemes, through the SSRF-guarded client, and record the
//!    attempt: 2xx delivered; `410` disables the endpoint; otherwise retry on the schedule
//!    (at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h — × `OP_WEBHOOK_RETRY_SCALE`, ±10%
//!    jitter), honouring `Retry-After` on `429`; 8 attempts in all; an endpoint failing for
//!    5 days (× scale) is disabled.

use super::{signing, ssrf};
use crate::{
    error::ApiError,
    jobs::{self, Job},
    sql::{val, Rows, Schema},
    App,
};
use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use serde_json::Value;
use std::{collections::HashMap, sync::Arc, time::Instant};
use tokio::sync::Semaphore;

/// Delays before attempts 2..=8, in seconds.
pub const SCHEDULE_SECS: [f64; 7] = [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0];
pub const MAX_ATTEMPTS: i32 = 8;
const DISABLE_AFTER_SECS: f64 = 5.0 * 86_400.0;
const BATCH: i64 = 100;
/// The shortest time between two rounds of passes: a round takes every tenant woken since
/// the last one (the pipeline used to poll every 100 ms).
const PACE: std::time::Duration = std::time::Duration::from_millis(50);
/// How long a tenant's pass waits for a free send slot before moving on.
const SLOT_WAIT: std::time::Duration = std::time::Duration::from_millis(50);
/// Outbox rows per fan-out transaction, and fan-outs per tenant pass.
const FAN_OUT: usize = 500;
const MAX_FAN_OUTS_PER_PASS: usize = 20;

fn scaled(app: &App, secs: f64) -> Duration {
    Duration::milliseconds((secs * app.config.webhook_retry_scale * 1000.0) as i64)
}

/// The whole time one webhook request may take (connect, send, answer): the timeout of the
/// outbound client (`App::webhook_http`), and what [`LEASE`] is derived from.
pub const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// How long a claim is held: the send timeout and a generous margin (a busy database, a
/// slow commit of the attempt), so an attempt still in flight is never claimed again and
/// sent a second time at once. Never scaled by `OP_WEBHOOK_RETRY_SCALE`: that scales the
/// retry schedule, while a receiver takes as long as it takes.
const LEASE: std::time::Duration = SEND_TIMEOUT.saturating_add(std::time::Duration::from_secs(30));

fn lease() -> Duration {
    Duration::from_std(LEASE).expect("the lease fits a chrono duration")
}

/// When attempt `attempts + 1` is due, after `attempts` failed ones.
pub fn next_attempt(app: &App, attempts: i32, retry_after: Option<f64>) -> Option<DateTime<Utc>> {
    if attempts >= MAX_ATTEMPTS {
        return None;
    }
    let base = SCHEDULE_SECS[(attempts as usize)
        .saturating_sub(1)
        .min(SCHEDULE_SECS.len() - 1)];
    let jitter = rand::thread_rng().gen_range(0.9..1.1);
    let mut delay = scaled(app, base * jitter);
    if let Some(ra) = retry_after {
        delay = delay.max(Duration::milliseconds((ra * 1000.0) as i64));
    }
    Some(Utc::now() + delay)
}

/// Starts the pipeline on this worker: a pass for each tenant the `jobs` module queues
/// (this worker's write requests, due retries and leases from the pending-work set, the
/// safety sweep). It stops taking work when the drain starts, and ends once the sends in
/// flight recorded their attempts (which releases their leases).
pub fn spawn(app: Arc<App>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // Bounded so delivery never starves ingest of CPU (see BENCHMARKS.md).
        let inflight = Arc::new(Semaphore::new(app.config.webhook_concurrency));
        // Outbox rows this worker consumed per tenant since it last vacuumed that outbox.
        let mut unvacuumed: HashMap<String, u64> = HashMap::new();
        let mut last_round = Instant::now() - PACE;
        loop {
            // The drain first: tenants a broken-off round put back make `ready` ready at once.
            tokio::select! {
                biased;
                _ = app.drain.started() => break,
                _ = app.jobs.ready(Job::Webhooks) => {}
            }
            // Under steady ingest every request wakes its tenant: wakes that come within
            // PACE of the last round wait for the next one, so they share a pass.
            let wait = PACE.saturating_sub(last_round.elapsed());
            if !wait.is_zero() {
                tokio::select! {
                    biased;
                    _ = app.drain.started() => break,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            last_round = Instant::now();
            for due in app.jobs.take(Job::Webhooks) {
                let tenant_id = due.tenant_id.clone();
                let under_way = app.jobs.pass_of(Job::Webhooks, &due);
                match run_tenant(&app, &tenant_id, &inflight).await {
                    Ok(pass) => {
                        let since = unvacuumed.entry(tenant_id.clone()).or_default();
                        *since += pass.consumed;
                        if *since >= VACUUM_AFTER {
                            *since = 0;
                            vacuum_outbox(&app, &tenant_id).await;
                        }
                        if pass.more {
                            // Cut short (its share of the pass, or no free send slot): back
                            // in the queue, after the other tenants.
                            app.jobs.wake(&tenant_id, Job::Webhooks);
                        }
                        let next = match (&due.claim, pass.lease_until) {
                            // A claimed row: the next due time is what the tenant's
                            // deliveries say (a retry, or a lease that may run out).
                            (Some(_), _) => next_due(&app, &tenant_id).await.unwrap_or_else(|e| {
                                tracing::warn!(tenant_id = %tenant_id, error = %e.detail, "webhook pipeline: next due time unknown");
                                Some(Utc::now() + lease())
                            }),
                            // Deliveries claimed here: if this worker dies before their
                            // attempts are recorded, another worker takes them up when their
                            // lease runs out.
                            (None, Some(until)) => Some(until),
                            (None, None) => None,
                        };
                        jobs::done(&app, Job::Webhooks, &due, next).await;
                    }
                    Err(e) => {
                        tracing::warn!(tenant_id = %tenant_id, error = %e.detail, "webhook pipeline: tenant pass failed");
                        jobs::failed(&app, Job::Webhooks, &due).await;
                    }
                }
                under_way.ended();
                if app.drain.is_draining() {
                    break;
                }
            }
        }
        // Draining: every send slot back means every claimed delivery recorded its attempt.
        let _all = inflight
            .acquire_many(app.config.webhook_concurrency as u32)
            .await;
    })
}

/// When this tenant's deliveries next need a pass: the earliest due retry, or the end of
/// the earliest lease (a claimed attempt whose worker may die); now if its outbox has rows.
async fn next_due(app: &App, tenant_id: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    let schema = Schema::of_tenant(tenant_id).ok_or_else(ApiError::internal)?;
    let row = app
        .pool
        .get()
        .await?
        .query_one(
            format!(
                "SELECT (SELECT min(GREATEST(next_attempt_at, locked_until)) FROM {schema}.webhook_deliveries
                          WHERE status = 'pending'),
                        EXISTS (SELECT 1 FROM {schema}.outbox WHERE dispatched_at IS NULL)"
            )
            .as_str(),
            &[],
        )
        .await?;
    if row.get::<_, bool>(1) {
        return Ok(Some(Utc::now()));
    }
    Ok(row.get(0))
}

/// The outbox is a queue: every consumed row leaves a dead index entry at the old end of
/// `outbox_pending_idx`, which every scan for the oldest rows (discovery, fan-out) walks
/// until a vacuum removes it — under steady ingest that walk, not the work, became the
/// pipeline's cost. Autovacuum visits a table at most once a minute; this worker vacuums a
/// tenant's outbox after consuming this many of its rows.
const VACUUM_AFTER: u64 = 5_000;

async fn vacuum_outbox(app: &App, tenant_id: &str) {
    let Some(schema) = Schema::of_tenant(tenant_id) else {
        return;
    };
    let done = async {
        let conn = app.pool.get().await?;
        // SKIP_LOCKED: another worker vacuuming the same outbox is as good. TRUNCATE false:
        // giving the emptied pages back would take an exclusive lock that stalls every
        // writer of the outbox, i.e. every event.
        conn.batch_execute(&format!(
            "VACUUM (SKIP_LOCKED, TRUNCATE false) {schema}.outbox"
        ))
        .await?;
        Ok::<_, ApiError>(())
    };
    if let Err(e) = done.await {
        tracing::warn!(tenant_id = %tenant_id, error = %e.detail, "webhook pipeline: outbox vacuum failed");
    }
}

/// What one tenant's pass did.
struct Pass {
    /// Outbox rows consumed.
    consumed: u64,
    /// Cut short: the tenant may have more due now.
    more: bool,
    /// The lease of the deliveries it claimed, if it claimed any.
    lease_until: Option<DateTime<Utc>>,
}

/// One pass over one tenant: fan out, claim, and start the sends.
async fn run_tenant(
    app: &Arc<App>,
    tenant_id: &str,
    inflight: &Arc<Semaphore>,
) -> Result<Pass, ApiError> {
    let schema = Schema::of_tenant(tenant_id).ok_or_else(ApiError::internal)?;
    let mut conn = app.pool.get().await?;
    // Drain: a pass per tick of at most one fan-out batch would cap the pipeline at
    // FAN_OUT rows per tick while ingest can outrun it.
    let mut consumed = 0;
    let mut more = false;
    for i in 0..MAX_FAN_OUTS_PER_PASS {
        let n = fan_out(&mut conn, &schema).await?;
        consumed += n;
        if n < FAN_OUT as u64 {
            break;
        }
        more = i + 1 == MAX_FAN_OUTS_PER_PASS;
    }
    // Claim only what can be sent now: a claimed delivery waiting for a send slot would
    // spend its lease waiting and could be claimed (and sent) again by another worker. So
    // take the free slots, claim as many deliveries, send them, and go on until nothing is
    // due, no slot frees up soon, or this tenant had its share of the pass.
    drop(conn); // not held while waiting for a send slot
    let mut claimed_in_pass = 0;
    let mut lease_until = None;
    loop {
        if claimed_in_pass >= BATCH as usize {
            more = true;
            break;
        }
        // Busy slots free within milliseconds for fast receivers; slow ones must not hold
        // up the other tenants' fan-out and claims: wait briefly, then move on (the next
        // pass comes back).
        let Ok(Ok(first)) = tokio::time::timeout(SLOT_WAIT, inflight.clone().acquire_owned()).await
        else {
            more = true;
            break;
        };
        let mut slots = vec![first];
        while claimed_in_pass + slots.len() < BATCH as usize {
            match inflight.clone().try_acquire_owned() {
                Ok(slot) => slots.push(slot),
                Err(_) => break,
            }
        }
        let lease_until_claim = Utc::now() + lease();
        let claimed = app
            .pool
            .get()
            .await?
            .query(
                format!(
                    "UPDATE {schema}.webhook_deliveries d SET locked_until = $1
                      WHERE d.id = ANY (ARRAY (SELECT id FROM {schema}.webhook_deliveries
                                      WHERE status = 'pending' AND next_attempt_at <= now()
                                        AND (locked_until IS NULL OR locked_until < now())
                                      ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED))
                      RETURNING d.id"
                )
                .as_str(),
                &[&lease_until_claim, &(slots.len() as i64)],
            )
            .await?;
        let (wanted, got) = (slots.len(), claimed.len());
        claimed_in_pass += got;
        if got > 0 {
            lease_until = Some(lease_until_claim);
        }
        // Unused slots go back with the rest of `slots`.
        for (row, slot) in claimed.into_iter().zip(slots) {
            let delivery_id: String = row.get(0);
            let (app, schema) = (app.clone(), schema.clone());
            tokio::spawn(async move {
                let _slot = slot;
                if let Err(e) = attempt(&app, &schema, &delivery_id).await {
                    tracing::warn!(delivery_id = %delivery_id, error = %e.detail, "webhook attempt could not be recorded");
                }
            });
        }
        if got < wanted {
            break;
        }
    }
    Ok(Pass {
        consumed,
        more,
        lease_until,
    })
}

/// Turns outbox rows into one delivery per subscribed active endpoint and deletes them, in
/// one transaction: the outbox is a queue, the deliveries keep the payload. (The hot event
/// path writes no rows nobody subscribes to: `super::subscriptions`.) Deliveries are
/// computed here and written with multi-row `VALUES` (CITUS rule 13: `INSERT … SELECT`
/// goes through the coordinator, and Citus 13 mis-deparses it with `ON CONFLICT` here).
async fn fan_out(conn: &mut deadpool_postgres::Object, schema: &Schema) -> Result<u64, ApiError> {
    let tx = conn.transaction().await?;
    // The rows first, then the endpoints: every endpoint created before a row committed is
    // then in the list (reading the endpoints first could miss one created in between).
    let events = tx
        .query(
            format!(
                "SELECT id, event_type, payload, created_at FROM {schema}.outbox
                  WHERE dispatched_at IS NULL ORDER BY created_at, id LIMIT {FAN_OUT} FOR UPDATE SKIP LOCKED"
            )
            .as_str(),
            &[],
        )
        .await?;
    if events.is_empty() {
        return Ok(0); // dropping the transaction rolls back: nothing was locked for long
    }
    // `FOR KEY SHARE`: an endpoint removed meanwhile (`DELETE /webhooks/:id?hard=1`) waits
    // for this transaction and its cascade takes the deliveries written here, instead of
    // this insert failing on the foreign key of an endpoint that is gone.
    let endpoints: Vec<(String, Vec<String>)> = tx
        .query(
            format!("SELECT id, events FROM {schema}.webhook_endpoints WHERE active FOR KEY SHARE")
                .as_str(),
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut rows: Vec<(String, String, String, String, Value)> = Vec::new();
    for e in &events {
        let (id, kind): (String, String) = (e.get(0), e.get(1));
        let envelope = serde_json::json!({
            "id": id,
            "event": kind,
            "created": crate::context::ts(e.get(3)),
            "data": e.get::<_, Value>(2),
        });
        for (endpoint, subscribed) in &endpoints {
            if subscribed.iter().any(|s| s == "*" || *s == kind) {
                rows.push((
                    format!("dlv_{}", ulid::Ulid::new()),
                    endpoint.clone(),
                    id.clone(),
                    kind.clone(),
                    envelope.clone(),
                ));
            }
        }
    }
    let mut deliveries = Rows::new(
        schema,
        "webhook_deliveries",
        "id, endpoint_id, event_id, event_type, payload, status, next_attempt_at",
        &[
            "text",
            "text",
            "text",
            "text",
            "jsonb",
            "text",
            "timestamptz",
        ],
        "ON CONFLICT (endpoint_id, event_id) DO NOTHING",
    );
    let now = chrono::Utc::now();
    for (id, endpoint, event, kind, envelope) in rows {
        deliveries.push(vec![
            val(id),
            val(endpoint),
            val(event),
            val(kind),
            val(envelope),
            val("pending".to_string()),
            val(now),
        ]);
    }
    for (sql, params) in deliveries.statements() {
        tx.execute(sql.as_str(), &params).await?;
    }
    let ids: Vec<String> = events.iter().map(|e| e.get(0)).collect();
    let consumed = tx
        .execute(
            format!("DELETE FROM {schema}.outbox WHERE id = ANY($1)").as_str(),
            &[&ids],
        )
        .await?;
    tx.commit().await?;
    Ok(consumed)
}

/// The outcome of one HTTP attempt.
struct Sent {
    http_status: Option<i32>,
    error: Option<String>,
    latency_ms: i32,
    retry_after: Option<f64>,
}

/// Makes one attempt of a delivery now and records it. Used by the pipeline and by the
/// synchronous retry / test endpoints. `schema` is the quoted tenant schema.
pub async fn attempt(app: &Arc<App>, schema: &Schema, delivery_id: &str) -> Result<(), ApiError> {
    let conn = app.pool.get().await?;
    let Some(d) = conn
        .query_opt(
            format!(
                "SELECT d.endpoint_id, d.event_id, d.event_type, d.payload, d.attempts, e.url, e.active,
                        e.secret_sealed, e.previous_secret_sealed, e.previous_secret_until > now(), e.failing_since
                   FROM {schema}.webhook_deliveries d JOIN {schema}.webhook_endpoints e ON e.id = d.endpoint_id
                  WHERE d.id = $1"
            )
            .as_str(),
            &[&delivery_id],
        )
        .await?
    else {
        return Ok(()); // hard-deleted endpoint: its deliveries went with it
    };
    let endpoint_id: String = d.get(0);
    let event_id: String = d.get(1);
    let event_type: String = d.get(2);
    let payload: Value = d.get(3);
    let attempts: i32 = d.get::<_, i32>(4) + 1;
    let url: String = d.get(5);
    let active: bool = d.get(6);
    let sent = if !active {
        Sent {
            http_status: None,
            error: Some("endpoint inactive".into()),
            latency_ms: 0,
            retry_after: None,
        }
    } else {
        let mut secrets = Vec::new();
        if let Some(key) = &app.secrets {
            let current: Vec<u8> = d.get(7);
            secrets.extend(key.open(&current, &endpoint_id));
            if d.get::<_, Option<bool>>(9) == Some(true) {
                if let Some(prev) = d.get::<_, Option<Vec<u8>>>(8) {
                    secrets.extend(key.open(&prev, &endpoint_id));
                }
            }
        }
        if secrets.is_empty() {
            Sent {
                http_status: None,
                error: Some("endpoint secret unavailable (OP_SECRETS_KEY)".into()),
                latency_ms: 0,
                retry_after: None,
            }
        } else {
            send(app, &url, &secrets, &event_id, &event_type, &payload).await
        }
    };
    let now = Utc::now();
    let ok = sent.http_status.is_some_and(|s| (200..300).contains(&s));
    let gone = sent.http_status == Some(410);
    let (status, next) = if ok {
        ("delivered", None)
    } else if gone || !active {
        ("failed", None)
    } else {
        match next_attempt(app, attempts, sent.retry_after) {
            Some(t) => ("pending", Some(t)),
            None => ("failed", None),
        }
    };
    let failing_since: Option<DateTime<Utc>> = d.get(10);
    let disable = if gone {
        Some("the receiver answered 410 Gone")
    } else if !ok && failing_since.is_some_and(|f| now - f > scaled(app, DISABLE_AFTER_SECS)) {
        Some("failing for 5 days")
    } else {
        None
    };
    // The attempt log, the delivery and the endpoint's health move together: three
    // statements in one transaction, pipelined on the connection (one round trip for the
    // three; Citus plans none of them as a writable CTE).
    let mut conn = conn;
    let tx = conn.transaction().await?;
    let attempt_id = ulid::Ulid::new().to_string();
    let log_sql = format!(
        "INSERT INTO {schema}.webhook_attempts (id, delivery_id, attempt, http_status, error, latency_ms, worker_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7)"
    );
    let delivery_sql = format!(
        "UPDATE {schema}.webhook_deliveries
            SET status = $2, attempts = $3, http_status = $4, error = $5, latency_ms = $6, last_attempt_at = $7,
                delivered_at = CASE WHEN $2 = 'delivered' THEN $7 ELSE delivered_at END,
                next_attempt_at = $8, locked_until = NULL
          WHERE id = $1"
    );
    let endpoint_sql = format!(
        "UPDATE {schema}.webhook_endpoints
            SET failing_since = CASE WHEN $2 THEN NULL ELSE COALESCE(failing_since, $3) END,
                active = active AND $4::text IS NULL,
                disabled_reason = COALESCE($4, disabled_reason),
                updated_at = CASE WHEN $4::text IS NULL THEN updated_at ELSE $3 END
          WHERE id = $1 AND $5"
    );
    let log_params: [&(dyn tokio_postgres::types::ToSql + Sync); 7] = [
        &attempt_id,
        &delivery_id,
        &attempts,
        &sent.http_status,
        &sent.error,
        &sent.latency_ms,
        &app.config.worker_id,
    ];
    let delivery_params: [&(dyn tokio_postgres::types::ToSql + Sync); 8] = [
        &delivery_id,
        &status,
        &attempts,
        &sent.http_status,
        &sent.error,
        &sent.latency_ms,
        &now,
        &next,
    ];
    let endpoint_params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
        [&endpoint_id, &ok, &now, &disable, &active];
    futures::try_join!(
        tx.execute(log_sql.as_str(), &log_params),
        tx.execute(delivery_sql.as_str(), &delivery_params),
        tx.execute(endpoint_sql.as_str(), &endpoint_params),
    )?;
    tx.commit().await?;
    if let Some(at) = next {
        // The retry: on this worker at its time, or on another if this one is gone.
        jobs::schedule(app, &schema.tenant_id(), Job::Webhooks, at).await;
    }
    Ok(())
}

async fn send(
    app: &App,
    url: &str,
    secrets: &[String],
    event_id: &str,
    event_type: &str,
    payload: &Value,
) -> Sent {
    let start = Instant::now();
    let elapsed = |s: &Instant| s.elapsed().as_millis().min(i32::MAX as u128) as i32;
    // Literal addresses never reach the resolver: check them (and the shape) here too.
    if let Err(e) = ssrf::check_for_send(url, app.config.webhook_allow_private) {
        return Sent {
            http_status: None,
            error: Some(e.detail),
            latency_ms: 0,
            retry_after: None,
        };
    }
    let body = serde_json::to_vec(payload).unwrap_or_default();
    let ts = Utc::now().timestamp();
    let mut req = app.webhook_http.post(url);
    for (k, v) in signing::headers(secrets, event_id, event_type, ts, &body) {
        req = req.header(k, v);
    }
    match req.body(body).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16() as i32;
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0);
            Sent {
                http_status: Some(status),
                error: (!(200..300).contains(&status)).then(|| format!("HTTP {status}")),
                latency_ms: elapsed(&start),
                retry_after: (status == 429).then_some(retry_after).flatten(),
            }
        }
        Err(e) => Sent {
            http_status: None,
            error: Some(if e.is_timeout() {
                format!("timed out after {} s", SEND_TIMEOUT.as_secs())
            } else {
                format!("{e}")
            }),
            latency_ms: elapsed(&start),
            retry_after: None,
        },
    }
}

/// Sample `data` for test fires, shaped like the real events.
pub fn sample(event_type: &str) -> Value {
    let now = crate::context::ts(Utc::now());
    let partner = serde_json::json!({"id": "01J0000000000000000000TEST", "email": "partner@example.com", "name": "Sample Partner",
        "status": "active", "metadata": {}, "createdAt": now});
    let commission = serde_json::json!({"id": "01J0000000000000000000COMM", "eventId": "inv_test", "partnerId": partner["id"],
        "campaignId": "01J0000000000000000000CAMP", "programId": "01J0000000000000000000CAMP", "amount": "12.00", "currency": "USD",
        "status": event_type.strip_prefix("commission.").unwrap_or("accrued"), "accruedAt": now});
    let mut by_type: HashMap<&str, Value> = HashMap::new();
    by_type.insert("attribution.created", serde_json::json!({"attribution": {"id": "01J0000000000000000000ATTR", "eventId": "inv_test",
        "model": "last_click", "clickId": "01J0000000000000000000CLCK", "partnerId": partner["id"], "weight": 1}}));
    by_type.insert("payout.created", serde_json::json!({"payout": {"id": "01J0000000000000000000PAYO", "payoutId": "01J0000000000000000000PAYO",
        "partnerId": partner["id"], "amount": "120.00", "currency": "USD", "method": "manual", "status": "pending", "createdAt": now}}));
    if let Some(v) = by_type.remove(event_type) {
        return v;
    }
    if event_type.starts_with("commission.") {
        return serde_json::json!({ "commission": commission });
    }
    if event_type.starts_with("partner") {
        return serde_json::json!({ "partner": partner });
    }
    serde_json::json!({ "message": "This is a test webhook from OpenPartner." })
}
