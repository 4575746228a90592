//! SQL of the attribution pipeline, shared by event ingest, identify (backlog) and
//! rederive.
//!
//! Everything here names the tenant schema explicitly (a generated, quoted identifier from
//! the envelope's tenant id, never user input) instead of relying on `SET LOCAL
//! search_path`, so the ingest hot path can run as two single-statement autocommit round
//! trips: read the user's candidate clicks, then one statement that inserts the event and —
//! only if the event was new — its attributions, commissions and outbox rows.

use super::{Candidate, Model, Outcome};
use crate::{commissions::CommissionRule, context::ts, error::ApiError, money::Currency};
use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Number, Value};
use std::str::FromStr;
use tokio_postgres::{types::ToSql, GenericClient};

/// The facts of one conversion event that attribution needs.
#[derive(Debug, Clone)]
pub struct EventFacts {
    /// Server id, `evt_<ulid>`.
    pub id: String,
    /// The client's id (or `id` when none was given).
    pub event_id: String,
    pub user_id: String,
    pub kind: String,
    pub value: Option<Decimal>,
    pub currency: Currency,
    pub ts: DateTime<Utc>,
}

/// The user's clicks that could earn credit: every identity's click with its campaign's
/// terms. `Ok((has_identity, eligible candidates ordered by time))`. Flagged clicks and
/// revoked partners are dropped here. `exclude_event`: commissions of this event do not
/// count as "paid before" (rederive replaces them).
pub async fn candidates(
    client: &impl deadpool_postgres::GenericClient,
    schema: &str,
    user_id: &str,
    exclude_event: Option<&str>,
) -> Result<(bool, Vec<Candidate>), ApiError> {
    let sql = format!(
        "SELECT c.id, c.partner_id, c.campaign_id, c.ts,
                (c.fraud_flag IS NULL AND p.status <> 'revoked') AS eligible,
                cp.attribution_model, cp.attribution_window_days, cp.holdback_days, cp.commission_rule,
                EXISTS (SELECT 1 FROM {schema}.commissions cm
                         WHERE cm.user_id = $1 AND cm.campaign_id = c.campaign_id AND cm.amount > 0
                           AND cm.event_id IS DISTINCT FROM $2) AS paid_before
           FROM {schema}.identities i
           JOIN {schema}.clicks c ON c.id = i.click_id
           JOIN {schema}.campaigns cp ON cp.id = c.campaign_id
           JOIN {schema}.partners p ON p.id = c.partner_id
          WHERE i.user_id = $1
          ORDER BY c.ts, c.id"
    );
    let stmt = client.prepare_cached(&sql).await?;
    let rows = client.query(&stmt, &[&user_id, &exclude_event]).await?;
    let has_identity = !rows.is_empty();
    let mut out = Vec::with_capacity(rows.len());
    let mut seen = std::collections::HashSet::new();
    for r in rows {
        let click_id: String = r.get(0);
        if !r.get::<_, bool>(4) || !seen.insert(click_id.clone()) {
            continue;
        }
        let rule: Value = r.get(8);
        out.push(Candidate {
            click_id,
            partner_id: r.get(1),
            campaign_id: r.get(2),
            ts: r.get(3),
            model: Model::parse(r.get(5))?,
            window_days: r.get(6),
            holdback_days: r.get(7),
            rule: CommissionRule::parse(&rule)?,
            paid_before: r.get(9),
        });
    }
    Ok((has_identity, out))
}

/// One attribution row to write.
#[derive(Debug, Clone)]
pub struct PlannedAttribution {
    pub id: String,
    pub model: Model,
    pub click_id: String,
    pub partner_id: String,
    pub campaign_id: String,
    pub weight: Decimal,
}

/// One commission row to write (always `accrued` when planned).
#[derive(Debug, Clone)]
pub struct PlannedCommission {
    pub id: String,
    pub attribution: usize,
    pub partner_id: String,
    pub campaign_id: String,
    pub amount: Decimal,
    pub currency: Currency,
    pub holdback_days: i32,
    pub accrued_at: DateTime<Utc>,
    pub mature_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub attributions: Vec<PlannedAttribution>,
    pub commissions: Vec<PlannedCommission>,
}

