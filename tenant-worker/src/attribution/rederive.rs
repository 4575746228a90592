//! `POST /attribution/rederive {campaignId?, from?, to?}`: re-runs attribution over
//! historical events (e.g. after a campaign changed its model) without double-paying.
//!
//! Per event, in a short transaction of its own: if the current result is what the engine
//! gives now, nothing changes (so a second run is a no-op); if any of its commissions is
//! approved or paid, the event is skipped; otherwise its accrued commissions are reversed,
//! its attributions superseded, and the new ones written.

use super::{
    attribute,
    input::{optional_time, parse_ts},
    plan::{EventFacts, Plan},
    store, Outcome,
};
use crate::reporting::rollups;
use crate::sql::{Schema, Tx};
use crate::{
    commissions,
    context::{parse_id, Ctx, Reply},
    error::{ApiError, ErrorCode},
    money::Currency,
    openapi::Op,
};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RederiveBody {
    /// Only the events of users who clicked a link of this campaign.
    campaign_id: Option<String>,
    /// The original API's name of `campaignId` (used when `campaignId` is absent or null).
    program_id: Option<String>,
    /// Only events at or after this time (RFC 3339 or epoch milliseconds).
    #[serde(default)]
    #[schemars(schema_with = "optional_time")]
    from: Option<Value>,
    /// Only events before this time (RFC 3339 or epoch milliseconds).
    #[serde(default)]
    #[schemars(schema_with = "optional_time")]
    to: Option<Value>,
}

/// What a rederive did (also its answer).
#[derive(Default, Serialize, JsonSchema)]
struct Rederived {
    ok: bool,
    /// Events looked at (refunds are never attributed, so never counted).
    events: u64,
    /// Commissions reversed (replaced by the new attribution's).
    reversed: u64,
    /// Commissions created.
    created: u64,
    /// Events left as they were because one of their commissions is approved or paid.
    skipped: u64,
}

pub fn rederive_doc() -> Op {
    Op::new("Re-run attribution over past events")
        .describe("Synchronous. Per event: when the engine now gives what stands, nothing changes (so a second run changes nothing); when any of its commissions is approved or paid, it is skipped; otherwise its accrued commissions are reversed and replaced by the new attribution's.")
        .optional_body::<RederiveBody>()
        .ok::<Rederived>(200, "What changed.")
        .errors(404, &[ErrorCode::NotFound])
}

