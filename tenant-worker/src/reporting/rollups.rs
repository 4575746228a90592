//! The per-day rollups the reports read instead of raw rows: `click_rollups` (one row per
//! partner, UTC day and link), and the event side and money ([`Deltas`]): `event_rollups`
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
//! [`Deltas`] in memory and writes them as its transaction's last statements (the lane with
//! its batch, others at [`crate::sql::Tx::commit`], as its [`LastWrites`]): event, user, commission rollups in that
//! order, keys sorted, so no two writers wait on each other's rollup rows in a cycle.

use super::LEAD_TYPES;
use crate::{
    error::ApiError,
    sql::{val, LastWrites, Rows, Schema, Tx},
};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashSet};
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

/// `(partner, day, link, campaign, currency)`: an event rollup's key.
type EventKey = (String, NaiveDate, String, String, String);
/// `(partner, day, user)`: a user rollup's key.
type UserKey = (String, NaiveDate, String);
/// `(partner, accrual day, campaign, currency)`: a commission rollup's key.
type CommissionKey = (String, NaiveDate, String, String);

/// The changes to one `event_rollups` row.
#[derive(Default, Debug, Clone, PartialEq)]
struct EventDelta {
    events: i64,
    leads: i64,
    sales: i64,
    campaign_leads: i64,
    campaign_sales: i64,
    link_events: i64,
    tenant_events: i64,
    revenue: Decimal,
    refunded: Decimal,
}

impl EventDelta {
    fn is_zero(&self) -> bool {
        *self == EventDelta::default()
    }
}

/// The statuses of `commission_rollups`' columns, in column order.
const STATUS_COLUMNS: [&str; 4] = ["accrued", "approved", "paid", "reversed"];

/// One touch of an event as the rollups see it: the credited partner, the touched
/// click's link and campaign, and the touch's weight.
#[derive(Debug, Clone)]
pub struct Touch {
    pub partner: String,
    pub link: String,
    pub campaign: String,
    pub weight: Decimal,
}

/// What the rollups need of an event.
#[derive(Debug, Clone, Copy)]
pub struct Counted<'a> {
    pub kind: &'a str,
    pub value: Option<Decimal>,
    pub currency: &'a str,
    pub ts: DateTime<Utc>,
    pub user: &'a str,
}

impl Counted<'_> {
    fn day(&self) -> NaiveDate {
        self.ts.date_naive()
    }

    /// One of the tenant's lead types.
    pub fn is_lead(&self) -> bool {
        LEAD_TYPES.contains(&self.kind)
    }

    /// A sale: a positive value that is not a refund.
    pub fn is_sale(&self) -> bool {
        self.value.is_some_and(|v| v > Decimal::ZERO)
            && !matches!(self.kind, "refund" | "chargeback")
    }
}

/// The changes a transaction makes to the event, user and commission rollups, gathered in
/// memory and written at its end ([`Deltas::rows`]): one multi-row upsert per table (per
/// 64 keys), tables in one order and keys sorted, so writers lock rollup rows in one
/// global order and — as these are their last statements — never deadlock on them.
#[derive(Default, Debug)]
pub struct Deltas {
    events: BTreeMap<EventKey, EventDelta>,
    users: BTreeMap<UserKey, (i64, i64)>,
    commissions: BTreeMap<CommissionKey, [Decimal; 4]>,
}

/// The touches grouped by `(partner, link, campaign)` with their summed weights, in that
/// order: the order credits are given in (a partner's first group takes the partner's
/// count, the first group of each (partner, campaign) the campaign's, the very first the
/// tenant's; migration 0017 gives them the same way).
fn grouped(touches: &[Touch]) -> BTreeMap<(&str, &str, &str), Decimal> {
    let mut out: BTreeMap<(&str, &str, &str), Decimal> = BTreeMap::new();
    for t in touches {
        *out.entry((&t.partner, &t.link, &t.campaign)).or_default() += t.weight;
    }
    out
}

impl Deltas {
    /// Counts (`sign` 1) or uncounts (-1) an event credited through `touches` (its live
    /// attributions), whose refunds so far sum to `refunded`.
    pub fn event(&mut self, e: &Counted, touches: &[Touch], refunded: Option<Decimal>, sign: i64) {
        let (lead, sale) = (i64::from(e.is_lead()), i64::from(e.is_sale()));
        let day = e.day();
        let mut partners: HashSet<&str> = HashSet::new();
        let mut campaigns: HashSet<(&str, &str)> = HashSet::new();
        let mut first = true;
        let d = Decimal::from(sign);
        for ((partner, link, campaign), weight) in grouped(touches) {
            let row = self
                .events
                .entry((
                    partner.to_string(),
                    day,
                    link.to_string(),
                    campaign.to_string(),
                    e.currency.to_string(),
                ))
                .or_default();
            row.link_events += sign;
            if let Some(v) = e.value {
                row.revenue += d * v * weight;
            }
            if let Some(r) = refunded {
                row.refunded += d * r * weight;
            }
            if partners.insert(partner) {
                row.events += sign;
                row.leads += sign * lead;
                row.sales += sign * sale;
                if lead + sale > 0 {
                    let u = self
                        .users
                        .entry((partner.to_string(), day, e.user.to_string()))
                        .or_default();
                    u.0 += sign * lead;
                    u.1 += sign * sale;
                }
            }
            if campaigns.insert((partner, campaign)) {
                row.campaign_leads += sign * lead;
                row.campaign_sales += sign * sale;
            }
            if std::mem::take(&mut first) {
                row.tenant_events += sign;
            }
        }
    }

