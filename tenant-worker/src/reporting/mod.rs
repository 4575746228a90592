//! Reporting (specs/reporting.md): a partner's dashboard, time series, attributed events,
//! customers, click breakdowns and funnel, and the admin overview.
//!
//! Where each figure comes from:
//! - clicks (unflagged and flagged) and identities: the per-day click rollups
//!   ([`rollups`]), never the raw clicks (a million rows for a large tenant);
//! - attributed events, leads, sales, revenue and refunded: the per-day event rollups
//!   (`event_rollups`, per partner, link, campaign and currency, with a distinct count per
//!   level), kept by the event lane, refunds, rederive and identify in their transactions;
//! - signups and paid users (funnel): `user_rollups`, one row per partner, day and user,
//!   counted distinct over the window's rows;
//! - commissions per status and earnings: `commission_rollups`, moved by every ledger
//!   transition in its transaction;
//! - breakdowns: the partner's enriched clicks of the window (`clicks_partner_ts_idx`);
//! - attributed events (list) and customers: the partner's live attributions
//!   (`attributions_partner_idx`).
//!
//! Money is per currency, exact (`rust_decimal`), rounded half-even to the currency's minor
//! unit once, at the end, and never summed across currencies ([`MoneyByCurrency`]).

pub mod deltas;
pub mod rollups;
pub mod window;