pub async fn rederive(ctx: Ctx) -> Result<Reply, ApiError> {
    let body: RederiveBody = ctx.json()?;
    let campaign = body.campaign_id.or(body.program_id);
    let from: Option<DateTime<Utc>> = parse_ts(body.from.as_ref(), "from")?;
    let to: Option<DateTime<Utc>> = parse_ts(body.to.as_ref(), "to")?;
    let schema = ctx.tenant()?.schema.clone();
    if let Some(c) = &campaign {
        // Campaign ids are ULIDs: anything else names none (and is never sent to the
        // database, which refuses some text, NUL for one).
        parse_id(c, "campaign")?;
        let exists = ctx
            .read_one(
                &format!("SELECT 1 FROM {schema}.campaigns WHERE id = $1"),
                &[c],
            )
            .await?
            .is_some();
        if !exists {
            return Err(ApiError::not_found(format!(
                "no campaign with id `{}`",
                crate::context::truncate(c, 64)
            )));
        }
    }
    let ids: Vec<(String, String)> = ctx
        .read(
            &format!(
                "SELECT e.id, e.user_id FROM {schema}.events e
                  WHERE e.refund_of IS NULL
                    AND ($1::timestamptz IS NULL OR e.ts >= $1)
                    AND ($2::timestamptz IS NULL OR e.ts < $2)
                    AND ($3::text IS NULL OR EXISTS (
                          SELECT 1 FROM {schema}.identities i JOIN {schema}.clicks c ON c.id = i.click_id
                           WHERE i.user_id = e.user_id AND c.campaign_id = $3))
                  ORDER BY e.ts, e.id"
            ),
            &[&from, &to, &campaign],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut counts = Rederived {
        ok: true,
        ..Rederived::default()
    };
    for (id, user) in ids {
        let tx = ctx.tx().await?;
        one_event(&tx, &ctx.principal, &schema, &id, &user, &mut counts).await?;
        tx.commit().await?;
    }
    Ok(Reply::typed(200, &counts))
}

async fn one_event(
    tx: &Tx,
    who: &crate::access::Principal,
    schema: &Schema,
    id: &str,
    user: &str,
    counts: &mut Rederived,
) -> Result<(), ApiError> {
    // The user's attribution lock (an event's user never changes) before the event's row
    // lock, in the order identify takes them (the lock, then the backlog's rows): the replay
    // reads and writes the user's history with no event lane batch or identify in between.
    store::lock_user(&**tx, schema, user).await?;
    let Some(r) = tx
        .query_opt("SELECT id, event_id, type, value, currency, ts, user_id FROM events WHERE id = $1 FOR UPDATE", &[&id])
        .await?
    else {
        return Ok(());
    };
    counts.events += 1;
    let event = EventFacts {
        id: r.get(0),
        event_id: r.get(1),
        kind: r.get(2),
        value: r.get(3),
        currency: Currency::parse(r.get::<_, &str>(4))?,
        ts: r.get(5),
        user_id: r.get(6),
    };
    let (has_identity, candidates) =
        store::candidates(&**tx, schema, &event.user_id, Some((&event.id, event.ts))).await?;
    let outcome = attribute(has_identity, &candidates, event.ts);
    let plan = Plan::new(&event, &outcome, Utc::now());

    // What stands now: live attributions and the commissions priced from them.
    let current: Vec<(String, String, Decimal)> = tx
        .query(
            "SELECT model, click_id, weight FROM attributions WHERE event_id = $1 AND superseded_at IS NULL ORDER BY click_id",
            &[&event.id],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get::<_, Decimal>(2).normalize()))
        .collect();
    let live: Vec<(String, String, Decimal, String, i32)> = tx
        .query(
            "SELECT id, status, amount, currency, rule_index FROM commissions
              WHERE event_id = $1 AND adjusts_commission_id IS NULL AND status <> 'reversed' ORDER BY id",
            &[&event.id],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let mut wanted: Vec<(String, String, Decimal)> = plan
        .attributions
        .iter()
        .map(|a| {
            (
                a.model.as_str().to_string(),
                a.click_id.clone(),
                a.weight.normalize(),
            )
        })
        .collect();
    wanted.sort_by(|a, b| a.1.cmp(&b.1));
    let mut live_amounts: Vec<(Decimal, String, i32)> =
        live.iter().map(|c| (c.2, c.3.clone(), c.4)).collect();
    let mut want_amounts: Vec<(Decimal, String, i32)> = plan
        .commissions
        .iter()
        .map(|c| (c.amount, c.currency.code().to_string(), c.rule_index as i32))
        .collect();
    live_amounts.sort();
    want_amounts.sort();
    if wanted == current && live_amounts == want_amounts {
        return Ok(());
    }
    if live.iter().any(|c| c.1 == "approved" || c.1 == "paid") {
        counts.skipped += 1;
        return Ok(());
    }
    // The old attributions leave the rollups (with their share of the event's refunds);
    // the new ones enter them in `attach`.
    let old = rollups::live_touches(tx, &event.id).await?;
    let refunded = rollups::refunded_sum(tx, &event.event_id).await?;
    tx.rollups(|d| d.event(&event.counted(), &old, refunded, -1));
    for (cid, ..) in &live {
        commissions::transition(tx, cid, "reversed", who, Some("rederived"), None).await?;
        counts.reversed += 1;
    }
    tx.execute(
        "UPDATE attributions SET superseded_at = now() WHERE event_id = $1 AND superseded_at IS NULL",
        &[&event.id],
    )
    .await?;
    tx.execute("DELETE FROM first_events WHERE event_id = $1", &[&event.id])
        .await?;
    if let Outcome::Attributed { .. } = outcome {
        let mut plan = plan;
        store::attach(tx, schema, &event, &mut plan).await?;
        counts.created += plan.commissions.len() as u64;
    } else {
        tx.execute(
            "UPDATE events SET attribution_status = $2 WHERE id = $1",
            &[&event.id, &outcome.status()],
        )
        .await?;
    }
    Ok(())
}
