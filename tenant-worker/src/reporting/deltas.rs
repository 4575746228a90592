//! The changes a transaction makes to the event-side and money rollups ([`Deltas`]):
//! `event_rollups` (per partner, event day, link, campaign and currency), `user_rollups`
//! (per partner, day and user: the funnel's distinct users) and `commission_rollups` (per
//! partner, accrual day, campaign and currency, one amount per status), with the credit
//! rules every writer shares — the event lane, refunds, rederive, identify's backlog, the
//! ledger transitions and the import. Pure: no I/O; a [`crate::sql::Tx`] carries one and
//! writes it as its last statements when it commits (the lane writes its batch's itself).

use crate::sql::rows::{val, Rows};
use chrono::{DateTime, NaiveDate, Utc};
use op_control::schema::Schema;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashSet};

/// Event types that count as leads (the spec's default; no per-tenant setting yet).
pub const LEAD_TYPES: [&str; 2] = ["signup", "trial_started"];

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
}
