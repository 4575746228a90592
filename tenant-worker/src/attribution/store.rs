//! SQL of the attribution pipeline, shared by event ingest, identify (backlog) and
//! rederive.
//!
//! Everything here names the tenant schema explicitly (a generated, quoted identifier from
//! the envelope's tenant id, never user input) instead of relying on `SET LOCAL
//! search_path`, so the group-committed ingest ([`super::events::write_events`]) can read
//! the candidates of a whole batch in one statement and write the batch in one pipelined
//! transaction.

use super::{Candidate, Model, Outcome};
use crate::sql::{val, JsonText, Rows, Schema};
use crate::{commissions::CommissionRule, context::ts, error::ApiError, money::Currency};
use chrono::{DateTime, Duration, Utc};
use deadpool_postgres::GenericClient;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{json, Number, Value};
use std::{
    collections::{HashMap, HashSet},
    str::FromStr,
};

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

/// The clicks that could earn credit for each of `users`: every identity's click with its
/// campaign's terms. Per user: `(has_identity, eligible candidates ordered by time)`; users
/// without an identity are absent. Flagged clicks and revoked partners are dropped here.
/// `exclude_event`: commissions of this event do not count as "paid before" (rederive
/// replaces them).
pub async fn candidates_for(
    client: &impl deadpool_postgres::GenericClient,
    schema: &Schema,
    users: &[&str],
    exclude_event: Option<&str>,
) -> Result<HashMap<String, (bool, Vec<Candidate>)>, ApiError> {
    // "Paid before" is a LATERAL … LIMIT 1 probe of the (user, campaign) index, not an
    // EXISTS: the planner may turn an EXISTS into a hashed subplan that scans every
    // commission of the tenant, and a generic plan made while the table was small keeps
    // doing that after it has grown.
    let sql = format!(
        "SELECT i.user_id, c.id, c.partner_id, c.campaign_id, c.ts,
                (c.fraud_flag IS NULL AND p.status <> 'revoked') AS eligible,
                cp.attribution_model, cp.attribution_window_days, cp.holdback_days, cp.commission_rule,
                paid.one IS NOT NULL AS paid_before
           FROM {schema}.identities i
           JOIN {schema}.clicks c ON c.id = i.click_id
           JOIN {schema}.campaigns cp ON cp.id = c.campaign_id
           JOIN {schema}.partners p ON p.id = c.partner_id
           LEFT JOIN LATERAL (
                SELECT 1 AS one FROM {schema}.commissions cm
                 WHERE cm.user_id = i.user_id AND cm.campaign_id = c.campaign_id AND cm.amount > 0
                   AND cm.event_id IS DISTINCT FROM $2
                 LIMIT 1) paid ON true
          WHERE i.user_id = ANY($1::text[])
          ORDER BY i.user_id, c.ts, c.id"
    );
    let stmt = client.prepare_cached(&sql).await?;
    let rows = client.query(&stmt, &[&users, &exclude_event]).await?;
    let mut out: HashMap<String, (bool, Vec<Candidate>)> = HashMap::new();
    let mut seen = HashSet::new();
    for r in rows {
        let user: String = r.get(0);
        let click_id: String = r.get(1);
        let (_, list) = out.entry(user.clone()).or_insert((true, Vec::new()));
        if !r.get::<_, bool>(5) || !seen.insert((user, click_id.clone())) {
            continue;
        }
        let rule: Value = r.get(9);
        list.push(Candidate {
            click_id,
            partner_id: r.get(2),
            campaign_id: r.get(3),
            ts: r.get(4),
            model: Model::parse(r.get(6))?,
            window_days: r.get(7),
            holdback_days: r.get(8),
            rule: CommissionRule::parse(&rule)?,
            paid_before: r.get(10),
        });
    }
    Ok(out)
}

/// [`candidates_for`] one user.
pub async fn candidates(
    client: &impl deadpool_postgres::GenericClient,
    schema: &Schema,
    user_id: &str,
    exclude_event: Option<&str>,
) -> Result<(bool, Vec<Candidate>), ApiError> {
    Ok(candidates_for(client, schema, &[user_id], exclude_event)
        .await?
        .remove(user_id)
        .unwrap_or_default())
}

/// After `plan` is written, a campaign it paid is no longer "first" for the user's later
/// events (the recurring rule applies to them).
pub fn mark_paid(candidates: &mut [Candidate], plan: &Plan) {
    for c in plan.commissions.iter().filter(|c| c.amount > Decimal::ZERO) {
        for cand in candidates
            .iter_mut()
            .filter(|x| x.campaign_id == c.campaign_id)
        {
            cand.paid_before = true;
        }
    }
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
pub fn response(event: &EventFacts, outcome: &Outcome, plan: &Plan) -> Vec<u8> {
    let touches = plan
        .attributions
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let commission = plan.commissions.iter().find(|c| c.attribution == i);
            TouchReply {
                amount: commission.map(|c| c.currency.format(c.amount)),
                attribution_id: &a.id,
                campaign_id: &a.campaign_id,
                click_id: &a.click_id,
                commission_id: commission.map(|c| c.id.as_str()),
                currency: commission.map(|c| c.currency.code()),
                partner_id: &a.partner_id,
                weight: weight_json(a.weight),
            }
        })
        .collect();
    let model = match outcome {
        Outcome::Attributed { model, .. } => Some(model.as_str()),
        _ => None,
    };
    let reply = EventReply {
        attribution: AttributionReply {
            model,
            status: outcome.status(),
            touches,
        },
        event_id: &event.event_id,
        id: &event.id,
        ok: true,
    };
    serde_json::to_vec(&reply).unwrap_or_default()
}

