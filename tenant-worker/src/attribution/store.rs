//! SQL of the attribution pipeline, shared by event ingest, identify (backlog) and
//! rederive: the candidate reads, the row builders of planned events ([`super::plan`]) and
//! their writes. No attribution or pricing decision is made here.
//!
//! Everything here names the tenant schema explicitly (a generated, quoted identifier from
//! the envelope's tenant id, never user input) instead of relying on `SET LOCAL
//! search_path`, so the group-committed ingest ([`super::events::write_events`]) can read
//! the candidates of a whole batch in one statement and write the batch in one pipelined
//! transaction.

use super::plan::{attribution_json, commission_json, EventFacts, Plan};
use super::{Candidate, Model, Outcome};
use crate::reporting::rollups::{self, Deltas};
use crate::sql::{val, JsonText, Rows, Schema, Tx};
use crate::{
    commissions::{pricing::FirstEvents, CommissionRule},
    error::ApiError,
    terms,
};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

/// The clicks that could earn credit for each of `users`: every identity's click with its
/// campaign's rule and holdback and every version of its partner's terms for that campaign
/// and for all campaigns (events of one batch have times of their own: the engine picks
/// the version in force at each event's `ts`, [`crate::terms::rule_in_force`]). Per user:
/// `(has_identity, eligible candidates ordered by time)`; users without an identity are
/// absent. Flagged clicks, revoked partners and clicks made outside their campaign's
/// `startsAt`/`endsAt` window are dropped here.
/// `replaying`: the event rederive replays — its commissions do not count as "paid before"
/// (rederive replaces them) and only events before it, by (`ts`, id), count as earlier
/// attributed events ([`Candidate::firsts`], read only for the types its rules ask about).
pub async fn candidates_for(
    client: &impl deadpool_postgres::GenericClient,
    schema: &Schema,
    users: &[&str],
    replaying: Option<(&str, DateTime<Utc>)>,
) -> Result<HashMap<String, (bool, Vec<Candidate>)>, ApiError> {
    let exclude_event = replaying.map(|(id, _)| id);
    // "Paid before" is a LATERAL … LIMIT 1 probe of the (user, campaign) index, not an
    // EXISTS: the planner may turn an EXISTS into a hashed subplan that scans every
    // commission of the tenant, and a generic plan made while the table was small keeps
    // doing that after it has grown.
    let sql = format!(
        "SELECT i.user_id, c.id, c.partner_id, c.campaign_id, c.ts,
                (c.fraud_flag IS NULL AND p.status <> 'revoked'
                 AND (cp.starts_at IS NULL OR c.ts >= cp.starts_at)
                 AND (cp.ends_at IS NULL OR c.ts < cp.ends_at)) AS eligible,
                cp.attribution_model, cp.attribution_window_days, cp.holdback_days, cp.commission_rule,
                paid.one IS NOT NULL AS paid_before,
                terms.specific, terms.valid_from, terms.rules, terms.holdback, c.link_id
           FROM {schema}.identities i
           JOIN {schema}.clicks c ON c.id = i.click_id
           JOIN {schema}.campaigns cp ON cp.id = c.campaign_id
           JOIN {schema}.partners p ON p.id = c.partner_id
           LEFT JOIN LATERAL (
                SELECT 1 AS one FROM {schema}.commissions cm
                 WHERE cm.user_id = i.user_id AND cm.campaign_id = c.campaign_id AND cm.amount > 0
                   AND cm.event_id IS DISTINCT FROM $2
                 LIMIT 1) paid ON true
           LEFT JOIN LATERAL (
                SELECT array_agg(t.campaign_id IS NOT NULL ORDER BY t.valid_from DESC, t.id DESC) AS specific,
                       array_agg(t.valid_from ORDER BY t.valid_from DESC, t.id DESC) AS valid_from,
                       array_agg(t.rule ORDER BY t.valid_from DESC, t.id DESC) AS rules,
                       array_agg(t.holdback_days ORDER BY t.valid_from DESC, t.id DESC) AS holdback
                  FROM {schema}.partner_terms t
                 WHERE t.partner_id = c.partner_id AND (t.campaign_id = c.campaign_id OR t.campaign_id IS NULL)) terms ON true
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
            link_id: r.get(15),
            partner_id: r.get(2),
            campaign_id: r.get(3),
            ts: r.get(4),
            model: Model::parse(r.get(6))?,
            window_days: r.get(7),
            holdback_days: r.get(8),
            rule: CommissionRule::parse(&rule)?,
            terms: match r.get::<_, Option<Vec<bool>>>(11) {
                None => Vec::new(),
                Some(specific) => {
                    terms::versions_from_columns(specific, r.get(12), r.get(13), r.get(14))?
                }
            },
            paid_before: r.get(10),
            firsts: FirstEvents::default(),
        });
    }
    // The first events the rules ask about: one key per (user, campaign, partner, type)
    // named by a sub-rule that needs it ("" for a sub-rule of any type).
    let mut keys: HashSet<(&str, &str, &str, &str)> = HashSet::new();
    for (user, (_, cands)) in &out {
        for c in cands {
            for t in c.history_types() {
                keys.insert((user, &c.campaign_id, &c.partner_id, t.unwrap_or("")));
            }
        }
    }
    if keys.is_empty() {
        return Ok(out);
    }
    let found = first_events(client, schema, &keys, replaying).await?;
    for (user, campaign, partner, kind, first) in found {
        let Some((_, cands)) = out.get_mut(&user) else {
            continue;
        };
        for c in cands
            .iter_mut()
            .filter(|c| c.campaign_id == campaign && c.partner_id == partner)
        {
            match kind.as_str() {
                "" => c.firsts.any = Some(c.firsts.any.map_or(first, |a| a.min(first))),
                k => c.firsts.record_type(k, first),
            }
        }
    }
    Ok(out)
}

