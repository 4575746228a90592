//! The scenarios: the data each one sets up through the tenant API (partners, campaigns,
//! links, identified users, webhook endpoints) and what it measures. Each returns its
//! section of the report.

use super::{
    baselines::{self, Pgbench},
    receiver::Receiver,
    report::{Report, Section, Trio, Versus},
    target::Bench,
};
use anyhow::{Context, Result};
use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use op_proto::v1::{Envelope, Surface};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Partners the read scenario reads, at random: the table a prepared primary-key select
/// is anchored on has as many rows.
const READ_PARTNERS: u64 = 10_000;
/// The read scenario's partner ids are `READ_ID_PREFIX` and `READ_ID_BASE + i` in decimal:
/// 26 digits, a valid ULID as the API requires, that pgbench can build from a random integer
/// (`\set`) as the prepared statement's parameter.
const READ_ID_BASE: u64 = 1_000_000_000_000_000_000;
const READ_ID_PREFIX: &str = "0000000";

/// A well-mixed function of `n` (splitmix64): the n-th read's partner.
pub(super) fn read_id(n: u64) -> String {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    format!("{READ_ID_PREFIX}{}", READ_ID_BASE + z % READ_PARTNERS)
}

/// `READ_PARTNERS` active partners of the bench tenant, written once straight to its
/// table (the rows `POST /partners` writes, without the API's per-row cost).
pub(super) async fn read_partners(b: &Bench) -> Result<()> {
    let schema = b.target.schema();
    let c = crate::connect(&b.target.stack.database_url).await?;
    c.batch_execute(&format!(
        "INSERT INTO {schema}.partners (id, email, name, metadata, status, activated_at)
         SELECT '{READ_ID_PREFIX}' || ({READ_ID_BASE} + n), 'read-' || n || '@bench.example', 'Reader ' || n,
                '{{}}'::jsonb, 'active', now()
         FROM generate_series(0, {READ_PARTNERS} - 1) n
         ON CONFLICT DO NOTHING"
    ))
    .await?;
    c.batch_execute(&format!("VACUUM ANALYZE {schema}.partners"))
        .await?;
    Ok(())
}

/// `GET /partners/:id` of a random one of `READ_PARTNERS` partners; anchor: pgbench
/// `-M prepared` selecting a random one of the same rows by primary key from a copy of the
/// table.
pub(super) async fn partners_get(b: &Bench) -> Result<Section> {
    read_partners(b).await?;
    let admin = b.admin.clone();
    let req = move |n: u64| {
        admin.request(
            Method::GET,
            &format!("/partners/{}", read_id(n)),
            &Value::Null,
        )
    };
    let tmpl = b.target.envelope("GET", "/partners/:id");
    let (via_gateway, direct) = b
        .both(
            "GET /partners/:id",
            req.clone(),
            200,
            move |n| Envelope {
                path: format!("/partners/{}", read_id(n)),
                ..tmpl.clone()
            },
            200,
        )
        .await;
    let schema = b.target.schema();
    let raw = baselines::raw_sql_with(
        b,
        "SELECT partner by id",
        &format!(
            "SELECT {} FROM {schema}.partners WHERE id = $1",
            baselines::PARTNER_COLUMNS
        ),
        read_id,
    )
    .await?;
    let anchor =
        Pgbench::partner_select(b, &schema, READ_ID_PREFIX, READ_ID_BASE, READ_PARTNERS).await?;
    let pg = anchor.run(b).await?;
    let mut lines = Trio {
        via_gateway,
        direct,
        baselines: vec![raw, pg],
    }
    .lines();
    let mut versus = Versus::new("partners-get", b.concurrency, "pgbench PK select");
    pairs(b, &mut versus, &mut lines, &anchor, |i| {
        let req = req.clone();
        async move {
            Ok(b.via_gateway(
                &format!("GET /partners/:id via gateway, pair {i}"),
                req,
                200,
            )
            .await)
        }
    })
    .await?;
    Ok(Section {
        lines,
        versus: Some(versus),
    })
}