    /// A refund of `amount` of an event of `day` and `currency` credited through `touches`:
    /// each touch's share of it, refunded.
    pub fn refund(&mut self, day: NaiveDate, currency: &str, touches: &[Touch], amount: Decimal) {
        for ((partner, link, campaign), weight) in grouped(touches) {
            self.events
                .entry((
                    partner.to_string(),
                    day,
                    link.to_string(),
                    campaign.to_string(),
                    currency.to_string(),
                ))
                .or_default()
                .refunded += amount * weight;
        }
    }

    /// Adds `amount` under `status` to the commission rollup of (partner, accrual day,
    /// campaign, currency); a transition is a negative amount in the status it leaves and
    /// a positive one in the status it enters.
    pub fn commission(
        &mut self,
        partner: &str,
        accrued_at: DateTime<Utc>,
        campaign: &str,
        currency: &str,
        status: &str,
        amount: Decimal,
    ) {
        let Some(i) = STATUS_COLUMNS.iter().position(|s| *s == status) else {
            return;
        };
        self.commissions
            .entry((
                partner.to_string(),
                accrued_at.date_naive(),
                campaign.to_string(),
                currency.to_string(),
            ))
            .or_default()[i] += amount;
    }

    /// The upserts adding these changes: event, then user, then commission rollups, each
    /// in key order; keys whose changes cancel out are left out.
    pub fn rows(&self, schema: &Schema) -> Vec<Rows> {
        let mut events = Rows::new(
            schema,
            "event_rollups",
            "partner_id, day, link_id, campaign_id, currency, events, leads, sales, campaign_leads, \
             campaign_sales, link_events, tenant_events, revenue, refunded",
            &[
                "text", "date", "text", "text", "text", "int8", "int8", "int8", "int8", "int8", "int8",
                "int8", "numeric", "numeric",
            ],
            "ON CONFLICT (partner_id, day, link_id, campaign_id, currency) DO UPDATE \
             SET events = event_rollups.events + excluded.events, \
                 leads = event_rollups.leads + excluded.leads, \
                 sales = event_rollups.sales + excluded.sales, \
                 campaign_leads = event_rollups.campaign_leads + excluded.campaign_leads, \
                 campaign_sales = event_rollups.campaign_sales + excluded.campaign_sales, \
                 link_events = event_rollups.link_events + excluded.link_events, \
                 tenant_events = event_rollups.tenant_events + excluded.tenant_events, \
                 revenue = event_rollups.revenue + excluded.revenue, \
                 refunded = event_rollups.refunded + excluded.refunded",
        );
        for ((partner, day, link, campaign, currency), d) in &self.events {
            if d.is_zero() {
                continue;
            }
            events.push(vec![
                val(partner.clone()),
                val(*day),
                val(link.clone()),
                val(campaign.clone()),
                val(currency.clone()),
                val(d.events),
                val(d.leads),
                val(d.sales),
                val(d.campaign_leads),
                val(d.campaign_sales),
                val(d.link_events),
                val(d.tenant_events),
                val(d.revenue),
                val(d.refunded),
            ]);
        }
        let mut users = Rows::new(
            schema,
            "user_rollups",
            "partner_id, day, user_id, leads, sales",
            &["text", "date", "text", "int8", "int8"],
            "ON CONFLICT (partner_id, day, user_id) DO UPDATE \
             SET leads = user_rollups.leads + excluded.leads, \
                 sales = user_rollups.sales + excluded.sales",
        );
        for ((partner, day, user), (leads, sales)) in &self.users {
            if (*leads, *sales) == (0, 0) {
                continue;
            }
            users.push(vec![
                val(partner.clone()),
                val(*day),
                val(user.clone()),
                val(*leads),
                val(*sales),
            ]);
        }
        let mut commissions = Rows::new(
            schema,
            "commission_rollups",
            "partner_id, day, campaign_id, currency, accrued, approved, paid, reversed",
            &[
                "text", "date", "text", "text", "numeric", "numeric", "numeric", "numeric",
            ],
            "ON CONFLICT (partner_id, day, campaign_id, currency) DO UPDATE \
             SET accrued = commission_rollups.accrued + excluded.accrued, \
                 approved = commission_rollups.approved + excluded.approved, \
                 paid = commission_rollups.paid + excluded.paid, \
                 reversed = commission_rollups.reversed + excluded.reversed",
        );
        for ((partner, day, campaign, currency), amounts) in &self.commissions {
            if amounts.iter().all(Decimal::is_zero) {
                continue;
            }
            commissions.push(vec![
                val(partner.clone()),
                val(*day),
                val(campaign.clone()),
                val(currency.clone()),
                val(amounts[0]),
                val(amounts[1]),
                val(amounts[2]),
                val(amounts[3]),
            ]);
        }
        vec![events, users, commissions]
    }
}