/// Turns an outcome into rows (ids generated here, so the reply can be built before writing).
pub fn plan(event: &EventFacts, outcome: &Outcome, now: DateTime<Utc>) -> Plan {
    let Outcome::Attributed { model, touches } = outcome else {
        return Plan::default();
    };
    let amounts = super::split(touches, event.value, event.currency);
    let mut plan = Plan::default();
    for (i, (t, amount)) in touches.iter().zip(amounts).enumerate() {
        plan.attributions.push(PlannedAttribution {
            id: ulid::Ulid::new().to_string(),
            model: *model,
            click_id: t.candidate.click_id.clone(),
            partner_id: t.candidate.partner_id.clone(),
            campaign_id: t.candidate.campaign_id.clone(),
            weight: t.weight,
        });
        if let Some((amount, currency)) = amount {
            plan.commissions.push(PlannedCommission {
                id: ulid::Ulid::new().to_string(),
                attribution: i,
                partner_id: t.candidate.partner_id.clone(),
                campaign_id: t.candidate.campaign_id.clone(),
                amount,
                currency,
                holdback_days: t.candidate.holdback_days,
                accrued_at: now,
                mature_at: now + Duration::days(i64::from(t.candidate.holdback_days)),
            });
        }
    }
    plan
}

fn weight_json(w: Decimal) -> Value {
    Number::from_str(&w.normalize().to_string()).map_or(Value::Null, Value::Number)
}

pub fn attribution_json(event: &EventFacts, a: &PlannedAttribution) -> Value {
    json!({
        "id": a.id,
        "eventId": event.event_id,
        "model": a.model.as_str(),
        "clickId": a.click_id,
        "partnerId": a.partner_id,
        "campaignId": a.campaign_id,
        "programId": a.campaign_id,
        "weight": weight_json(a.weight),
    })
}

pub fn commission_json(event: &EventFacts, plan: &Plan, c: &PlannedCommission) -> Value {
    json!({
        "id": c.id,
        "attributionId": plan.attributions[c.attribution].id,
        "eventId": event.event_id,
        "partnerId": c.partner_id,
        "campaignId": c.campaign_id,
        "programId": c.campaign_id,
        "amount": c.currency.format(c.amount),
        "currency": c.currency.code(),
        "status": "accrued",
        "holdbackDays": c.holdback_days,
        "accruedAt": ts(c.accrued_at),
        "matureAt": ts(c.mature_at),
        "approvedAt": null,
        "paidAt": null,
        "reversedAt": null,
        "payoutId": null,
        "refundOf": null,
    })
}

/// The reply of `POST /attribution/events` (stored with the event for idempotent replays).
pub fn response(event: &EventFacts, outcome: &Outcome, plan: &Plan) -> Value {
    let model = match outcome {
        Outcome::Attributed { model, .. } => Value::String(model.as_str().into()),
        _ => Value::Null,
    };
    let touches: Vec<Value> = plan
        .attributions
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let commission = plan.commissions.iter().find(|c| c.attribution == i);
            json!({
                "clickId": a.click_id,
                "partnerId": a.partner_id,
                "campaignId": a.campaign_id,
                "weight": weight_json(a.weight),
                "attributionId": a.id,
                "commissionId": commission.map(|c| c.id.clone()),
                "amount": commission.map(|c| c.currency.format(c.amount)),
                "currency": commission.map(|c| c.currency.code().to_string()),
            })
        })
        .collect();
    json!({
        "ok": true,
        "id": event.id,
        "eventId": event.event_id,
        "attribution": { "status": outcome.status(), "model": model, "touches": touches },
    })
}

