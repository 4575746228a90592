//! The per-day rollups the reports read instead of raw rows: `click_rollups` (one row per
//! partner, UTC day and link), and the event side and money ([`Deltas`], [`super::deltas`]): `event_rollups`
//! (per partner, event day, link, campaign and currency), `user_rollups` (per partner, day
//! and user: the funnel's distinct users) and `commission_rollups` (per partner, accrual
//! day, campaign and currency, one amount per status).
//!
//! They are written in the transaction of what they count. A click batch adds its counts
//! with one multi-row upsert (aggregated in memory first, so a batch of any size adds one
//! statement per 64 (partner, day, link) keys), and identify adds an identity to its click's
//! row in its own transaction. Upserts add (`SET clicks = click_rollups.clicks +
//! excluded.clicks`), so concurrent batches commute; their keys are sorted, so two batches
//! lock rows in the same order and never deadlock. (Two batches of one hot link in flight
//! at once do queue on its row until the first commits; striping the row into slots was
//! tried and measured no different on the bench's one-link click load — 0.62–0.65× against
//! 0.63× of pgbench on the same busy box — so the schema keeps one row per key.) Clicks are
//! immutable and their flag is decided when they are written, so refunds, clawbacks and
//! rederive (which change only attributions and commissions) never move a click rollup.
//!
//! The event-side and money rollups change with attributions and commissions: the event
//! lane's batch adds its events and commissions ([`crate::attribution::store::derived_rows`]);
//! a refund adds its share to the refunded event's touches; rederive takes the old
//! attributions out and `attach` puts the new ones in (as identify's backlog does); every
//! ledger transition moves its amount from one status to the other. Each writer gathers
//! [`Deltas`] in memory (their credit rules are in [`super::deltas`]) and writes them as its
//! transaction's last statements (the lane with its batch, others at
//! [`crate::sql::Tx::commit`], from the transaction's own [`Deltas`], [`Tx::rollups`]):
//! event, user, commission rollups in that order, keys sorted, so no two writers wait on
//! each other's rollup rows in a cycle.

pub use super::deltas::{Counted, Deltas, Touch};
use crate::{
    error::ApiError,
    sql::{val, Rows, Schema, Tx},
};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// `(partner, day, link)`: the rollup key, in the order rows are locked.
type Key = (String, NaiveDate, String);

/// A batch's click counts per rollup key.
#[derive(Default, Debug)]
pub struct ClickCounts {
    /// key → (campaign, unflagged clicks, flagged clicks)
    counts: BTreeMap<Key, (String, i64, i64)>,
}

impl ClickCounts {
    /// Counts one click of `link` (of `campaign`, by `partner`) on `day`.
    pub fn add(
        &mut self,
        partner: &str,
        link: &str,
        campaign: &str,
        day: NaiveDate,
        flagged: bool,
    ) {
        let e = self
            .counts
            .entry((partner.to_string(), day, link.to_string()))
            .or_insert_with(|| (campaign.to_string(), 0, 0));
        match flagged {
            true => e.2 += 1,
            false => e.1 += 1,
        }
    }

    /// The upserts adding these counts, keys in sorted order.
    pub fn upserts(&self, schema: &Schema) -> Rows {
        let mut rows = Rows::new(
            schema,
            "click_rollups",
            "partner_id, day, link_id, campaign_id, clicks, flagged_clicks",
            &["text", "date", "text", "text", "int8", "int8"],
            "ON CONFLICT (partner_id, day, link_id) DO UPDATE \
             SET clicks = click_rollups.clicks + excluded.clicks, \
                 flagged_clicks = click_rollups.flagged_clicks + excluded.flagged_clicks",
        );
        for ((partner, day, link), (campaign, clicks, flagged)) in &self.counts {
            rows.push(vec![
                val(partner.clone()),
                val(*day),
                val(link.clone()),
                val(campaign.clone()),
                val(*clicks),
                val(*flagged),
            ]);
        }
        rows
    }