/// `--pairs` alternating runs of `gateway(i)` and `anchor` into `versus`, their lines and
/// summary into `lines`.
async fn pairs<F, Fut>(
    b: &Bench,
    versus: &mut Versus,
    lines: &mut Vec<String>,
    anchor: &Pgbench,
    gateway: F,
) -> Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<Report>>,
{
    if b.pairs == 0 {
        return Ok(());
    }
    lines.push(format!(
        "  {} alternating runs, gateway then {}:",
        b.pairs, versus.anchor
    ));
    for i in 1..=b.pairs {
        let gw = gateway(i).await?;
        let pg = anchor.run(b).await?;
        lines.push(versus.add(i, &gw, &pg));
    }
    lines.push(versus.summary());
    Ok(())
}

/// `POST /partners`, a new e-mail each time; anchor: pgbench inserting a partner row.
pub(super) async fn partners_create(b: &Bench) -> Result<Section> {
    let rid = format!("{}-{}", b.run_id, b.concurrency);
    let body = move |side: &str, n: u64| json!({"email": format!("{side}-{rid}-{n}@bench.example"), "name": "B", "sendInvite": false});
    let (via_gateway, direct) = b
        .both_json(Method::POST, "/partners", body.clone(), 201)
        .await;
    let schema = b.target.schema();
    let raw = baselines::raw_sql(
        b,
        "INSERT partner row",
        &format!(
            "INSERT INTO {schema}.partners (id, email, name, metadata, status, activated_at)
             VALUES ($1, $1 || '@raw.bench.example', 'B', '{{}}'::jsonb, 'active', now()) ON CONFLICT (email) DO NOTHING"
        ),
    )
    .await?;
    let anchor = Pgbench::partner_insert(&schema)?;
    let pg = anchor.run(b).await?;
    let mut lines = Trio {
        via_gateway,
        direct,
        baselines: vec![raw, pg],
    }
    .lines();
    let mut versus = Versus::new("partners-create", b.concurrency, "pgbench insert");
    let admin = b.admin.clone();
    pairs(b, &mut versus, &mut lines, &anchor, |i| {
        let (admin, body) = (admin.clone(), body.clone());
        let side = format!("gwp{i}");
        async move {
            Ok(b.via_gateway(
                &format!("POST /partners via gateway, pair {i}"),
                move |n| admin.request(Method::POST, "/partners", &body(&side, n)),
                201,
            )
            .await)
        }
    })
    .await?;
    Ok(Section {
        lines,
        versus: Some(versus),
    })
}

/// A campaign, a partner and a link on it; returns the link key.
async fn link(b: &Bench) -> Result<String> {
    link_for(b, None).await
}

/// The compound rule of the events-terms scenarios (three sub-rules, programs.md).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Compound {
    /// A SaaS program's usual set: a bounty on the first invoice, 10 % of the later ones for
    /// 12 months, a bounty per signup. An invoice pays exactly one sub-rule: the same rows
    /// per event as a single rule, so the comparison measures the engine (terms in force,
    /// first/subsequent, the anchor), not extra commissions.
    OnePerEvent,
    /// The same with 1 % of every event instead of the signup bounty: every invoice pays two
    /// sub-rules, two commissions and two ledger entries where a single rule writes one.
    Stacked,
}

fn compound_rule(kind: Compound) -> serde_json::Value {
    let third = match kind {
        Compound::OnePerEvent => {
            json!({"trigger": "every", "eventType": "signup", "type": "fixed", "value": "1.00", "currency": "USD"})
        }
        Compound::Stacked => json!({"trigger": "every", "type": "percent", "value": "1"}),
    };
    json!([
        {"trigger": "first", "eventType": "invoice.paid", "type": "fixed", "value": "5.00", "currency": "USD"},
        {"trigger": "subsequent", "eventType": "invoice.paid", "type": "percent", "value": "10", "recurringMonths": 12},
        third,
    ])
}

