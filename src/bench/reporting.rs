//! The `reporting` scenario (specs/reporting.md): a generated tenant-sized history — 500
//! partners with two links each, 1,000,000 clicks over the last 365 days (enriched, 2 %
//! flagged) and their per-day rollups, 100,000 identified users (user m clicked click
//! 10m + 1 + m mod 9: never a flagged one, every partner's) each with one attributed
//! event (30 % signups, 70 % purchases in USD or EUR) and the purchases' commissions —
//! written with bulk SQL in the bench tenant, then read by 16 concurrent readers: a
//! dashboard (30 days, and a year), a year of time series by week and a funnel, each of a
//! random partner. Then event ingest with reporting's write-side cost (the event lane's
//! rollup upserts and the index the events and customers reports read attributions by)
//! against the same load without them (workers started with `OP_BENCH_NO_EVENT_ROLLUPS=1`,
//! the index dropped), in alternating runs.

use super::{
    measure::measure,
    report::{Section, Versus},
    scenarios::events_via_gateway,
    target::{Bench, READERS},
};
use anyhow::Result;
use http::Method;
use serde_json::{json, Value};
use std::time::Instant;

const PARTNERS: u64 = 500;
const LINKS: u64 = 1_000;
const CLICKS: u64 = 1_000_000;
const EVENTS: u64 = 100_000;
/// 26-digit ids (valid ULIDs, as the API requires): a prefix per table and `BASE + n`.
const BASE: u64 = 1_000_000_000_000_000_000;

fn partner_id(n: u64) -> String {
    format!("0000009{}", BASE + n)
}

/// A well-mixed partner for the n-th read (splitmix64).
fn random_partner(n: u64) -> String {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    partner_id(z % PARTNERS)
}