/// Accumulates one multi-row statement's parameters.
#[derive(Default)]
pub struct Params {
    values: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Params {
    pub fn push(&mut self, v: impl ToSql + Sync + Send + 'static) -> String {
        self.values.push(Box::new(v));
        format!("${}", self.values.len())
    }

    pub fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values
            .iter()
            .map(|v| v.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// The attribution, ledger, commission and outbox rows of `plan` for the event whose server
/// id is `event.id`, as separate multi-row `VALUES` inserts in dependency order (CITUS rule
/// 13; Citus plans neither `INSERT … SELECT` nor writable CTEs on these tables).
fn derived_statements(
    schema: &str,
    event: &EventFacts,
    plan: &Plan,
    with_attributions: bool,
) -> Vec<(String, Params)> {
    let mut out = Vec::new();
    if with_attributions && !plan.attributions.is_empty() {
        let mut p = Params::default();
        let rows: Vec<String> = plan
            .attributions
            .iter()
            .map(|a| {
                format!(
                    "({}::text, {}::text, {}::text, {}::text, {}::text, {}::text, {}::numeric)",
                    p.push(a.id.clone()),
                    p.push(event.id.clone()),
                    p.push(a.model.as_str().to_string()),
                    p.push(a.click_id.clone()),
                    p.push(a.partner_id.clone()),
                    p.push(a.campaign_id.clone()),
                    p.push(a.weight)
                )
            })
            .collect();
        out.push((
            format!(
                "INSERT INTO {schema}.attributions (id, event_id, model, click_id, partner_id, campaign_id, weight) VALUES {}",
                rows.join(", ")
            ),
            p,
        ));
    }
    if !plan.commissions.is_empty() {
        // Each commission starts its ledger (new -> accrued); the row must point at it.
        let mut p = Params::default();
        let rows: Vec<String> = plan
            .commissions
            .iter()
            .map(|c| {
                format!(
                    "({}::text, {}::text, 'new', 'accrued', NULL, {}::numeric, 'system', 'attributed')",
                    p.push(format!("lg_{}", c.id)),
                    p.push(c.id.clone()),
                    p.push(c.amount)
                )
            })
            .collect();
        out.push((
            format!(
                "INSERT INTO {schema}.commission_ledger (id, commission_id, from_status, to_status, prev_id, amount,
                     principal_kind, reason) VALUES {}",
                rows.join(", ")
            ),
            p,
        ));
        let mut p = Params::default();
        let rows: Vec<String> = plan
            .commissions
            .iter()
            .map(|c| {
                format!(
                    "({}::text, {}::text, {}::text, {}::text, {}::text, {}::text, {}::text, {}::numeric, {}::text, 'accrued',
                      {}::int, {}::timestamptz, {}::timestamptz, {}::text)",
                    p.push(c.id.clone()),
                    p.push(plan.attributions[c.attribution].id.clone()),
                    p.push(event.id.clone()),
                    p.push(event.event_id.clone()),
                    p.push(event.user_id.clone()),
                    p.push(c.partner_id.clone()),
                    p.push(c.campaign_id.clone()),
                    p.push(c.amount),
                    p.push(c.currency.code().to_string()),
                    p.push(c.holdback_days),
                    p.push(c.accrued_at),
                    p.push(c.mature_at),
                    p.push(format!("lg_{}", c.id))
                )
            })
            .collect();
        out.push((
            format!(
                "INSERT INTO {schema}.commissions (id, attribution_id, event_id, client_event_id, user_id, partner_id,
                     campaign_id, amount, currency, status, holdback_days, accrued_at, mature_at, last_transition_id)
                 VALUES {}",
                rows.join(", ")
            ),
            p,
        ));
    }
    let mut events: Vec<(String, Value)> = plan
        .attributions
        .iter()
        .map(|a| {
            (
                "attribution.created".to_string(),
                json!({ "attribution": attribution_json(event, a) }),
            )
        })
        .collect();
    events.extend(plan.commissions.iter().map(|c| {
        (
            "commission.accrued".to_string(),
            json!({ "commission": commission_json(event, plan, c) }),
        )
    }));
    if !events.is_empty() {
        let mut p = Params::default();
        let rows: Vec<String> = events
            .into_iter()
            .map(|(kind, data)| {
                format!(
                    "({}::text, {}::text, {}::jsonb)",
                    p.push(format!("evt_{}", ulid::Ulid::new())),
                    p.push(kind),
                    p.push(data)
                )
            })
            .collect();
        out.push((
            format!(
                "INSERT INTO {schema}.outbox (id, event_type, payload) VALUES {}",
                rows.join(", ")
            ),
            p,
        ));
    }
    out
}