/// [`link`]; with `terms`, the campaign has a three-sub-rule compound rule and the partner
/// is paid by terms of its own: two versions of all-campaign terms and two of per-campaign
/// terms, the last of which — a compound rule of three sub-rules — prices the events.
async fn link_for(b: &Bench, terms: Option<Compound>) -> Result<String> {
    let rule = match terms {
        Some(kind) => compound_rule(kind),
        None => json!({"type": "percent", "value": "10"}),
    };
    let c = b
        .api(
            reqwest::Method::POST,
            "/campaigns",
            json!({"name": "Bench", "destinationUrl": "https://shop.bench.example/?src=op", "commissionRule": rule}),
        )
        .await?;
    let p = b
        .partner(
            format!("linker-{}-{}@bench.example", b.run_id, ulid::Ulid::new()),
            "L",
        )
        .await?;
    let key = format!("bench{}", &ulid::Ulid::new().to_string()[16..]);
    let partner = p["id"].as_str().context("partner")?;
    b.api(
        reqwest::Method::POST,
        &format!("/partners/{partner}/links"),
        json!({"linkKey": key, "campaignId": c["id"]}),
    )
    .await?;
    if let Some(kind) = terms {
        let campaign = c["id"].as_str().context("campaign")?;
        for (path, pct) in [
            (format!("/partners/{partner}/commission-snapshot"), "11"),
            (format!("/partners/{partner}/commission-snapshot"), "12"),
            (format!("/partners/{partner}/terms/{campaign}"), "14"),
            (format!("/partners/{partner}/terms/{campaign}"), "15"),
        ] {
            b.api(
                reqwest::Method::PUT,
                &path,
                json!({"commissionType": "percent", "commissionValue": pct, "holdbackDays": 0}),
            )
            .await?;
        }
        b.api(
            reqwest::Method::PUT,
            &format!("/partners/{partner}/terms/{campaign}"),
            json!({"commissionRules": compound_rule(kind), "holdbackDays": 0}),
        )
        .await?;
    }
    Ok(key)
}

const USERS: u64 = 200;

/// A link whose first `USERS / 2` users clicked it and were identified; returns its key.
async fn identified_users(b: &Bench) -> Result<String> {
    identified_users_for(b, None).await
}

/// [`identified_users`], the link's partner paid by terms of its own when `terms`.
async fn identified_users_for(b: &Bench, terms: Option<Compound>) -> Result<String> {
    let key = link_for(b, terms).await?;
    let gw_base = b.target.stack.base_url.clone();
    for u in 0..USERS / 2 {
        let r = b
            .http_noredirect
            .get(format!("{gw_base}/r/{}/{key}", b.target.slug))
            .header("x-forwarded-for", format!("10.{}.{}.1", u / 250, u % 250))
            .send()
            .await?;
        let loc = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let cref = url::Url::parse(&loc)?
            .query_pairs()
            .find(|(k, _)| k == "cref")
            .map(|(_, v)| v.to_string())
            .context("cref")?;
        b.api(
            reqwest::Method::POST,
            "/attribution/identify",
            json!({"cref": cref, "userId": format!("{key}-u{u}")}),
        )
        .await?;
    }
    Ok(key)
}

/// The body of the n-th event of a run on `key`'s users.
fn event_body(prefix: &str, rid: &str, key: &str, n: u64) -> Value {
    json!({"userId": format!("{key}-u{}", n % USERS), "type": "invoice.paid", "value": "49.90",
           "eventId": format!("{prefix}-{rid}-{key}-{n}")})
}

const EVENTS: &str = "/attribution/events";

/// Event ingest through the gateway only (for before/after comparisons).
pub(super) async fn events_via_gateway(b: &Bench, label: impl AsRef<str>) -> Result<Report> {
    events_via_gateway_for(b, label, None).await
}

/// [`events_via_gateway`], the partner paid by per-partner terms when `terms`.
async fn events_via_gateway_for(
    b: &Bench,
    label: impl AsRef<str>,
    terms: Option<Compound>,
) -> Result<Report> {
    let key = identified_users_for(b, terms).await?;
    let (admin, rid) = (b.admin.clone(), b.run_id.clone());
    Ok(b.via_gateway(
        label.as_ref(),
        move |n| {
            let body = event_body("gwo", &rid, &key, n);
            admin.request(Method::POST, EVENTS, &body)
        },
        201,
    )
    .await)
}

