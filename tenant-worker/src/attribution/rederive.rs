//! `POST /attribution/rederive {campaignId?, from?, to?}`: re-runs attribution over
//! historical events (e.g. after a campaign changed its model) without double-paying.
//!
//! Per event, in a short transaction of its own: if the current result is what the engine
//! gives now, nothing changes (so a second run is a no-op); if any of its commissions is
//! approved or paid, the event is skipped; otherwise its accrued commissions are reversed,
//! its attributions superseded, and the new ones written.

use super::{
    attribute,
    input::parse_ts,
    plan::{EventFacts, Plan},
    store, Outcome,
};
use crate::sql::{Schema, Tx};
use crate::{
    commissions,
    context::{Ctx, Reply},
    error::ApiError,
    money::Currency,
};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RederiveBody {
    campaign_id: Option<String>,
    program_id: Option<String>,
    from: Option<Value>,
    to: Option<Value>,
}

#[derive(Default)]
struct Counts {
    events: u64,
    reversed: u64,
    created: u64,
    skipped: u64,
}

pub async fn rederive(ctx: Ctx) -> Result<Reply, ApiError> {
    let body: RederiveBody = ctx.json()?;
    let campaign = body.campaign_id.or(body.program_id);
    let from: Option<DateTime<Utc>> = parse_ts(body.from.as_ref(), "from")?;
    let to: Option<DateTime<Utc>> = parse_ts(body.to.as_ref(), "to")?;
    let schema = ctx.tenant()?.schema.clone();
    if let Some(c) = &campaign {
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
    let ids: Vec<String> = ctx
        .read(
            &format!(
                "SELECT e.id FROM {schema}.events e
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
        .map(|r| r.get(0))
        .collect();
    let mut counts = Counts::default();
    for id in ids {
        let tx = ctx.tx().await?;
        one_event(&tx, &ctx.principal, &schema, &id, &mut counts).await?;
        tx.commit().await?;
    }
    Ok(Reply::ok(json!({
        "ok": true,
        "events": counts.events,
        "reversed": counts.reversed,
        "created": counts.created,
        "skipped": counts.skipped,
    })))
}

async fn one_event(
    tx: &Tx,
    who: &crate::access::Principal,
    schema: &Schema,
    id: &str,
    counts: &mut Counts,
) -> Result<(), ApiError> {
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
        store::candidates(&**tx, schema, &event.user_id, Some(&event.id)).await?;
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
    let live: Vec<(String, String, Decimal, String)> = tx
        .query(
            "SELECT id, status, amount, currency FROM commissions
              WHERE event_id = $1 AND adjusts_commission_id IS NULL AND status <> 'reversed' ORDER BY id",
            &[&event.id],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
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
    let mut live_amounts: Vec<(Decimal, String)> =
        live.iter().map(|c| (c.2, c.3.clone())).collect();
    let mut want_amounts: Vec<(Decimal, String)> = plan
        .commissions
        .iter()
        .map(|c| (c.amount, c.currency.code().to_string()))
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
    for (cid, ..) in &live {
        commissions::transition(tx, cid, "reversed", who, Some("rederived"), None).await?;
        counts.reversed += 1;
    }
    tx.execute(
        "UPDATE attributions SET superseded_at = now() WHERE event_id = $1 AND superseded_at IS NULL",
        &[&event.id],
    )
    .await?;
    if let Outcome::Attributed { .. } = outcome {
        let mut plan = plan;
        store::attach(&**tx, schema, &event, &mut plan).await?;
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