/// Writes the history (once per bench tenant).
async fn generate(b: &Bench) -> Result<f64> {
    let c = b
        .api(
            reqwest::Method::POST,
            "/campaigns",
            json!({"name": "Reporting", "destinationUrl": "https://shop.bench.example/", "commissionRule": {"type": "percent", "value": "10"}}),
        )
        .await?;
    let campaign = c["id"].as_str().unwrap_or_default().to_string();
    let s = b.target.schema();
    let db = crate::connect(&b.target.stack.database_url).await?;
    let start = Instant::now();
    // A click's time: n steps of 31.536 s back from now (1M clicks over 365 days).
    let click_ts = "(now() - ({n} * 31.536) * interval '1 second')";
    let statements = [
        format!(
            "INSERT INTO {s}.partners (id, email, name, metadata, status, activated_at)
             SELECT '0000009' || ({BASE} + n), 'rep-' || n || '@bench.example', 'Reporting ' || n, '{{}}'::jsonb, 'active', now()
               FROM generate_series(0, {PARTNERS} - 1) n"
        ),
        format!(
            "INSERT INTO {s}.links (id, link_key, partner_id, campaign_id)
             SELECT '0000008' || ({BASE} + n), 'replink' || n, '0000009' || ({BASE} + n / 2), '{campaign}'
               FROM generate_series(0, {LINKS} - 1) n"
        ),
        format!(
            "INSERT INTO {s}.clicks (id, link_id, partner_id, campaign_id, ip_hash, user_agent, referer, fraud_flag, ts,
                                    landing_url, utm_source, country, device, browser, os)
             SELECT '0000007' || ({BASE} + n), '0000008' || ({BASE} + n % {LINKS}), '0000009' || ({BASE} + n % {LINKS} / 2),
                    '{campaign}', md5(n::text), 'bench', 'https://blog' || (n % 7) || '.example/',
                    CASE WHEN n % 50 = 0 THEN 'velocity' END, {ts},
                    'https://shop.bench.example/?cref=' || n,
                    (ARRAY['google', 'newsletter', 'twitter', NULL])[n % 4 + 1],
                    (ARRAY['US', 'DE', 'FR', 'GB', 'JP'])[n % 5 + 1],
                    (ARRAY['desktop', 'mobile'])[n % 2 + 1],
                    (ARRAY['Chrome', 'Safari', 'Firefox'])[n % 3 + 1],
                    (ARRAY['Windows 10', 'iOS', 'Mac OSX', 'Android'])[n % 4 + 1]
               FROM generate_series(0, {CLICKS} - 1) n",
            ts = click_ts.replace("{n}", "n")
        ),
        format!(
            "INSERT INTO {s}.identities (id, click_id, user_id)
             SELECT '0000006' || ({BASE} + m), '0000007' || ({BASE} + 10 * m + 1 + m % 9), 'ru' || m
               FROM generate_series(0, {EVENTS} - 1) m"
        ),
        format!(
            "INSERT INTO {s}.click_rollups (partner_id, day, link_id, campaign_id, clicks, flagged_clicks, identities)
             SELECT c.partner_id, (c.ts AT TIME ZONE 'UTC')::date, c.link_id, min(c.campaign_id),
                    count(*) FILTER (WHERE c.fraud_flag IS NULL), count(*) FILTER (WHERE c.fraud_flag IS NOT NULL),
                    count(i.id) FILTER (WHERE c.fraud_flag IS NULL)
               FROM {s}.clicks c LEFT JOIN {s}.identities i ON i.click_id = c.id
              WHERE c.id LIKE '0000007%'
              GROUP BY 1, 2, 3
             ON CONFLICT (partner_id, day, link_id) DO UPDATE
                SET clicks = click_rollups.clicks + excluded.clicks,
                    flagged_clicks = click_rollups.flagged_clicks + excluded.flagged_clicks,
                    identities = click_rollups.identities + excluded.identities"
        ),
        format!(
            "INSERT INTO {s}.events (id, event_id, user_id, type, value, currency, metadata, ts, attribution_status, response)
             SELECT 'evt_0000005' || ({BASE} + m), 'rep' || m, 'ru' || m,
                    CASE WHEN m % 10 < 3 THEN 'signup' ELSE 'purchase' END,
                    CASE WHEN m % 10 < 3 THEN NULL ELSE (m % 200) + 0.99 END,
                    CASE WHEN m % 4 = 0 THEN 'EUR' ELSE 'USD' END,
                    '{{}}'::jsonb, {ts} + interval '1 hour', 'attributed', '{{}}'::jsonb
               FROM generate_series(0, {EVENTS} - 1) m",
            ts = click_ts.replace("{n}", "(10 * m + 1 + m % 9)")
        ),
        format!(
            "INSERT INTO {s}.attributions (id, event_id, model, click_id, partner_id, campaign_id, weight)
             SELECT '0000004' || ({BASE} + m), 'evt_0000005' || ({BASE} + m), 'last_click', '0000007' || ({BASE} + 10 * m + 1 + m % 9),
                    '0000009' || ({BASE} + (10 * m + 1 + m % 9) % {LINKS} / 2), '{campaign}', 1
               FROM generate_series(0, {EVENTS} - 1) m"
        ),
        format!(
            "INSERT INTO {s}.commission_ledger (id, commission_id, from_status, to_status, prev_id, amount, principal_kind)
             SELECT '0000003' || ({BASE} + m), '0000002' || ({BASE} + m), 'new',
                    CASE WHEN m % 3 = 0 THEN 'approved' ELSE 'accrued' END, NULL, round(((m % 200) + 0.99) * 0.1, 2), 'system'
               FROM generate_series(0, {EVENTS} - 1) m WHERE m % 10 >= 3"
        ),
        format!(
            "INSERT INTO {s}.commissions (id, attribution_id, event_id, client_event_id, user_id, partner_id, campaign_id, amount,
                                         currency, status, holdback_days, accrued_at, mature_at, approved_at, last_transition_id)
             SELECT '0000002' || ({BASE} + m), '0000004' || ({BASE} + m), 'evt_0000005' || ({BASE} + m), 'rep' || m, 'ru' || m,
                    '0000009' || ({BASE} + (10 * m + 1 + m % 9) % {LINKS} / 2), '{campaign}', round(((m % 200) + 0.99) * 0.1, 2),
                    CASE WHEN m % 4 = 0 THEN 'EUR' ELSE 'USD' END,
                    CASE WHEN m % 3 = 0 THEN 'approved' ELSE 'accrued' END, 0, {ts} + interval '1 hour', {ts} + interval '1 hour',
                    CASE WHEN m % 3 = 0 THEN {ts} + interval '2 hours' END, '0000003' || ({BASE} + m)
               FROM generate_series(0, {EVENTS} - 1) m WHERE m % 10 >= 3",
            ts = click_ts.replace("{n}", "(10 * m + 1 + m % 9)")
        ),
        // The event, user and commission rollups of the generated history (one attribution
        // of weight 1 per event, no refunds): what the event lane would have written.
        format!(
            "INSERT INTO {s}.event_rollups (partner_id, day, link_id, campaign_id, currency, events, leads, sales,
                                           campaign_leads, campaign_sales, link_events, tenant_events, revenue, refunded)
             SELECT a.partner_id, (e.ts AT TIME ZONE 'UTC')::date, c.link_id, a.campaign_id, e.currency,
                    count(*), count(*) FILTER (WHERE e.type IN ('signup', 'trial_started')), count(*) FILTER (WHERE e.value > 0),
                    count(*) FILTER (WHERE e.type IN ('signup', 'trial_started')), count(*) FILTER (WHERE e.value > 0),
                    count(*), count(*), coalesce(sum(e.value * a.weight), 0), 0
               FROM {s}.attributions a JOIN {s}.events e ON e.id = a.event_id JOIN {s}.clicks c ON c.id = a.click_id
              WHERE a.id LIKE '0000004%'
              GROUP BY 1, 2, 3, 4, 5
             ON CONFLICT (partner_id, day, link_id, campaign_id, currency) DO UPDATE
                SET events = event_rollups.events + excluded.events, leads = event_rollups.leads + excluded.leads,
                    sales = event_rollups.sales + excluded.sales,
                    campaign_leads = event_rollups.campaign_leads + excluded.campaign_leads,
                    campaign_sales = event_rollups.campaign_sales + excluded.campaign_sales,
                    link_events = event_rollups.link_events + excluded.link_events,
                    tenant_events = event_rollups.tenant_events + excluded.tenant_events,
                    revenue = event_rollups.revenue + excluded.revenue"
        ),
        format!(
            "INSERT INTO {s}.user_rollups (partner_id, day, user_id, leads, sales)
             SELECT a.partner_id, (e.ts AT TIME ZONE 'UTC')::date, e.user_id,
                    count(*) FILTER (WHERE e.type IN ('signup', 'trial_started')), count(*) FILTER (WHERE e.value > 0)
               FROM {s}.attributions a JOIN {s}.events e ON e.id = a.event_id
              WHERE a.id LIKE '0000004%' AND (e.type IN ('signup', 'trial_started') OR e.value > 0)
              GROUP BY 1, 2, 3
             ON CONFLICT (partner_id, day, user_id) DO UPDATE
                SET leads = user_rollups.leads + excluded.leads, sales = user_rollups.sales + excluded.sales"
        ),
        format!(
            "INSERT INTO {s}.commission_rollups (partner_id, day, campaign_id, currency, accrued, approved, paid, reversed)
             SELECT partner_id, (accrued_at AT TIME ZONE 'UTC')::date, campaign_id, currency,
                    coalesce(sum(amount) FILTER (WHERE status = 'accrued'), 0),
                    coalesce(sum(amount) FILTER (WHERE status = 'approved'), 0), 0, 0
               FROM {s}.commissions WHERE id LIKE '0000002%'
              GROUP BY 1, 2, 3, 4
             ON CONFLICT (partner_id, day, campaign_id, currency) DO UPDATE
                SET accrued = commission_rollups.accrued + excluded.accrued,
                    approved = commission_rollups.approved + excluded.approved"
        ),
    ];
    for sql in &statements {
        db.batch_execute(sql).await?;
    }
    for table in [
        "partners",
        "links",
        "clicks",
        "identities",
        "click_rollups",
        "events",
        "attributions",
        "commissions",
        "event_rollups",
        "user_rollups",
        "commission_rollups",
    ] {
        db.batch_execute(&format!("VACUUM ANALYZE {s}.{table}"))
            .await?;
    }
    Ok(start.elapsed().as_secs_f64())
}