/// The first event of each key `(user, campaign, partner, type)` ("" for any type): its
/// `ts`; keys without one are absent. The first is the event priced as the first
/// (programs.md: decided when an event is processed; a late event with an earlier `ts` does
/// not take its place), so the lookup is its `first_events` row, a primary-key probe whose
/// plan cannot go wrong. Without a row — a key no rule asked about when its first event was
/// processed, or `replaying` (rederive: only events before the replayed one count) — the
/// earliest live attributed event, by (`ts`, id): a walk of the user's events on
/// `events_user_ts_id_idx` (exactly the `ORDER BY`, so `LIMIT 1` can stop the scan) with a
/// `LATERAL … LIMIT 1` probe of `attributions` by event id. Refunds are never attributed.
/// (The walk's plan depends on statistics: made while a tenant's tables were small, it read
/// and sorted every event of the user, 3 ms per batch and growing — BENCHMARKS.md; earlier,
/// as a join, it scanned every attribution of the pair: 14 ms.)
async fn first_events(
    client: &impl deadpool_postgres::GenericClient,
    schema: &Schema,
    keys: &HashSet<(&str, &str, &str, &str)>,
    replaying: Option<(&str, DateTime<Utc>)>,
) -> Result<Vec<(String, String, String, String, DateTime<Utc>)>, ApiError> {
    let sql = format!(
        "SELECT k.u, k.c, k.p, k.t, f.ts
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS k(u, c, p, t)
           CROSS JOIN LATERAL (
                SELECT COALESCE(
                    (SELECT e.ts FROM {schema}.first_events fe
                       JOIN {schema}.events e ON e.id = fe.event_id
                      WHERE $5::timestamptz IS NULL AND fe.user_id = k.u AND fe.campaign_id = k.c
                        AND fe.partner_id = k.p AND fe.event_type = k.t),
                    (SELECT e.ts FROM {schema}.events e
                      CROSS JOIN LATERAL (
                            SELECT 1 FROM {schema}.attributions a
                             WHERE a.event_id = e.id AND a.superseded_at IS NULL
                               AND a.campaign_id = k.c AND a.partner_id = k.p
                             LIMIT 1) credited
                      WHERE e.user_id = k.u AND (k.t = '' OR e.type = k.t)
                        AND ($5::timestamptz IS NULL OR (e.ts, e.id) < ($5, $6::text))
                      ORDER BY e.ts, e.id LIMIT 1)) AS ts) f
          WHERE f.ts IS NOT NULL"
    );
    let mut cols: [Vec<&str>; 4] = Default::default();
    for (u, c, p, t) in keys {
        cols[0].push(u);
        cols[1].push(c);
        cols[2].push(p);
        cols[3].push(t);
    }
    let (id, ts) = replaying.unzip();
    let stmt = client.prepare_cached(&sql).await?;
    let rows = client
        .query(&stmt, &[&cols[0], &cols[1], &cols[2], &cols[3], &ts, &id])
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect())
}

