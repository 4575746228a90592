//! The `tenant-move` scenario (specs/operate.md, Scale): a live tenant moved to another node
//! of a Citus cluster under load. The bench tenant gets a history (200,000 clicks by bulk
//! SQL), then clients read partners and ingest events with an `eventId` through the gateway
//! while `citus_schema_move` copies the tenant to the other node and back. It reports the
//! latency of the requests sent during each move against the same load before it, the
//! failed requests, and the acknowledged events missing afterwards (lost writes). Needs
//! `--database-url` of a Citus coordinator with at least two worker nodes.

use super::{
    report::{Report, Section},
    target::Bench,
};
use anyhow::{bail, Context, Result};
use http::Method;
use op_control::placement;
use serde_json::{json, Value};
use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

/// Clicks written before the moves, so that a move copies a tenant-sized schema.
const HISTORY_CLICKS: u64 = 200_000;
/// Partners the readers pick from.
const PARTNERS: usize = 50;

/// One request of the load: when it started (since the load's start), how long it took,
/// whether it succeeded, and the event id it wrote (writes only).
struct Sample {
    at: Duration,
    micros: u64,
    ok: bool,
    event: Option<String>,
}

pub(super) async fn tenant_move(b: &Bench) -> Result<Section> {
    let db = crate::connect(&b.target.stack.database_url).await?;
    if !placement::is_citus(&db).await? {
        bail!("tenant-move needs a Citus coordinator (--database-url)");
    }
    let schema = b.target.schema();
    let nodes = placement::nodes(&db).await?;
    let home = placement::nodes_of(&db, &[schema.name().to_string()])
        .await?
        .remove(schema.name())
        .context("the bench tenant's schema is not distributed")?;
    let Some(away) = nodes.iter().find(|n| **n != home).cloned() else {
        bail!(
            "tenant-move needs a second node (nodes: {})",
            nodes.join(", ")
        );
    };

    // The history and the partners the readers read.
    let mut partners = Vec::new();
    for i in 0..PARTNERS {
        let p = b
            .partner(format!("move-{i}-{}@bench.example", b.run_id), "Move")
            .await?;
        partners.push(p["id"].as_str().unwrap_or_default().to_string());
    }
    let c = b
        .api(
            reqwest::Method::POST,
            "/campaigns",
            json!({"name": "Move", "destinationUrl": "https://shop.bench.example/", "commissionRule": {"type": "percent", "value": "10"}}),
        )
        .await?;
    let campaign = c["id"].as_str().unwrap_or_default().to_string();
    let l = b
        .api(
            reqwest::Method::POST,
            &format!("/partners/{}/links", partners[0]),
            json!({"campaignId": campaign, "linkKey": format!("move-{}", b.run_id)}),
        )
        .await?;
    let link = l["id"].as_str().unwrap_or_default().to_string();
    let started = Instant::now();
    db.execute(
        &format!(
            "INSERT INTO {s}.clicks (id, link_id, partner_id, campaign_id, ip_hash, user_agent, ts)
             SELECT '0000006' || (1000000000000000000 + n), $1, $2, $3, md5(n::text), 'bench',
                    now() - n * interval '1 second'
               FROM generate_series(1, {HISTORY_CLICKS}) n",
            s = schema
        ),
        &[&link, &partners[0], &campaign],
    )
    .await?;
    let size: String = db
        .query_one(
            "SELECT schema_size FROM citus_schemas WHERE schema_name = $1::text::regnamespace",
            &[&schema.name()],
        )
        .await?
        .get(0);
    let mut lines = vec![format!(
        "tenant-move: {HISTORY_CLICKS} clicks written in {:.1} s; schema {size}; {} clients (half reads of GET /partners/:id, half POST /attribution/events with eventId)",
        started.elapsed().as_secs_f64(),
        b.concurrency
    )];

    // The load, until told to stop.
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let seq = Arc::new(AtomicU64::new(0));
    let partners = Arc::new(partners);
    let mut tasks = Vec::new();
    for client in 0..b.concurrency {
        let (admin, stop, seq, partners) =
            (b.admin.clone(), stop.clone(), seq.clone(), partners.clone());
        let rid = b.run_id.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let (req, event, want) = if n % 2 == 0 {
                    let id = &partners[(n / 2) as usize % partners.len()];
                    let req = admin.request(Method::GET, &format!("/partners/{id}"), &Value::Null);
                    (req, None, 200)
                } else {
                    let event = format!("move-{rid}-{n}");
                    let body = json!({"userId": format!("move-u{}", n % 997), "type": "invoice.paid", "value": "10.00", "eventId": event});
                    (
                        admin.request(Method::POST, "/attribution/events", &body),
                        Some(event),
                        201,
                    )
                };
                let at = t0.elapsed();
                let status = admin.load.send(client, req).await;
                samples.push(Sample {
                    at,
                    micros: (t0.elapsed() - at).as_micros() as u64,
                    ok: status == Some(want),
                    event,
                });
            }
            samples
        }));
    }

    // Quiet load first (the same load without a move), then there and back.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut windows = vec![(
        "no move (the same load before)".to_string(),
        Duration::ZERO,
        t0.elapsed(),
    )];
    for (from, to) in [(&home, &away), (&away, &home)] {
        let begin = t0.elapsed();
        let moved = placement::move_schema(&db, &schema, to)
            .await
            .with_context(|| format!("moving the bench tenant from {from} to {to}"))?;
        anyhow::ensure!(moved.moved, "the tenant was already on {to}");
        let end = t0.elapsed();
        windows.push((
            format!(
                "during the move {from} → {to} ({:.1} s)",
                (end - begin).as_secs_f64()
            ),
            begin,
            end,
        ));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await?);
    }

    for (label, begin, end) in &windows {
        let inside: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.at >= *begin && s.at < *end)
            .collect();
        let mut micros: Vec<u64> = inside.iter().filter(|s| s.ok).map(|s| s.micros).collect();
        micros.sort_unstable();
        let report = Report {
            label: label.clone(),
            ok: micros.len() as u64,
            errors: inside.iter().filter(|s| !s.ok).count() as u64,
            elapsed: *end - *begin,
            micros,
            cpu: Vec::new(),
        };
        lines.push(format!(
            "{}  max {:.1} ms",
            report.line(),
            report.micros.last().copied().unwrap_or(0) as f64 / 1000.0
        ));
    }
    // Lost writes: acknowledged events the tenant does not have.
    let acked: Vec<String> = samples
        .iter()
        .filter(|s| s.ok)
        .filter_map(|s| s.event.clone())
        .collect();
    let found: i64 = db
        .query_one(
            &format!("SELECT count(*) FROM {schema}.events WHERE event_id = ANY($1)"),
            &[&acked],
        )
        .await?
        .get(0);
    let failed = samples.iter().filter(|s| !s.ok).count();
    lines.push(format!(
        "acknowledged events {}, in the tenant afterwards {found}: {} lost; failed requests {failed}; the tenant is back on {home}",
        acked.len(),
        acked.len() as i64 - found
    ));
    Ok(Section::plain(lines))
}