pub(super) async fn reporting(b: &mut Bench) -> Result<Section> {
    let secs = generate(b).await?;
    let mut lines = vec![format!(
        "reporting: generated {PARTNERS} partners, {LINKS} links, {CLICKS} clicks over 365 days (+ rollups), {EVENTS} attributed events, {} commissions in {secs:.1} s",
        EVENTS * 7 / 10
    )];
    let year_ago = format!("since={}", year_ago(b).await?);
    let reads: [(&str, String); 4] = [
        ("dashboard (30 days)", "dashboard".to_string()),
        ("dashboard (a year)", format!("dashboard?{year_ago}")),
        (
            "timeseries (a year by week)",
            format!("timeseries?{year_ago}&bucket=week"),
        ),
        ("funnel (a year)", format!("funnel?{year_ago}")),
    ];
    for (label, route) in reads {
        let admin = b.admin.clone();
        let load = admin.load.clone();
        let report = measure(
            &format!("GET /partners/:id/{label}, {READERS} readers"),
            READERS,
            b.duration,
            move |client, n| {
                let req = admin.request(
                    Method::GET,
                    &format!("/partners/{}/{route}", random_partner(n)),
                    &Value::Null,
                );
                let load = load.clone();
                async move { load.send(client, req).await == Some(200) }
            },
        )
        .await;
        let p99 = report.quantile_ms(0.99);
        lines.push(report.line());
        lines.push(format!(
            "  p99 {p99:.2} ms  ≤ 50 ms  {}",
            if p99 <= 50.0 { "PASS" } else { "MISS" }
        ));
    }

    // Event ingest: reporting's write-side cost on events is the event lane's rollup
    // upserts (event, user and commission rollups: up to three statements per batch) and
    // the index the events and customers reports read attributions by. "Without" runs the
    // same load on workers started with OP_BENCH_NO_EVENT_ROLLUPS=1 (the lane skips the
    // upserts) and without the index; both sides start on freshly started workers.
    let s = b.target.schema();
    let db = crate::connect(&b.target.stack.database_url).await?;
    let mut versus = Versus::new(
        "reporting-events",
        b.concurrency,
        "without rollups or the index",
    );
    lines.push(format!(
        "  {} alternating runs, event ingest with reporting's rollups and index then without them ({} clients):",
        b.pairs.max(1),
        b.concurrency
    ));
    for i in 1..=b.pairs.max(1) {
        workers_with(b, None).await?;
        let with = events_via_gateway(
            b,
            format!("POST /attribution/events   with reporting, pair {i}"),
        )
        .await?;
        db.batch_execute(&format!("DROP INDEX {s}.attributions_partner_idx"))
            .await?;
        workers_with(b, Some("1")).await?;
        let without =
            events_via_gateway(b, format!("POST /attribution/events   without, pair {i}")).await;
        db.batch_execute(&format!(
            "CREATE INDEX attributions_partner_idx ON {s}.attributions (partner_id, event_id) WHERE superseded_at IS NULL"
        ))
        .await?;
        lines.push(versus.add(i, &with, &without?));
    }
    workers_with(b, None).await?;
    lines.push(versus.summary());
    Ok(Section {
        lines,
        versus: None,
    })
}

/// Starts the workers again with `OP_BENCH_NO_EVENT_ROLLUPS` set to `value` (or unset) and
/// waits until the gateway has them all again.
async fn workers_with(b: &mut Bench, value: Option<&str>) -> Result<()> {
    b.target
        .stack
        .restart_workers_with("OP_BENCH_NO_EVENT_ROLLUPS", value)?;
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    b.target
        .stack
        .wait_ready(std::time::Duration::from_secs(30))
        .await?;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    Ok(())
}

/// The UTC day 364 days before today (by the database's clock): a year's window.
async fn year_ago(b: &Bench) -> Result<String> {
    let db = crate::connect(&b.target.stack.database_url).await?;
    let r = db
        .query_one("SELECT ((now() AT TIME ZONE 'UTC')::date - 364)::text", &[])
        .await?;
    Ok(r.get(0))
}