/// `POST /attribution/events`: half the users are identified (clicked and stitched), so half
/// the events are attributed and priced, half are `no_identity`. Anchor: pgbench inserting an
/// equivalent event row.
pub(super) async fn events(b: &Bench) -> Result<Section> {
    let key = identified_users(b).await?;
    // Users are per link (per run of this scenario), so runs do not share histories.
    let rid = b.run_id.clone();
    let body = move |side: &str, n: u64| event_body(side, &rid, &key, n);
    let (via_gateway, direct) = b.both_json(Method::POST, EVENTS, body, 201).await;
    let schema = b.target.schema();
    let row = format!(
        "INSERT INTO {schema}.events (id, event_id, user_id, type, value, currency, metadata, ts, attribution_status, response)
         VALUES ($1, $1, 'u1', 'invoice.paid', 49.90, 'USD', '{{}}'::jsonb, now(), 'no_identity', '{{\"ok\":true}}'::jsonb)
         ON CONFLICT (event_id) DO NOTHING"
    );
    let raw = baselines::raw_sql(b, "INSERT event row", &row).await?;
    let mut all = vec![raw];
    let anchor = Pgbench::event_insert(&schema)?;
    match anchor.run(b).await {
        Ok(r) => all.push(r),
        Err(e) => eprintln!("pgbench baseline skipped: {e}"),
    }
    let mut lines = Trio {
        via_gateway,
        direct,
        baselines: all,
    }
    .lines();
    let mut versus = Versus::new("events", b.concurrency, "pgbench");
    pairs(b, &mut versus, &mut lines, &anchor, |i| {
        events_via_gateway(
            b,
            format!("POST /attribution/events   via gateway, pair {i}"),
        )
    })
    .await?;
    Ok(Section {
        lines,
        versus: Some(versus),
    })
}

/// `POST /attribution/events` on a campaign with a three-sub-rule compound rule whose
/// partner is paid by per-partner terms (five versions, the last a compound rule;
/// programs.md) against the same events priced by a campaign's single rule, in alternating
/// runs: the cost of picking the terms in force at each event's time and of pricing
/// first/subsequent sub-rules. `events-terms` uses [`Compound::OnePerEvent`] (the target),
/// `events-terms-stacked` [`Compound::Stacked`] (reported only).
pub(super) async fn events_terms(b: &Bench, kind: Compound) -> Result<Section> {
    let name = match kind {
        Compound::OnePerEvent => "events-terms",
        Compound::Stacked => "events-terms-stacked",
    };
    let mut versus = Versus::new(name, b.concurrency, "single rule");
    let mut lines = vec![format!(
        "  {} alternating runs, partner terms then the campaign's single rule:",
        b.pairs.max(1)
    )];
    for i in 1..=b.pairs.max(1) {
        let terms = events_via_gateway_for(
            b,
            format!("POST /attribution/events   partner terms, pair {i}"),
            Some(kind),
        )
        .await?;
        let single = events_via_gateway(
            b,
            format!("POST /attribution/events   single rule, pair {i}"),
        )
        .await?;
        lines.push(versus.add(i, &terms, &single));
    }
    lines.push(versus.summary());
    Ok(Section {
        lines,
        versus: Some(versus),
    })
}

/// `GET /r/<slug>/<linkKey>`: every click durable before the 302. Anchor: pgbench inserting
/// a click row after its link's lookup.
pub(super) async fn clicks(b: &Bench) -> Result<Section> {
    let key = link(b).await?;
    let (load, path) = (b.admin.load.clone(), format!("/r/{}/{key}", b.target.slug));
    let req = move |n: u64| {
        load.request(Method::GET, &path)
            .header(
                "x-forwarded-for",
                format!("10.9.{}.{}", (n / 250) % 250, n % 250),
            )
            .body(Full::new(Bytes::new()))
            .expect("a valid request")
    };
    let mut tmpl = b.target.envelope("GET", &format!("/{key}"));
    tmpl.surface = Surface::Router as i32;
    tmpl.principal = None;
    tmpl.client_ip = "192.0.2.1".into();
    let (via_gateway, direct) = b
        .both(
            "GET /r/<slug>/<linkKey>",
            req.clone(),
            302,
            move |_| tmpl.clone(),
            302,
        )
        .await;
    let schema = b.target.schema();
    let (link_id, partner_id, campaign_id): (String, String, String) = {
        let c = crate::connect(&b.target.stack.database_url).await?;
        let row = c
            .query_one(
                &format!(
                    "SELECT id, partner_id, campaign_id FROM {schema}.links WHERE link_key = $1"
                ),
                &[&key],
            )
            .await?;
        (row.get(0), row.get(1), row.get(2))
    };
    let raw = baselines::raw_sql(
        b,
        "INSERT click row",
        &format!(
            "INSERT INTO {schema}.clicks (id, link_id, partner_id, campaign_id, ip_hash, user_agent, referer, ts)
             SELECT $1, id, partner_id, campaign_id, md5($1), 'bench', NULL, now() FROM {schema}.links WHERE id = '{link_id}'"
        ),
    )
    .await?;
    let anchor = Pgbench::click_insert(&schema, [&link_id, &partner_id, &campaign_id])?;
    let pg = anchor.run(b).await?;
    let mut lines = Trio {
        via_gateway,
        direct,
        baselines: vec![raw, pg],
    }
    .lines();
    lines.push(user_agent_parse_cost());
    let mut versus = Versus::new("clicks", b.concurrency, "pgbench click insert");
    pairs(b, &mut versus, &mut lines, &anchor, |i| {
        let req = req.clone();
        async move {
            Ok(b.via_gateway(
                &format!("GET /r/<slug>/<linkKey> via gateway, pair {i}"),
                req,
                302,
            )
            .await)
        }
    })
    .await?;
    Ok(Section {
        lines,
        versus: Some(versus),
    })
}