impl LastWrites for Deltas {
    fn rows(&self, schema: &Schema) -> Vec<Rows> {
        Deltas::rows(self, schema)
    }

    fn as_any(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// Adds to the rollup changes of `tx`, written as its last statements when it commits.
pub fn of(tx: &Tx, f: impl FnOnce(&mut Deltas)) {
    tx.last_writes(f);
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

    fn touch(partner: &str, link: &str, campaign: &str, weight: &str) -> Touch {
        Touch {
            partner: partner.into(),
            link: link.into(),
            campaign: campaign.into(),
            weight: weight.parse().unwrap(),
        }
    }

    #[test]
    fn an_event_is_counted_once_per_level_and_uncounting_cancels_it() {
        let ts = "2026-03-04T10:00:00Z".parse().unwrap();
        let e = Counted {
            kind: "signup",
            value: Some("80".parse().unwrap()),
            currency: "USD",
            ts,
            user: "u1",
        };
        // P1 through two links of campaign A and one of B; P2 through one link.
        let touches = [
            touch("p2", "l9", "a", "0.25"),
            touch("p1", "l2", "a", "0.25"),
            touch("p1", "l1", "a", "0.25"),
            touch("p1", "l3", "b", "0.25"),
        ];
        let mut d = Deltas::default();
        d.event(&e, &touches, Some("8".parse().unwrap()), 1);
        let day = NaiveDate::from_ymd_opt(2026, 3, 4).unwrap();
        let row = |p: &str, l: &str, c: &str| {
            d.events[&(p.into(), day, l.into(), c.into(), "USD".into())].clone()
        };
        let sum = |f: fn(&EventDelta) -> i64| d.events.values().map(f).sum::<i64>();
        assert_eq!(sum(|r| r.events), 2, "once per partner");
        assert_eq!(sum(|r| r.tenant_events), 1, "once for the tenant");
        assert_eq!(sum(|r| r.link_events), 4, "once per link");
        assert_eq!(sum(|r| r.campaign_leads), 3, "once per (partner, campaign)");
        assert_eq!(sum(|r| r.leads), 2);
        assert_eq!(
            sum(|r| r.sales),
            2,
            "a value above 0 makes any event a sale, a signup too"
        );
        // The first group of each level, in (partner, link, campaign) order, takes the credit.
        assert_eq!(
            (
                row("p1", "l1", "a").events,
                row("p1", "l1", "a").tenant_events
            ),
            (1, 1)
        );
        assert_eq!(
            (
                row("p1", "l2", "a").events,
                row("p1", "l2", "a").campaign_leads
            ),
            (0, 0)
        );
        assert_eq!(row("p1", "l3", "b").campaign_leads, 1);
        assert_eq!(row("p2", "l9", "a").events, 1);
        assert_eq!(
            row("p1", "l2", "a").revenue,
            "20".parse::<Decimal>().unwrap()
        );
        assert_eq!(
            row("p1", "l2", "a").refunded,
            "2".parse::<Decimal>().unwrap()
        );
        assert_eq!(d.users.len(), 2, "one user row per partner");
        // Taking the same event out leaves nothing to write.
        d.event(&e, &touches, Some("8".parse().unwrap()), -1);
        let schema = Schema::of_tenant("01M9600KQQS5XH9W47PE351TAR").unwrap();
        assert!(d.rows(&schema).iter().all(|r| r.statements().is_empty()));
    }

    #[test]
    fn a_transition_moves_an_amount_between_statuses() {
        let at = "2026-03-04T10:00:00Z".parse().unwrap();
        let mut d = Deltas::default();
        let amount: Decimal = "12.5".parse().unwrap();
        d.commission("p1", at, "a", "EUR", "accrued", amount);
        d.commission("p1", at, "a", "EUR", "accrued", -amount);
        d.commission("p1", at, "a", "EUR", "approved", amount);
        let day = NaiveDate::from_ymd_opt(2026, 3, 4).unwrap();
        assert_eq!(
            d.commissions[&("p1".into(), day, "a".into(), "EUR".into())],
            [Decimal::ZERO, amount, Decimal::ZERO, Decimal::ZERO]
        );
    }

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