use crate::{
    context::{Ctx, Reply, Timestamp},
    error::{ApiError, ErrorCode},
    money::{Currency, DecimalString},
    openapi::Op,
    pagination::{encode_cursor, PageRequest},
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use tokio_postgres::Row;
use window::{rate, Bucket, Window};

const STATUSES: [&str; 4] = ["accrued", "approved", "paid", "reversed"];

/// An amount in one currency.
#[derive(Serialize, JsonSchema, Debug, Clone, PartialEq)]
pub struct MoneyAmount {
    /// ISO 4217.
    currency: String,
    amount: DecimalString,
}

/// Exact sums per currency; rounded half-even to each currency's minor unit when shown.
#[derive(Default, Debug, Clone)]
pub struct MoneyByCurrency(BTreeMap<String, Decimal>);

impl MoneyByCurrency {
    pub fn add(&mut self, currency: &str, d: Decimal) {
        *self.0.entry(currency.to_string()).or_default() += d;
    }

    fn merge(&mut self, other: &MoneyByCurrency) {
        for (c, d) in &other.0 {
            self.add(c, *d);
        }
    }

    /// `[{currency, amount}]`, currencies in alphabetical order; a currency whose exact sum
    /// is 0 is left out (as if it had no rows: rollup rows that changes cancelled out).
    pub fn amounts(&self) -> Vec<MoneyAmount> {
        self.0
            .iter()
            .filter(|(_, d)| !d.is_zero())
            .map(|(c, d)| MoneyAmount {
                currency: c.clone(),
                amount: match Currency::parse(c) {
                    Ok(cur) => DecimalString(cur.format(cur.round(*d))),
                    Err(_) => DecimalString(d.normalize().to_string()),
                },
            })
            .collect()
    }

    /// The one currency's amount as a string, `None` unless exactly one currency.
    fn single(&self) -> Option<DecimalString> {
        match self.amounts().as_slice() {
            [one] => Some(one.amount.clone()),
            _ => None,
        }
    }
}

/// The request's partner (`:id`), which must exist (`404`); access was checked by the route.
pub async fn partner(ctx: &Ctx) -> Result<String, ApiError> {
    let id = ctx.id("partner")?;
    exists(ctx, &id).await?;
    Ok(id)
}

/// `404` unless the partner `id` exists.
async fn exists(ctx: &Ctx, id: &str) -> Result<(), ApiError> {
    let sql = format!("SELECT 1 FROM {}.partners WHERE id = $1", ctx.schema()?);
    ctx.read_one(&sql, &[&id])
        .await?
        .ok_or_else(|| ApiError::no_such("partner", id))?;
    Ok(())
}

fn window(ctx: &Ctx) -> Result<Window, ApiError> {
    Window::parse(
        ctx.query_value("since").as_deref(),
        ctx.query_value("until").as_deref(),
        Utc::now().date_naive(),
    )
}

/// `campaignId` or `programId` (the same filter); a malformed id matches nothing.
fn campaign_filter(ctx: &Ctx) -> Result<Option<String>, ApiError> {
    let v = ctx
        .query_value("campaignId")
        .or_else(|| ctx.query_value("programId"));
    match v {
        Some(v) if v.contains('\0') => {
            Err(ApiError::invalid_query("campaignId must not contain NUL"))
        }
        v => Ok(v),
    }
}

/// A partner's event figures of a window, from `event_rollups`: (distinct attributed
/// events, revenue, refunded).
async fn event_totals(
    ctx: &Ctx,
    partner: &str,
    w: &Window,
) -> Result<(i64, MoneyByCurrency, MoneyByCurrency), ApiError> {
    let sql = format!(
        "SELECT currency, sum(events)::int8 AS events, sum(revenue) AS revenue, sum(refunded) AS refunded
           FROM {}.event_rollups WHERE partner_id = $1 AND day >= $2 AND day <= $3
          GROUP BY currency",
        ctx.schema()?
    );
    let rows = ctx.read(&sql, &[&partner, &w.since, &w.until]).await?;
    let (mut n, mut revenue, mut refunded) =
        (0, MoneyByCurrency::default(), MoneyByCurrency::default());
    for r in &rows {
        let currency: &str = r.get("currency");
        n += r.get::<_, i64>("events");
        revenue.add(currency, r.get("revenue"));
        refunded.add(currency, r.get("refunded"));
    }
    Ok((n, revenue, refunded))
}

/// A partner's commissions of a window per status and currency, from `commission_rollups`
/// (by accrual day).
async fn commission_totals(
    ctx: &Ctx,
    partner: &str,
    w: &Window,
) -> Result<BTreeMap<String, MoneyByCurrency>, ApiError> {
    let sql = format!(
        "SELECT currency, sum(accrued) AS accrued, sum(approved) AS approved, sum(paid) AS paid,
                sum(reversed) AS reversed
           FROM {}.commission_rollups WHERE partner_id = $1 AND day >= $2 AND day <= $3
          GROUP BY currency",
        ctx.schema()?
    );
    let rows = ctx.read(&sql, &[&partner, &w.since, &w.until]).await?;
    let mut out = by_status(&[]);
    for r in &rows {
        add_statuses(&mut out, r);
    }
    Ok(out)
}

/// Adds a rollup row's `accrued`, `approved`, `paid`, `reversed` sums (in its `currency`).
fn add_statuses(out: &mut BTreeMap<String, MoneyByCurrency>, r: &Row) {
    let currency: &str = r.get("currency");
    for status in STATUSES {
        out.entry(status.to_string())
            .or_default()
            .add(currency, r.get(status));
    }
}

/// (unflagged clicks, flagged clicks, identities) of the partner's rollups in the window.
async fn click_totals(ctx: &Ctx, partner: &str, w: &Window) -> Result<(i64, i64, i64), ApiError> {
    let sql = format!(
        "SELECT coalesce(sum(clicks), 0)::int8, coalesce(sum(flagged_clicks), 0)::int8,
                coalesce(sum(identities), 0)::int8
           FROM {}.click_rollups WHERE partner_id = $1 AND day >= $2 AND day <= $3",
        ctx.schema()?
    );
    let r = ctx
        .read_one(&sql, &[&partner, &w.since, &w.until])
        .await?
        .ok_or_else(ApiError::internal)?;
    Ok((r.get(0), r.get(1), r.get(2)))
}

/// `{status: MoneyByCurrency}` of commission rows `(status, currency, sum)`.
fn by_status(rows: &[Row]) -> BTreeMap<String, MoneyByCurrency> {
    let mut out: BTreeMap<String, MoneyByCurrency> = STATUSES
        .iter()
        .map(|s| (s.to_string(), MoneyByCurrency::default()))
        .collect();
    for r in rows {
        let status: String = r.get("status");
        out.entry(status)
            .or_default()
            .add(r.get::<_, &str>("currency"), r.get("amount"));
    }
    out
}

/// Commissions per status, each `[{currency, amount}]` (refund adjustments and clawbacks
/// are negative amounts in the status they are in).
#[derive(Serialize, JsonSchema, Default)]
pub struct CommissionByStatus {
    accrued: Vec<MoneyAmount>,
    approved: Vec<MoneyAmount>,
    paid: Vec<MoneyAmount>,
    reversed: Vec<MoneyAmount>,
}

impl CommissionByStatus {
    fn of(m: &BTreeMap<String, MoneyByCurrency>) -> CommissionByStatus {
        let get = |s: &str| m.get(s).map(MoneyByCurrency::amounts).unwrap_or_default();
        CommissionByStatus {
            accrued: get("accrued"),
            approved: get("approved"),
            paid: get("paid"),
            reversed: get("reversed"),
        }
    }
}

// ---------------------------------------------------------------- dashboard

/// `GET /partners/:id/dashboard`
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Dashboard {
    partner_id: String,
    /// The window's first day (UTC).
    since: NaiveDate,
    /// The window's last day (UTC).
    until: NaiveDate,
    /// Unflagged clicks.
    clicks: i64,
    /// Clicks flagged `revoked` or `velocity` (never attributed).
    flagged_clicks: i64,
    /// Distinct events attributed to the partner (live attributions), by event time.
    attributed_events: i64,
    /// Σ(value × weight) over those events, gross of refunds, as a decimal string when one
    /// currency is involved, else null (see `revenueByCurrency`).
    attributed_revenue: Option<DecimalString>,
    revenue_by_currency: Vec<MoneyAmount>,
    /// The refunded part of that revenue (refunds of those events × the same weights).
    refunded: Vec<MoneyAmount>,
    /// Commissions accrued in the window, per status and currency.
    commission_by_status: CommissionByStatus,
    /// Per link (with `includeLinks=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    links: Option<Vec<LinkFigures>>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct LinkFigures {
    link_key: String,
    link_id: String,
    clicks: i64,
    flagged_clicks: i64,
    attributed_events: i64,
    revenue_by_currency: Vec<MoneyAmount>,
}

fn window_params(op: Op) -> Op {
    op.query(
        "since",
        "The window's first day (`YYYY-MM-DD` or an ISO 8601 time, taken as its UTC day). Default: 29 days before `until`.",
        json!({"type": "string"}),
    )
    .query(
        "until",
        "The window's last day, included (default today, UTC). At most 731 days from `since`; `since` after `until` is `400 invalid_query`.",
        json!({"type": "string"}),
    )
}

/// A per-partner report: the window, and `404` for an unknown partner.
fn partner_report(op: Op) -> Op {
    window_params(op).errors(404, &[ErrorCode::NotFound])
}

pub fn dashboard_doc() -> Op {
    partner_report(Op::new("A partner's dashboard"))
        .describe("Clicks (from the daily rollups), attributed events and revenue per currency, refunds and commissions per status over a window of whole UTC days. Admins, `partners:read` keys, or the partner itself.")
        .query("includeLinks", "`true` adds one row per link of the partner.", json!({"type": "string", "enum": ["true", "false", "1", "0"]}))
        .ok::<Dashboard>(200, "The partner's figures.")
}

fn flag(ctx: &Ctx, name: &str) -> Result<bool, ApiError> {
    match ctx.query_value(name).as_deref() {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(_) => Err(ApiError::invalid_query(format!(
            "{name} must be true or false"
        ))),
    }
}

pub async fn dashboard(ctx: Ctx) -> Result<Reply, ApiError> {
    let w = window(&ctx)?;
    let include_links = flag(&ctx, "includeLinks")?;
    let partner = ctx.id("partner")?;
    // The partner's existence is checked beside the reads (one round trip less).
    let (_, clicks, (events, revenue, refunded), commissions) = futures::try_join!(
        exists(&ctx, &partner),
        click_totals(&ctx, &partner, &w),
        event_totals(&ctx, &partner, &w),
        commission_totals(&ctx, &partner, &w),
    )?;
    let links = match include_links {
        true => Some(link_figures(&ctx, &partner, &w).await?),
        false => None,
    };
    Ok(Reply::typed(
        200,
        &Dashboard {
            partner_id: partner,
            since: w.since,
            until: w.until,
            clicks: clicks.0,
            flagged_clicks: clicks.1,
            attributed_events: events,
            attributed_revenue: revenue.single(),
            revenue_by_currency: revenue.amounts(),
            refunded: refunded.amounts(),
            commission_by_status: CommissionByStatus::of(&commissions),
            links,
        },
    ))
}

async fn link_figures(ctx: &Ctx, partner: &str, w: &Window) -> Result<Vec<LinkFigures>, ApiError> {
    let s = ctx.schema()?;
    let links_sql =
        format!("SELECT id, link_key FROM {s}.links WHERE partner_id = $1 ORDER BY created_at, id");
    let clicks_sql = format!(
        "SELECT link_id, sum(clicks)::int8 AS clicks, sum(flagged_clicks)::int8 AS flagged
           FROM {s}.click_rollups WHERE partner_id = $1 AND day >= $2 AND day <= $3
          GROUP BY link_id"
    );
    // An event is counted on every link of the partner it touched (`link_events`).
    let events_sql = format!(
        "SELECT link_id, currency, sum(link_events)::int8 AS events, sum(revenue) AS revenue
           FROM {s}.event_rollups WHERE partner_id = $1 AND day >= $2 AND day <= $3
          GROUP BY link_id, currency"
    );
    let (links, clicks, events) = futures::try_join!(
        async { ctx.read(&links_sql, &[&partner]).await },
        async { ctx.read(&clicks_sql, &[&partner, &w.since, &w.until]).await },
        async { ctx.read(&events_sql, &[&partner, &w.since, &w.until]).await },
    )?;
    let clicks: HashMap<String, (i64, i64)> = clicks
        .iter()
        .map(|r| (r.get("link_id"), (r.get("clicks"), r.get("flagged"))))
        .collect();
    let mut per_link: HashMap<String, (i64, MoneyByCurrency)> = HashMap::new();
    for r in &events {
        let e = per_link.entry(r.get("link_id")).or_default();
        e.0 += r.get::<_, i64>("events");
        e.1.add(r.get::<_, &str>("currency"), r.get("revenue"));
    }
    Ok(links
        .iter()
        .map(|l| {
            let id: String = l.get("id");
            let (c, f) = clicks.get(&id).copied().unwrap_or_default();
            let (n, money) = per_link.remove(&id).unwrap_or_default();
            LinkFigures {
                link_key: l.get("link_key"),
                link_id: id,
                clicks: c,
                flagged_clicks: f,
                attributed_events: n,
                revenue_by_currency: money.amounts(),
            }
        })
        .collect())
}

// ---------------------------------------------------------------- time series

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct TimeSeries {
    partner_id: String,
    since: NaiveDate,
    until: NaiveDate,
    /// `day` or `week` (ISO weeks, from Monday).
    bucket: &'static str,
    /// Every bucket the window touches, oldest first, none left out.
    buckets: Vec<SeriesBucket>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct SeriesBucket {
    /// The bucket's first day (a Monday for weeks; the first week may begin before `since`,
    /// but only the window's days are counted).
    bucket: NaiveDate,
    /// Unflagged clicks.
    clicks: i64,
    /// Distinct attributed events of the lead types (`signup`, `trial_started`).
    leads: i64,
    /// Distinct attributed events with a value above 0 that are not refunds.
    sales: i64,
    /// Σ(value × weight) of the bucket's attributed events, per currency (gross).
    revenue: Vec<MoneyAmount>,
    /// Commissions accrued in the bucket that are not reversed (clawbacks netted), per currency.
    earnings: Vec<MoneyAmount>,
}

pub fn timeseries_doc() -> Op {
    partner_report(Op::new("A partner's time series"))
        .describe("Clicks, leads, sales, revenue and earnings per day or ISO week (dense buckets). `bucket` defaults to `week` over windows longer than 90 days, else `day`.")
        .query("bucket", "`day` or `week`.", json!({"type": "string", "enum": ["day", "week"]}))
        .query("campaignId", "Only this campaign's figures (`programId` is the same filter).", json!({"type": "string"}))
        .query("programId", "The same as `campaignId`.", json!({"type": "string"}))
        .ok::<TimeSeries>(200, "The buckets.")
}

pub async fn timeseries(ctx: Ctx) -> Result<Reply, ApiError> {
    let w = window(&ctx)?;
    let bucket = Bucket::parse(ctx.query_value("bucket").as_deref(), &w)?;
    let campaign = campaign_filter(&ctx)?;
    let partner = ctx.id("partner")?;
    let s = ctx.schema()?;
    let clicks_sql = format!(
        "SELECT day, sum(clicks)::int8 AS clicks FROM {s}.click_rollups
          WHERE partner_id = $1 AND day >= $2 AND day <= $3 AND ($4::text IS NULL OR campaign_id = $4)
          GROUP BY day"
    );
    // One campaign's events count once per campaign (`campaign_leads`), all of them once
    // per partner (`leads`).
    let (leads, sales) = match campaign {
        Some(_) => ("campaign_leads", "campaign_sales"),
        None => ("leads", "sales"),
    };
    let events_sql = format!(
        "SELECT day, currency, sum({leads})::int8 AS leads, sum({sales})::int8 AS sales, sum(revenue) AS revenue
           FROM {s}.event_rollups
          WHERE partner_id = $1 AND day >= $2 AND day <= $3 AND ($4::text IS NULL OR campaign_id = $4)
          GROUP BY day, currency"
    );
    let earnings_sql = format!(
        "SELECT day, currency, sum(accrued + approved + paid) AS amount FROM {s}.commission_rollups
          WHERE partner_id = $1 AND day >= $2 AND day <= $3 AND ($4::text IS NULL OR campaign_id = $4)
          GROUP BY day, currency"
    );
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
        [&partner, &w.since, &w.until, &campaign];
    let (_, clicks, events, earnings) = futures::try_join!(
        exists(&ctx, &partner),
        async { ctx.read(&clicks_sql, &params).await },
        async { ctx.read(&events_sql, &params).await },
        async { ctx.read(&earnings_sql, &params).await },
    )?;
    #[derive(Default)]
    struct Acc {
        clicks: i64,
        leads: i64,
        sales: i64,
        revenue: MoneyByCurrency,
        earnings: MoneyByCurrency,
    }
    let mut acc: BTreeMap<NaiveDate, Acc> = bucket
        .all(&w)
        .into_iter()
        .map(|b| (b, Acc::default()))
        .collect();
    for r in &clicks {
        if let Some(a) = acc.get_mut(&bucket.of(r.get("day"))) {
            a.clicks += r.get::<_, i64>("clicks");
        }
    }
    for r in &events {
        if let Some(a) = acc.get_mut(&bucket.of(r.get("day"))) {
            a.leads += r.get::<_, i64>("leads");
            a.sales += r.get::<_, i64>("sales");
            a.revenue
                .add(r.get::<_, &str>("currency"), r.get("revenue"));
        }
    }
    for r in &earnings {
        if let Some(a) = acc.get_mut(&bucket.of(r.get("day"))) {
            a.earnings
                .add(r.get::<_, &str>("currency"), r.get("amount"));
        }
    }
    Ok(Reply::typed(
        200,
        &TimeSeries {
            partner_id: partner,
            since: w.since,
            until: w.until,
            bucket: bucket.name(),
            buckets: acc
                .into_iter()
                .map(|(b, a)| SeriesBucket {
                    bucket: b,
                    clicks: a.clicks,
                    leads: a.leads,
                    sales: a.sales,
                    revenue: a.revenue.amounts(),
                    earnings: a.earnings.amounts(),
                })
                .collect(),
        },
    ))
}

// ---------------------------------------------------------------- funnel

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Funnel {
    partner_id: String,
    since: NaiveDate,
    until: NaiveDate,
    stages: FunnelStages,
    rates: FunnelRates,
    /// Σ(value × weight) of the window's attributed events, per currency.
    revenue: Vec<MoneyAmount>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct FunnelStages {
    /// Unflagged clicks of the window.
    clicks: i64,
    /// Identities stitched to those clicks (a click identified as two users counts twice).
    identities: i64,
    /// Distinct users with an attributed lead event (`signup`, `trial_started`) in the window.
    signups: i64,
    /// Distinct users with an attributed sale in the window.
    paid: i64,
}

/// Each in [0, 1], 4 decimals; null when its denominator is 0.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct FunnelRates {
    /// identities / clicks
    stitch_rate: Option<f64>,
    /// signups / identities
    signup_rate: Option<f64>,
    /// paid / signups
    paid_rate: Option<f64>,
    /// paid / clicks
    overall: Option<f64>,
}

pub fn funnel_doc() -> Op {
    partner_report(Op::new("A partner's funnel"))
        .describe("Clicks → identities → signups → paid over a window, with the rates between stages (capped at 1).")
        .ok::<Funnel>(200, "The funnel.")
}

pub async fn funnel(ctx: Ctx) -> Result<Reply, ApiError> {
    let w = window(&ctx)?;
    let partner = ctx.id("partner")?;
    // Distinct users cannot be summed from daily counts: the window's `user_rollups` rows
    // (one per partner, day and user with a lead or a sale) are counted distinct.
    let users_sql = format!(
        "SELECT count(DISTINCT user_id) FILTER (WHERE leads > 0)::int8,
                count(DISTINCT user_id) FILTER (WHERE sales > 0)::int8
           FROM {}.user_rollups WHERE partner_id = $1 AND day >= $2 AND day <= $3",
        ctx.schema()?
    );
    let (_, (clicks, _, identities), (_, revenue, _), users) = futures::try_join!(
        exists(&ctx, &partner),
        click_totals(&ctx, &partner, &w),
        event_totals(&ctx, &partner, &w),
        async {
            ctx.read_one(&users_sql, &[&partner, &w.since, &w.until])
                .await?
                .ok_or_else(ApiError::internal)
        },
    )?;
    let (signups, paid): (i64, i64) = (users.get(0), users.get(1));
    Ok(Reply::typed(
        200,
        &Funnel {
            partner_id: partner,
            since: w.since,
            until: w.until,
            stages: FunnelStages {
                clicks,
                identities,
                signups,
                paid,
            },
            rates: FunnelRates {
                stitch_rate: rate(identities, clicks),
                signup_rate: rate(signups, identities),
                paid_rate: rate(paid, signups),
                overall: rate(paid, clicks),
            },
            revenue: revenue.amounts(),
        },
    ))
}

// ---------------------------------------------------------------- attributed events

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct AttributedEvent {
    attribution_id: String,
    /// This touch's share of the event (a decimal in (0, 1]).
    weight: DecimalString,
    /// The attribution model that made it.
    model: String,
    /// The client's event id (or the server's when none was given).
    event_id: String,
    #[serde(rename = "type")]
    kind: String,
    /// The event's value in its currency; null when it has none.
    value: Option<DecimalString>,
    currency: String,
    ts: Timestamp,
    user_id: String,
    /// The touched click.
    click: Option<TouchedClick>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct TouchedClick {
    id: String,
    link_key: String,
    referer: Option<String>,
    landing_url: Option<String>,
    ts: Timestamp,
}

pub fn events_doc() -> Op {
    partner_report(Op::new("A partner's attributed events"))
        .describe("The partner's live attributions with their events and touched clicks, newest event first.")
        .query("campaignId", "Only this campaign's attributions (`programId` is the same filter).", json!({"type": "string"}))
        .query("programId", "The same as `campaignId`.", json!({"type": "string"}))
        .query("type", "Only events of this type.", json!({"type": "string"}))
        .page::<AttributedEvent>("events")
}

pub async fn events(ctx: Ctx) -> Result<Reply, ApiError> {
    let w = window(&ctx)?;
    let page = PageRequest::from_ctx(&ctx)?;
    let campaign = campaign_filter(&ctx)?;
    let kind = ctx.query_value("type");
    if kind.as_deref().is_some_and(|k| k.contains('\0')) {
        return Err(ApiError::invalid_query("type must not contain NUL"));
    }
    let partner = partner(&ctx).await?;
    let s = ctx.schema()?;
    let sql = format!(
        "SELECT a.id, a.weight, a.model, e.event_id, e.type, e.value, e.currency, e.ts, e.user_id,
                c.id AS click_id, l.link_key, c.referer, c.landing_url, c.ts AS click_ts
           FROM {s}.attributions a
          CROSS JOIN LATERAL (SELECT event_id, type, value, currency, ts, user_id FROM {s}.events
                               WHERE id = a.event_id AND ts >= $2 AND ts < $3 OFFSET 0) e
           LEFT JOIN LATERAL (SELECT id, link_id, referer, landing_url, ts FROM {s}.clicks
                               WHERE id = a.click_id OFFSET 0) c ON true
           LEFT JOIN {s}.links l ON l.id = c.link_id
          WHERE a.partner_id = $1 AND a.superseded_at IS NULL
            AND ($4::text IS NULL OR a.campaign_id = $4) AND ($5::text IS NULL OR e.type = $5)
            AND ($6::timestamptz IS NULL OR (e.ts, a.id) < ($6, $7::text))
          ORDER BY e.ts DESC, a.id DESC LIMIT $8"
    );
    let (after_t, after_id) = page.after.clone().unzip();
    let rows = ctx
        .read(
            &sql,
            &[
                &partner,
                &w.start(),
                &w.end(),
                &campaign,
                &kind,
                &after_t,
                &after_id,
                &page.fetch(),
            ],
        )
        .await?;
    let items = rows
        .iter()
        .map(|r| {
            let currency: String = r.get("currency");
            let weight: Decimal = r.get("weight");
            let ev = AttributedEvent {
                attribution_id: r.get("id"),
                weight: DecimalString(weight.normalize().to_string()),
                model: r.get("model"),
                event_id: r.get("event_id"),
                kind: r.get("type"),
                value: r
                    .get::<_, Option<Decimal>>("value")
                    .map(|v| DecimalString::amount(v, &currency)),
                currency,
                ts: Timestamp(r.get("ts")),
                user_id: r.get("user_id"),
                click: r
                    .get::<_, Option<String>>("click_id")
                    .map(|id| TouchedClick {
                        id,
                        link_key: r.get::<_, Option<String>>("link_key").unwrap_or_default(),
                        referer: r.get("referer"),
                        landing_url: r.get("landing_url"),
                        ts: Timestamp(r.get("click_ts")),
                    }),
            };
            (
                r.get::<_, DateTime<Utc>>("ts"),
                r.get::<_, String>("id"),
                serde_json::to_value(ev).unwrap_or_default(),
            )
        })
        .collect();
    Ok(Reply::ok(crate::pagination::page_body(
        &page, "events", items,
    )))
}

// ---------------------------------------------------------------- customers

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Customer {
    user_id: String,
    first_event_at: Timestamp,
    last_event_at: Timestamp,
    /// Distinct events of the user attributed to the partner.
    event_count: i64,
    /// Σ(value × weight) of those events, per currency.
    revenue: Vec<MoneyAmount>,
}

pub fn customers_doc() -> Op {
    Op::new("A partner's customers")
        .describe("The users with events attributed to the partner (all time). `sort=recent` (default) orders by the last event, newest first; `sort=revenue` by revenue in `currency` (default USD), highest first; ties by user id.")
        .query("sort", "`recent` or `revenue`.", json!({"type": "string", "enum": ["recent", "revenue"]}))
        .query("currency", "The currency `sort=revenue` orders by (ISO 4217, default USD).", json!({"type": "string", "pattern": "^[A-Z]{3}$"}))
        .page::<Customer>("customers")
        .errors(404, &[ErrorCode::NotFound])
}

/// Customers are ordered by computed figures, so their cursor is a position: `c1.<offset>`.
fn offset_cursor(ctx: &Ctx) -> Result<usize, ApiError> {
    let bad = || {
        ApiError::new(
            400,
            ErrorCode::InvalidCursor,
            "cursor is not one this API issued",
        )
    };
    match ctx.query_value("cursor").as_deref() {
        None | Some("") => Ok(0),
        Some(c) => {
            let text = URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(bad)?;
            text.strip_prefix("c1.")
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| *n <= 10_000_000)
                .ok_or_else(bad)
        }
    }
}

pub async fn customers(ctx: Ctx) -> Result<Reply, ApiError> {
    let limit: usize = match ctx.query_value("limit") {
        None => crate::pagination::DEFAULT_LIMIT as usize,
        Some(v) => v
            .parse()
            .ok()
            .filter(|n| (1..=crate::pagination::MAX_LIMIT as usize).contains(n))
            .ok_or_else(|| ApiError::invalid_query("limit must be an integer from 1 to 500"))?,
    };
    let offset = offset_cursor(&ctx)?;
    let by_revenue = match ctx.query_value("sort").as_deref() {
        None | Some("recent") => false,
        Some("revenue") => true,
        Some(_) => return Err(ApiError::invalid_query("sort must be recent or revenue")),
    };
    let currency = match ctx.query_value("currency") {
        None => "USD".to_string(),
        Some(c) => Currency::parse(&c)
            .map_err(|_| ApiError::invalid_query("currency must be an ISO 4217 code"))?
            .code()
            .to_string(),
    };
    let partner = partner(&ctx).await?;
    let s = ctx.schema()?;
    let sql = format!(
        "SELECT e.user_id, e.ts, e.value, e.currency, a.weight
           FROM (SELECT event_id, sum(weight) AS weight FROM {s}.attributions
                  WHERE partner_id = $1 AND superseded_at IS NULL GROUP BY event_id) a
          CROSS JOIN LATERAL (SELECT user_id, ts, value, currency FROM {s}.events
                               WHERE id = a.event_id OFFSET 0) e"
    );
    let rows = ctx.read(&sql, &[&partner]).await?;
    struct Acc {
        first: DateTime<Utc>,
        last: DateTime<Utc>,
        n: i64,
        revenue: MoneyByCurrency,
    }
    let mut users: HashMap<String, Acc> = HashMap::new();
    for r in &rows {
        let ts: DateTime<Utc> = r.get("ts");
        let a = users.entry(r.get("user_id")).or_insert(Acc {
            first: ts,
            last: ts,
            n: 0,
            revenue: MoneyByCurrency::default(),
        });
        a.first = a.first.min(ts);
        a.last = a.last.max(ts);
        a.n += 1;
        if let Some(v) = r.get::<_, Option<Decimal>>("value") {
            a.revenue.add(
                r.get::<_, &str>("currency"),
                v * r.get::<_, Decimal>("weight"),
            );
        }
    }
    let mut list: Vec<(String, Acc)> = users.into_iter().collect();
    match by_revenue {
        true => list.sort_by(|(ua, a), (ub, b)| {
            let ra = a.revenue.0.get(&currency).copied().unwrap_or_default();
            let rb = b.revenue.0.get(&currency).copied().unwrap_or_default();
            rb.cmp(&ra).then_with(|| ua.cmp(ub))
        }),
        false => list.sort_by(|(ua, a), (ub, b)| b.last.cmp(&a.last).then_with(|| ua.cmp(ub))),
    }
    let total = list.len();
    let data: Vec<Value> = list
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|(user_id, a)| {
            serde_json::to_value(Customer {
                user_id,
                first_event_at: Timestamp(a.first),
                last_event_at: Timestamp(a.last),
                event_count: a.n,
                revenue: a.revenue.amounts(),
            })
            .unwrap_or_default()
        })
        .collect();
    let next =
        (offset + limit < total).then(|| URL_SAFE_NO_PAD.encode(format!("c1.{}", offset + limit)));
    Ok(Reply::ok(
        json!({"data": data.clone(), "customers": data, "nextCursor": next}),
    ))
}

// ---------------------------------------------------------------- breakdowns

/// `dimension` → the enriched click column it reads.
const DIMENSIONS: [(&str, &str); 8] = [
    ("referer", "referer"),
    ("utm_source", "utm_source"),
    ("utm_medium", "utm_medium"),
    ("utm_campaign", "utm_campaign"),
    ("country", "country"),
    ("device", "device"),
    ("browser", "browser"),
    ("os", "os"),
];

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Breakdown {
    partner_id: String,
    since: NaiveDate,
    until: NaiveDate,
    dimension: String,
    /// Most clicks first; `value` null gathers the clicks that have none.
    rows: Vec<BreakdownRow>,
}

#[derive(Serialize, JsonSchema)]
struct BreakdownRow {
    value: Option<String>,
    /// Unflagged clicks.
    count: i64,
}

pub fn breakdowns_doc() -> Op {
    partner_report(Op::new("A partner's click breakdown"))
        .describe("The window's unflagged clicks counted by one enriched dimension (stored when each click was written).")
        .query(
            "dimension",
            "What to count by (default `referer`).",
            json!({"type": "string", "enum": DIMENSIONS.map(|(d, _)| d)}),
        )
        .query("limit", "Rows (default 10, at most 50).", json!({"type": "integer", "minimum": 1, "maximum": 50, "default": 10}))
        .ok::<Breakdown>(200, "The rows.")
}

pub async fn breakdowns(ctx: Ctx) -> Result<Reply, ApiError> {
    let w = window(&ctx)?;
    let dimension = ctx
        .query_value("dimension")
        .unwrap_or_else(|| "referer".into());
    let Some((_, column)) = DIMENSIONS.iter().find(|(d, _)| *d == dimension) else {
        return Err(ApiError::invalid_query(format!(
            "dimension must be one of {}",
            DIMENSIONS.map(|(d, _)| d).join(", ")
        )));
    };
    let limit: i64 = match ctx.query_value("limit") {
        None => 10,
        Some(v) => v
            .parse()
            .ok()
            .filter(|n| (1..=50).contains(n))
            .ok_or_else(|| ApiError::invalid_query("limit must be an integer from 1 to 50"))?,
    };
    let partner = partner(&ctx).await?;
    let sql = format!(
        "SELECT {column} AS value, count(*)::int8 AS n FROM {}.clicks
          WHERE partner_id = $1 AND ts >= $2 AND ts < $3 AND fraud_flag IS NULL
          GROUP BY 1 ORDER BY 2 DESC, 1 NULLS LAST LIMIT $4",
        ctx.schema()?
    );
    let rows = ctx
        .read(&sql, &[&partner, &w.start(), &w.end(), &limit])
        .await?;
    Ok(Reply::typed(
        200,
        &Breakdown {
            partner_id: partner,
            since: w.since,
            until: w.until,
            dimension,
            rows: rows
                .iter()
                .map(|r| BreakdownRow {
                    value: r.get("value"),
                    count: r.get("n"),
                })
                .collect(),
        },
    ))
}

// ---------------------------------------------------------------- admin overview

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Overview {
    since: NaiveDate,
    until: NaiveDate,
    /// Every partner's figures together.
    totals: OverviewTotals,
    /// One row per partner, newest partner first (a page).
    data: Vec<PartnerFigures>,
    /// The same rows (the collection's own name).
    partners: Vec<PartnerFigures>,
    next_cursor: Option<String>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct OverviewTotals {
    /// Partners in the tenant.
    partners: i64,
    clicks: i64,
    flagged_clicks: i64,
    attributed_events: i64,
    revenue_by_currency: Vec<MoneyAmount>,
    refunded: Vec<MoneyAmount>,
    commission_by_status: CommissionByStatus,
}

#[derive(Serialize, JsonSchema, Clone)]
#[serde(rename_all = "camelCase")]
struct PartnerFigures {
    partner_id: String,
    name: String,
    email: String,
    status: String,
    clicks: i64,
    flagged_clicks: i64,
    /// Distinct events attributed to this partner.
    attributed_events: i64,
    revenue_by_currency: Vec<MoneyAmount>,
    commission_by_status: CommissionByStatusRow,
}

/// [`CommissionByStatus`] (a copy, so the row's schema stands alone).
#[derive(Serialize, JsonSchema, Clone, Default)]
struct CommissionByStatusRow {
    accrued: Vec<MoneyAmount>,
    approved: Vec<MoneyAmount>,
    paid: Vec<MoneyAmount>,
    reversed: Vec<MoneyAmount>,
}

pub fn overview_doc() -> Op {
    window_params(Op::new("The program overview"))
        .describe("Totals over every partner, and one row per partner (a page, newest partner first). Admins or `partners:read` keys. An attributed event credited to two partners counts once in the totals.")
        .query("limit", "Partner rows per page (default 50).", json!({"type": "integer", "minimum": 1, "maximum": 500, "default": 50}))
        .query("cursor", "The `nextCursor` of the previous page.", json!({"type": "string"}))
        .errors(400, &[ErrorCode::InvalidCursor])
        .ok::<Overview>(200, "Totals and a page of partners.")
}

/// Per partner: (clicks, flagged, events, revenue, commissions by status).
#[derive(Default)]
struct Figures {
    clicks: i64,
    flagged: i64,
    events: i64,
    revenue: MoneyByCurrency,
    refunded: MoneyByCurrency,
    commissions: BTreeMap<String, MoneyByCurrency>,
}

/// Figures per partner (`ids`: only those partners; `None`: all, plus the total under "").
async fn figures(
    ctx: &Ctx,
    w: &Window,
    ids: Option<&[String]>,
) -> Result<HashMap<String, Figures>, ApiError> {
    let s = ctx.schema()?;
    let only = match ids {
        Some(_) => " AND partner_id = ANY($3)",
        None => "",
    };
    let clicks_sql = format!(
        "SELECT partner_id, sum(clicks)::int8 AS clicks, sum(flagged_clicks)::int8 AS flagged
           FROM {s}.click_rollups WHERE day >= $1 AND day <= $2{only} GROUP BY partner_id"
    );
    let events_sql = format!(
        "SELECT partner_id, currency, sum(events)::int8 AS events, sum(tenant_events)::int8 AS tenant_events,
                sum(revenue) AS revenue, sum(refunded) AS refunded
           FROM {s}.event_rollups WHERE day >= $1 AND day <= $2{only} GROUP BY partner_id, currency"
    );
    let commissions_sql = format!(
        "SELECT partner_id, currency, sum(accrued) AS accrued, sum(approved) AS approved, sum(paid) AS paid,
                sum(reversed) AS reversed
           FROM {s}.commission_rollups WHERE day >= $1 AND day <= $2{only} GROUP BY partner_id, currency"
    );
    let (since, until) = (w.since, w.until);
    let ids_vec: Vec<String> = ids.map(<[String]>::to_vec).unwrap_or_default();
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = match ids {
        Some(_) => vec![&since, &until, &ids_vec],
        None => vec![&since, &until],
    };
    let (clicks, events, commissions) = futures::try_join!(
        async { ctx.read(&clicks_sql, &params).await },
        async { ctx.read(&events_sql, &params).await },
        async { ctx.read(&commissions_sql, &params).await },
    )?;
    let mut out: HashMap<String, Figures> = HashMap::new();
    for r in &clicks {
        let f = out.entry(r.get("partner_id")).or_default();
        f.clicks += r.get::<_, i64>("clicks");
        f.flagged += r.get::<_, i64>("flagged");
    }
    // Totals count an event once however many partners share it (`tenant_events`).
    let mut distinct_events = 0;
    for r in &events {
        let f = out.entry(r.get("partner_id")).or_default();
        let currency: &str = r.get("currency");
        f.events += r.get::<_, i64>("events");
        distinct_events += r.get::<_, i64>("tenant_events");
        f.revenue.add(currency, r.get("revenue"));
        f.refunded.add(currency, r.get("refunded"));
    }
    for r in &commissions {
        let f = out.entry(r.get("partner_id")).or_default();
        add_statuses(&mut f.commissions, r);
    }
    if ids.is_none() {
        let mut total = Figures::default();
        for f in out.values() {
            total.clicks += f.clicks;
            total.flagged += f.flagged;
            total.revenue.merge(&f.revenue);
            total.refunded.merge(&f.refunded);
            for (s, m) in &f.commissions {
                total.commissions.entry(s.clone()).or_default().merge(m);
            }
        }
        total.events = distinct_events;
        out.insert(String::new(), total);
    }
    Ok(out)
}

pub async fn overview(ctx: Ctx) -> Result<Reply, ApiError> {
    let w = window(&ctx)?;
    let page = PageRequest::from_ctx(&ctx)?;
    let s = ctx.schema()?;
    let (after_t, after_id) = page.after.clone().unzip();
    let partners_sql = format!(
        "SELECT id, name, email, status, created_at FROM {s}.partners
          WHERE ($1::timestamptz IS NULL OR (created_at, id) < ($1, $2::text))
          ORDER BY created_at DESC, id DESC LIMIT $3"
    );
    let count_sql = format!("SELECT count(*)::int8 FROM {s}.partners");
    let (partners, count, mut all) = futures::try_join!(
        async {
            ctx.read(&partners_sql, &[&after_t, &after_id, &page.fetch()])
                .await
        },
        async { ctx.read(&count_sql, &[]).await },
        figures(&ctx, &w, None),
    )?;
    let more = partners.len() as i64 > page.limit;
    let partners = &partners[..partners.len().min(page.limit as usize)];
    let rows: Vec<PartnerFigures> = partners
        .iter()
        .map(|p| {
            let id: String = p.get("id");
            let f = all.remove(&id).unwrap_or_default();
            let by = CommissionByStatus::of(&f.commissions);
            PartnerFigures {
                partner_id: id,
                name: p.get("name"),
                email: p.get("email"),
                status: p.get("status"),
                clicks: f.clicks,
                flagged_clicks: f.flagged,
                attributed_events: f.events,
                revenue_by_currency: f.revenue.amounts(),
                commission_by_status: CommissionByStatusRow {
                    accrued: by.accrued,
                    approved: by.approved,
                    paid: by.paid,
                    reversed: by.reversed,
                },
            }
        })
        .collect();
    let next_cursor = match (more, partners.last()) {
        (true, Some(p)) => Some(encode_cursor(p.get("created_at"), p.get("id"))),
        _ => None,
    };
    let total = all.remove("").unwrap_or_default();
    Ok(Reply::typed(
        200,
        &Overview {
            since: w.since,
            until: w.until,
            totals: OverviewTotals {
                partners: count.first().map_or(0, |r| r.get(0)),
                clicks: total.clicks,
                flagged_clicks: total.flagged,
                attributed_events: total.events,
                revenue_by_currency: total.revenue.amounts(),
                refunded: total.refunded.amounts(),
                commission_by_status: CommissionByStatus::of(&total.commissions),
            },
            data: rows.clone(),
            partners: rows,
            next_cursor,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn money_is_per_currency_and_rounded_half_even_once() {
        let mut m = MoneyByCurrency::default();
        // 3 × 0.005 rounded once is 0.02; rounded each time it would be 0.00 (half-even).
        for _ in 0..3 {
            m.add("USD", Decimal::from_str("0.005").unwrap());
        }
        m.add("JPY", Decimal::from_str("100.5").unwrap());
        let a = m.amounts();
        assert_eq!(a[0].currency, "JPY");
        assert_eq!(a[0].amount.0, "100", "half-even: 100.5 → 100");
        assert_eq!(a[1].amount.0, "0.02");
        assert_eq!(m.single(), None, "two currencies: no scalar");
        let mut one = MoneyByCurrency::default();
        one.add("EUR", Decimal::from_str("10.125").unwrap());
        assert_eq!(one.single().unwrap().0, "10.12");
        assert_eq!(MoneyByCurrency::default().single(), None);
    }
}
