//! The scenarios: the data each one sets up through the tenant API (partners, campaigns,
//! links, identified users, webhook endpoints) and what it measures. Each returns its
//! section of the report.

use super::{
    baselines,
    receiver::Receiver,
    report::{Report, Trio},
    target::Bench,
};
use anyhow::{Context, Result};
use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use op_proto::v1::Surface;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// `GET /partners/:id`.
pub(super) async fn partners_get(b: &Bench) -> Result<Trio> {
    let seed = b
        .partner(format!("seed-{}@bench.example", b.run_id), "Seed")
        .await?;
    let path = format!("/partners/{}", seed["id"].as_str().context("seed partner")?);
    let req = b.admin.request(Method::GET, &path, &Value::Null);
    let env = b.target.envelope("GET", &path);
    let (via_gateway, direct) = b
        .both(
            "GET /partners/:id",
            move |_| req.clone(),
            200,
            move |_| env.clone(),
            200,
        )
        .await;
    Ok(Trio {
        via_gateway,
        direct,
        baselines: vec![],
    })
}

/// `POST /partners`, a new e-mail each time.
pub(super) async fn partners_create(b: &Bench) -> Result<Trio> {
    let rid = b.run_id.clone();
    let body = move |side: &str, n: u64| json!({"email": format!("{side}-{rid}-{n}@bench.example"), "name": "B", "sendInvite": false});
    let (via_gateway, direct) = b.both_json(Method::POST, "/partners", body, 201).await;
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
    Ok(Trio {
        via_gateway,
        direct,
        baselines: vec![raw],
    })
}

/// A campaign, a partner and a link on it; returns the link key.
async fn link(b: &Bench) -> Result<String> {
    let c = b
        .api(
            reqwest::Method::POST,
            "/campaigns",
            json!({"name": "Bench", "destinationUrl": "https://shop.bench.example/?src=op", "commissionRule": {"type": "percent", "value": "10"}}),
        )
        .await?;
    let p = b
        .partner(
            format!("linker-{}-{}@bench.example", b.run_id, ulid::Ulid::new()),
            "L",
        )
        .await?;
    let key = format!("bench{}", &ulid::Ulid::new().to_string()[16..]);
    b.api(
        reqwest::Method::POST,
        &format!("/partners/{}/links", p["id"].as_str().context("partner")?),
        json!({"linkKey": key, "campaignId": c["id"]}),
    )
    .await?;
    Ok(key)
}

const USERS: u64 = 200;

/// A link whose first `USERS / 2` users clicked it and were identified; returns its key.
async fn identified_users(b: &Bench) -> Result<String> {
    let key = link(b).await?;
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
async fn events_via_gateway(b: &Bench, label: &str) -> Result<Report> {
    let key = identified_users(b).await?;
    let (admin, rid) = (b.admin.clone(), b.run_id.clone());
    Ok(b.via_gateway(
        label,
        move |n| {
            let body = event_body("gwo", &rid, &key, n);
            admin.request(Method::POST, EVENTS, &body)
        },
        201,
    )
    .await)
}

/// `POST /attribution/events`: half the users are identified (clicked and stitched), so half
/// the events are attributed and priced, half are `no_identity`.
pub(super) async fn events(b: &Bench) -> Result<Trio> {
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
    match baselines::pgbench(b, &schema).await {
        Ok(r) => all.push(r),
        Err(e) => eprintln!("pgbench baseline skipped: {e}"),
    }
    Ok(Trio {
        via_gateway,
        direct,
        baselines: all,
    })
}

/// `pairs` × (event ingest through the gateway, then pgbench), each pair's ratio and the
/// median ratio.
pub(super) async fn event_pairs(b: &Bench) -> Result<Vec<String>> {
    if b.pairs == 0 {
        return Ok(vec![]);
    }
    let schema = b.target.schema();
    let mut lines = vec![format!(
        "  {} alternating runs, gateway then pgbench:",
        b.pairs
    )];
    let mut ratios = Vec::new();
    for i in 1..=b.pairs {
        let label = format!("POST /attribution/events   via gateway, pair {i}");
        let gw = events_via_gateway(b, &label).await?;
        let pg = baselines::pgbench(b, &schema).await?;
        ratios.push(gw.rps() / pg.rps());
        lines.push(format!(
            "  pair {i}: gateway {:>6.0}/s (p50 {:.2} ms, p99 {:.2} ms), pgbench {:>6.0}/s: {:.2}x",
            gw.rps(),
            gw.quantile_ms(0.5),
            gw.quantile_ms(0.99),
            pg.rps(),
            gw.rps() / pg.rps()
        ));
    }
    ratios.sort_by(f64::total_cmp);
    lines.push(format!(
        "  gateway/pgbench, median of {} pairs: {:.2}x (range {:.2}–{:.2})",
        ratios.len(),
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1]
    ));
    Ok(lines)
}

/// `GET /r/<slug>/<linkKey>`: every click durable before the 302.
pub(super) async fn clicks(b: &Bench) -> Result<Trio> {
    let key = link(b).await?;
    let (load, path) = (b.admin.load.clone(), format!("/r/{}/{key}", b.target.slug));
    let mut tmpl = b.target.envelope("GET", &format!("/{key}"));
    tmpl.surface = Surface::Router as i32;
    tmpl.principal = None;
    tmpl.client_ip = "192.0.2.1".into();
    let (via_gateway, direct) = b
        .both(
            "GET /r/<slug>/<linkKey>",
            move |n| {
                load.request(Method::GET, &path)
                    .header(
                        "x-forwarded-for",
                        format!("10.9.{}.{}", (n / 250) % 250, n % 250),
                    )
                    .body(Full::new(Bytes::new()))
                    .expect("a valid request")
            },
            302,
            move |_| tmpl.clone(),
            302,
        )
        .await;
    let schema = b.target.schema();
    let link_id: String = {
        let c = crate::connect(&b.target.stack.database_url).await?;
        c.query_one(
            &format!("SELECT id FROM {schema}.links WHERE link_key = $1"),
            &[&key],
        )
        .await?
        .get(0)
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
    Ok(Trio {
        via_gateway,
        direct,
        baselines: vec![raw],
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