/// Inserts a new event and everything derived from it, atomically and in one round trip:
/// `BEGIN`, the event insert (`ON CONFLICT (event_id) DO NOTHING RETURNING id`), the derived
/// inserts and `COMMIT` are pipelined on the connection. If the event already existed, the
/// derived inserts fail on their foreign key to it, the transaction aborts (its `COMMIT`
/// becomes a rollback) and nothing is written. Returns whether the event was new. Every
/// message is queued on the first poll, so even a cancelled caller leaves the connection
/// with its transaction finished.
#[allow(clippy::too_many_arguments)]
pub async fn insert_event(
    conn: &deadpool_postgres::Object,
    schema: &str,
    event: &EventFacts,
    metadata: &Value,
    refund_of: Option<&str>,
    outcome: &Outcome,
    plan: &Plan,
    response: &Value,
) -> Result<bool, ApiError> {
    let mut p = Params::default();
    let ev_sql = format!(
        "INSERT INTO {schema}.events (id, event_id, user_id, type, value, currency, metadata, ts, refund_of,
                attribution_status, response)
         VALUES ({}::text, {}::text, {}::text, {}::text, {}::numeric, {}::text, {}::jsonb, {}::timestamptz, {}::text, {}::text, {}::jsonb)
         ON CONFLICT (event_id) DO NOTHING RETURNING id",
        p.push(event.id.clone()),
        p.push(event.event_id.clone()),
        p.push(event.user_id.clone()),
        p.push(event.kind.clone()),
        p.push(event.value),
        p.push(event.currency.code().to_string()),
        p.push(metadata.clone()),
        p.push(event.ts),
        p.push(refund_of.map(str::to_string)),
        p.push(outcome.status().to_string()),
        p.push(response.clone()),
    );
    let derived = derived_statements(schema, event, plan, true);
    // Prepared (once per connection and shape) before the pipeline starts.
    let ev_stmt = conn.prepare_cached(&ev_sql).await?;
    let mut stmts = Vec::with_capacity(derived.len());
    for (sql, _) in &derived {
        stmts.push(conn.prepare_cached(sql).await?);
    }
    let ev_refs = p.refs();
    let derived_refs: Vec<Vec<&(dyn ToSql + Sync)>> =
        derived.iter().map(|(_, p)| p.refs()).collect();
    let (begin, inserted, writes, commit) = futures::join!(
        conn.batch_execute("BEGIN"),
        conn.query_opt(&ev_stmt, &ev_refs),
        futures::future::join_all(
            stmts
                .iter()
                .zip(&derived_refs)
                .map(|(s, r)| conn.execute(s, r))
        ),
        conn.batch_execute("COMMIT"),
    );
    begin?;
    if inserted?.is_none() {
        return Ok(false);
    }
    for w in writes {
        w?;
    }
    commit?;
    Ok(true)
}

/// The stored reply of an event, for idempotent replays.
pub async fn stored_response(
    client: &impl GenericClient,
    schema: &str,
    event_id: &str,
) -> Result<Option<Value>, ApiError> {
    let row = client
        .query_opt(
            format!("SELECT response FROM {schema}.events WHERE event_id = $1").as_str(),
            &[&event_id],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Writes the derived rows of an event that already exists (identify backlog, rederive), in
/// the caller's transaction. An attribution that existed before for the same (model, click)
/// — superseded by an earlier rederive — is revived rather than duplicated.
pub async fn attach(
    client: &impl GenericClient,
    schema: &str,
    event: &EventFacts,
    plan: &mut Plan,
) -> Result<(), ApiError> {
    for a in plan.attributions.iter_mut() {
        let row = client
            .query_one(
                format!(
                    "INSERT INTO {schema}.attributions (id, event_id, model, click_id, partner_id, campaign_id, weight)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (event_id, model, click_id)
                     DO UPDATE SET superseded_at = NULL, weight = EXCLUDED.weight RETURNING id"
                )
                .as_str(),
                &[&a.id, &event.id, &a.model.as_str(), &a.click_id, &a.partner_id, &a.campaign_id, &a.weight],
            )
            .await?;
        a.id = row.get(0);
    }
    // The attributions were written above (revival needs their returned ids).
    for (sql, p) in derived_statements(schema, event, plan, false) {
        client.execute(sql.as_str(), &p.refs()).await?;
    }
    client
        .execute(
            format!("UPDATE {schema}.events SET attribution_status = 'attributed' WHERE id = $1")
                .as_str(),
            &[&event.id],
        )
        .await?;
    Ok(())
}