/// The advisory lock keys that serialise the attribution of each of `users` in `schema`
/// (programs.md: two events of one user must not both be "first"; identify's backlog and
/// rederive read and write a user's history under it, the event lane writes under it).
/// Sorted and without repeats: writers that take several cannot deadlock on them.
pub fn user_lock_keys<'u>(schema: &Schema, users: impl IntoIterator<Item = &'u str>) -> Vec<i64> {
    let mut keys: Vec<i64> = users
        .into_iter()
        .map(|u| {
            let d = Sha256::digest(format!("attribution:{schema}:{u}").as_bytes());
            i64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Takes the locks of [`user_lock_keys`] (`$1`) for the transaction, in array order: a
/// statement of its own that reads no tenant table (CITUS rule 11).
pub const LOCK_USERS: &str =
    "SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) AS k";

/// Takes the attribution lock of `user` in the caller's transaction (identify, rederive).
pub async fn lock_user(
    client: &impl GenericClient,
    schema: &Schema,
    user: &str,
) -> Result<(), ApiError> {
    let keys = user_lock_keys(schema, [user]);
    client.execute(LOCK_USERS, &[&keys]).await?;
    Ok(())
}

/// [`candidates_for`] one user.
pub async fn candidates(
    client: &impl deadpool_postgres::GenericClient,
    schema: &Schema,
    user_id: &str,
    replaying: Option<(&str, DateTime<Utc>)>,
) -> Result<(bool, Vec<Candidate>), ApiError> {
    Ok(candidates_for(client, schema, &[user_id], replaying)
        .await?
        .remove(user_id)
        .unwrap_or_default())
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

/// The attribution, ledger, commission, outbox and first-event rows of each
/// `(event, plan)`, one [`Rows`] per table in dependency order (CITUS rule 13: Citus plans neither
/// `INSERT … SELECT` nor writable CTEs on these tables). Each commission starts its ledger
/// (`new → accrued`) and points at that entry. Without `with_outbox` the outbox rows are
/// left out: for a writer that proves nobody subscribes ([`crate::webhooks::subscriptions`]).
pub fn derived_rows(
    schema: &Schema,
    items: &[(&EventFacts, &Plan)],
    with_attributions: bool,
    with_outbox: bool,
    firsts_on_conflict: &'static str,
    with_rollups: bool,
) -> Vec<Rows> {
    let mut firsts = Rows::new(
        schema,
        "first_events",
        "user_id, campaign_id, partner_id, event_type, event_id",
        &["text", "text", "text", "text", "text"],
        firsts_on_conflict,
    );
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
         holdback_days, accrued_at, mature_at, last_transition_id, rule_index",
        &[
            "text", "text", "text", "text", "text", "text", "text", "numeric", "text", "text", "int", "timestamptz",
            "timestamptz", "text", "int",
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
                val(c.rule_index as i32),
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
    for (event, plan) in items {
        for (campaign, partner, kind) in &plan.firsts {
            firsts.push(vec![
                val(event.user_id.clone()),
                val(campaign.clone()),
                val(partner.clone()),
                val(kind.clone()),
                val(event.id.clone()),
            ]);
        }
    }
    let mut out = vec![attributions, ledger, commissions, outbox, firsts];
    if with_rollups {
        // Last: the rollup upserts end the transaction ([`Deltas`]). New events have no
        // refunds yet.
        let mut deltas = Deltas::default();
        for (event, plan) in items {
            plan.count(event, None, &mut deltas);
        }
        out.extend(deltas.rows(schema));
    }
    out
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
    tx: &Tx,
    schema: &Schema,
    event: &EventFacts,
    plan: &mut Plan,
) -> Result<(), ApiError> {
    let client = &**tx;
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
    // Identify and rederive re-point a first event (rederive replays in `ts` order; its
    // superseded firsts were deleted).
    let repoint = "ON CONFLICT (user_id, campaign_id, partner_id, event_type) DO UPDATE SET event_id = EXCLUDED.event_id";
    for rows in derived_rows(schema, &[(event, plan)], false, true, repoint, false) {
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
    // The rollups count the new attributions (with the refunds the event already has) and
    // commissions when the transaction commits.
    let refunded = rollups::refunded_sum(tx, &event.event_id).await?;
    tx.rollups(|d| plan.count(event, refunded, d));
    Ok(())
}