// The reply to a new event, serialized once: stored with the event (replays read it back)
// and sent. Fields in alphabetical order, the order of a reply read back from the database.

#[derive(Serialize)]
struct EventReply<'a> {
    attribution: AttributionReply<'a>,
    #[serde(rename = "eventId")]
    event_id: &'a str,
    id: &'a str,
    ok: bool,
}

#[derive(Serialize)]
struct AttributionReply<'a> {
    model: Option<&'static str>,
    status: &'static str,
    touches: Vec<TouchReply<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TouchReply<'a> {
    amount: Option<String>,
    attribution_id: &'a str,
    campaign_id: &'a str,
    click_id: &'a str,
    commission_id: Option<&'a str>,
    currency: Option<&'a str>,
    partner_id: &'a str,
    weight: Value,
}

/// The rows of new events.
pub fn event_rows(schema: &Schema) -> Rows {
    Rows::new(
        schema,
        "events",
        "id, event_id, user_id, type, value, currency, metadata, ts, refund_of, attribution_status, response",
        &[
            "text", "text", "text", "text", "numeric", "text", "jsonb", "timestamptz", "text", "text", "jsonb",
        ],
        "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
    )
}

/// Adds `event` to [`event_rows`].
pub fn push_event(
    rows: &mut Rows,
    event: &EventFacts,
    metadata: &Value,
    outcome: &Outcome,
    response: &[u8],
) {
    rows.push(vec![
        val(event.id.clone()),
        val(event.event_id.clone()),
        val(event.user_id.clone()),
        val(event.kind.clone()),
        val(event.value),
        val(event.currency.code().to_string()),
        val(metadata.clone()),
        val(event.ts),
        val(None::<String>),
        val(outcome.status().to_string()),
        val(JsonText(response.to_vec())),
    ]);
}

/// The attribution, ledger, commission and outbox rows of each `(event, plan)`, one
/// [`Rows`] per table in dependency order (CITUS rule 13: Citus plans neither
/// `INSERT … SELECT` nor writable CTEs on these tables). Each commission starts its ledger
/// (`new → accrued`) and points at that entry. Without `with_outbox` the outbox rows are
/// left out: for a writer that proves nobody subscribes ([`crate::webhooks::subscriptions`]).
pub fn derived_rows(
    schema: &Schema,
    items: &[(&EventFacts, &Plan)],
    with_attributions: bool,
    with_outbox: bool,
) -> Vec<Rows> {
    let mut attributions = Rows::new(
        schema,
        "attributions",
        "id, event_id, model, click_id, partner_id, campaign_id, weight",
        &["text", "text", "text", "text", "text", "text", "numeric"],
        "",
    );
    let mut ledger = Rows::new(
        schema,
        "commission_ledger",
        "id, commission_id, from_status, to_status, prev_id, amount, principal_kind, reason",
        &[
            "text", "text", "text", "text", "text", "numeric", "text", "text",
        ],
        "",
    );
    let mut commissions = Rows::new(
        schema,
        "commissions",
        "id, attribution_id, event_id, client_event_id, user_id, partner_id, campaign_id, amount, currency, status,
         holdback_days, accrued_at, mature_at, last_transition_id",
        &[
            "text", "text", "text", "text", "text", "text", "text", "numeric", "text", "text", "int", "timestamptz",
            "timestamptz", "text",
        ],
        "",
    );
    let mut outbox = Rows::new(
        schema,
        "outbox",
        "id, event_type, payload",
        &["text", "text", "jsonb"],
        "",
    );
    for (event, plan) in items {
        for a in &plan.attributions {
            if with_attributions {
                attributions.push(vec![
                    val(a.id.clone()),
                    val(event.id.clone()),
                    val(a.model.as_str().to_string()),
                    val(a.click_id.clone()),
                    val(a.partner_id.clone()),
                    val(a.campaign_id.clone()),
                    val(a.weight),
                ]);
            }
            if with_outbox {
                outbox.push(vec![
                    val(format!("evt_{}", ulid::Ulid::new())),
                    val("attribution.created".to_string()),
                    val(json!({ "attribution": attribution_json(event, a) })),
                ]);
            }
        }
        for c in &plan.commissions {
            let entry = format!("lg_{}", c.id);
            ledger.push(vec![
                val(entry.clone()),
                val(c.id.clone()),
                val("new".to_string()),
                val("accrued".to_string()),
                val(None::<String>),
                val(c.amount),
                val("system".to_string()),
                val("attributed".to_string()),
            ]);
            commissions.push(vec![
                val(c.id.clone()),
                val(plan.attributions[c.attribution].id.clone()),
                val(event.id.clone()),
                val(event.event_id.clone()),
                val(event.user_id.clone()),
                val(c.partner_id.clone()),
                val(c.campaign_id.clone()),
                val(c.amount),
                val(c.currency.code().to_string()),
                val("accrued".to_string()),
                val(c.holdback_days),
                val(c.accrued_at),
                val(c.mature_at),
                val(entry),
            ]);
            if with_outbox {
                outbox.push(vec![
                    val(format!("evt_{}", ulid::Ulid::new())),
                    val("commission.accrued".to_string()),
                    val(json!({ "commission": commission_json(event, plan, c) })),
                ]);
            }
        }
    }
    vec![attributions, ledger, commissions, outbox]
}

/// The stored reply of an event, for idempotent replays.
pub async fn stored_response(
    client: &impl GenericClient,
    schema: &Schema,
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
    schema: &Schema,
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
    for rows in derived_rows(schema, &[(event, plan)], false, true) {
        for (sql, params) in rows.statements() {
            client.execute(sql.as_str(), &params).await?;
        }
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