/// `count` partners `<tag>-<run>-<i>@bench.example`: each one a `partner.created` event
/// for every webhook endpoint.
async fn partners(b: &Bench, tag: &str, count: usize) -> Result<()> {
    for i in 0..count {
        b.partner(format!("{tag}-{}-{i}@bench.example", b.run_id), "H")
            .await?;
    }
    Ok(())
}

/// Webhook delivery: (a) deliveries/s draining 1,000 pending deliveries (10 events × 100
/// endpoints) to a local receiver; (b) event ingest with and without a delivery backlog
/// draining at the same time.
pub(super) async fn webhooks(b: &Bench) -> Result<Vec<String>> {
    let receiver = Receiver::start().await?;
    // Ingest alone first, before any endpoint exists.
    let alone =
        events_via_gateway(b, "POST /attribution/events   via gateway, no webhooks").await?;
    for i in 0..100 {
        b.api(
            reqwest::Method::POST,
            "/webhooks",
            json!({"url": receiver.url, "events": ["partner.created"], "label": format!("bench {i}")}),
        )
        .await?;
    }
    let start = Instant::now();
    partners(b, "hook", 10).await?;
    receiver.wait_for(1000, Duration::from_millis(5)).await;
    let drained = start.elapsed();
    let delivered = receiver.received();
    // A backlog (20,000 deliveries) big enough to drain during the whole ingest run.
    partners(b, "hook2", 200).await?;
    let during = events_via_gateway(
        b,
        "POST /attribution/events   via gateway, deliveries draining",
    )
    .await?;
    // Ingest alone again once the backlog is gone: the baseline brackets the measurement.
    receiver.wait_for(21_000, Duration::from_millis(20)).await;
    let after =
        events_via_gateway(b, "POST /attribution/events   via gateway, no webhooks").await?;
    let baseline = (alone.rps() + after.rps()) / 2.0;
    Ok(vec![
        format!(
            "webhook deliveries: {delivered} of 1000 in {:.2} s = {:.0} deliveries/s (10 events x 100 endpoints, local receiver)",
            drained.as_secs_f64(),
            delivered as f64 / drained.as_secs_f64()
        ),
        alone.line(),
        during.line(),
        after.line(),
        format!("  ingest with deliveries / without (mean of before and after): {:.2}", during.rps() / baseline),
    ])
}

/// What parsing a click's `User-Agent` (device, browser, OS) costs, one thread: the router
/// does it in the request's task before the click joins its lane.
fn user_agent_parse_cost() -> String {
    const AGENTS: [&str; 4] = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:121.0) Gecko/20100101 Firefox/121.0",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    ];
    let n = 40_000;
    let start = Instant::now();
    let mut known = 0;
    for i in 0..n {
        let d = op_worker::enrichment::device(Some(AGENTS[i % AGENTS.len()]));
        known += usize::from(d.browser.is_some());
    }
    let per = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    format!("  User-Agent parsing (woothee): {per:.2} µs per click ({n} agents, {known} with a browser)")
}