    #[cfg(test)]
    fn get(&self, partner: &str, day: NaiveDate, link: &str) -> Option<(i64, i64)> {
        self.counts
            .get(&(partner.to_string(), day, link.to_string()))
            .map(|(_, c, f)| (*c, *f))
    }
}

/// Counts a new identity on its click's rollup row (identify's transaction). Identities of
/// flagged clicks are not counted: the funnel starts at the unflagged clicks.
pub async fn add_identity(tx: &Tx, click_id: &str) -> Result<(), ApiError> {
    let click = tx
        .query_opt(
            "SELECT partner_id, (ts AT TIME ZONE 'UTC')::date AS day, link_id, campaign_id
               FROM clicks WHERE id = $1 AND fraud_flag IS NULL",
            &[&click_id],
        )
        .await?;
    let Some(c) = click else {
        return Ok(());
    };
    let (partner, day, link, campaign): (String, NaiveDate, String, String) =
        (c.get(0), c.get(1), c.get(2), c.get(3));
    tx.execute(
        "INSERT INTO click_rollups (partner_id, day, link_id, campaign_id, identities)
         VALUES ($1, $2, $3, $4, 1)
         ON CONFLICT (partner_id, day, link_id) DO UPDATE SET identities = click_rollups.identities + 1",
        &[&partner, &day, &link, &campaign],
    )
    .await?;
    Ok(())
}

// ------------------------------------------------------------------ events and money

/// Whether the event lane writes its rollups: always, except in a worker started with
/// `OP_BENCH_NO_EVENT_ROLLUPS=1` — the benchmark's "without" side of event ingest
/// (BENCHMARKS.md), whose reports are then wrong; nothing else sets it.
static EVENT_LANE_ROLLUPS: AtomicBool = AtomicBool::new(true);

/// Reads `OP_BENCH_NO_EVENT_ROLLUPS` (once, at start): `0`/`1` like every switch.
pub fn configure_from_env() -> Result<(), String> {
    let off = op_control::env::switch("OP_BENCH_NO_EVENT_ROLLUPS", false)?;
    if off {
        tracing::warn!("OP_BENCH_NO_EVENT_ROLLUPS: the event lane writes no reporting rollups (benchmarks only)");
    }
    EVENT_LANE_ROLLUPS.store(!off, Ordering::Relaxed);
    Ok(())
}

/// See [`configure_from_env`].
pub fn in_event_lane() -> bool {
    EVENT_LANE_ROLLUPS.load(Ordering::Relaxed)
}

/// The live attributions of event `id` as rollup touches (the link from the touched click).
pub async fn live_touches(tx: &Tx, event_id: &str) -> Result<Vec<Touch>, ApiError> {
    let rows = tx
        .query(
            "SELECT a.partner_id, c.link_id, a.campaign_id, a.weight
               FROM attributions a JOIN clicks c ON c.id = a.click_id
              WHERE a.event_id = $1 AND a.superseded_at IS NULL",
            &[&event_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Touch {
            partner: r.get(0),
            link: r.get(1),
            campaign: r.get(2),
            weight: r.get(3),
        })
        .collect())
}

/// The sum of the refunds of the event whose client id is `client_event_id` (`None` without
/// refunds that have a value).
pub async fn refunded_sum(tx: &Tx, client_event_id: &str) -> Result<Option<Decimal>, ApiError> {
    Ok(tx
        .query_one(
            "SELECT sum(value) FROM events WHERE refund_of = $1 AND value IS NOT NULL",
            &[&client_event_id],
        )
        .await?
        .get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_counted_once_per_key() {
        let d = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
        let mut c = ClickCounts::default();
        c.add("p1", "l1", "c", d, false);
        c.add("p1", "l1", "c", d, false);
        c.add("p1", "l1", "c", d, true);
        c.add("p2", "l2", "c", d, false);
        assert_eq!(c.get("p1", d, "l1"), Some((2, 1)));
        assert_eq!(c.get("p2", d, "l2"), Some((1, 0)));
        assert_eq!(c.counts.len(), 2);
        let keys: Vec<&Key> = c.counts.keys().collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "rows are locked in key order");
    }
}
