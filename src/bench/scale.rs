//! `--scenarios tenants-scale`: many tenants on one PostgreSQL (specs/operate.md, Scale).
//!
//! On the bench's fresh database, in this order:
//! 1. `GET /partners/:id` of the bench tenant, the only tenant: p50/p99 at `--concurrency`;
//!    then the workers' CPU while nothing happens (`IDLE`);
//! 2. provisioning `--tenants` − 1 more through `POST /platform/tenants` on the gateway
//!    (`PROVISION_CLIENTS` at a time), timed: tenants per second;
//! 3. the same reads of the same tenant, now one of `--tenants`, and the idle CPU again;
//! 4. `openpartner migrate` (this binary, a child process) with nothing to do, timed;
//! 5. a pending migration: the last tenant migration is rolled back in every tenant schema
//!    (not timed; undone by `ROLLBACKS`, its version row deleted, `schema_version` one
//!    lower) and `openpartner migrate` re-applies it everywhere, timed.

use super::{cpu, measure::measure, report::Report, target::Bench};
use anyhow::{Context, Result};
use http::Method;
use serde_json::{json, Value};
use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

/// Concurrent `POST /platform/tenants` calls while provisioning.
const PROVISION_CLIENTS: usize = 8;
/// How long the workers' idle CPU is sampled.
const IDLE: Duration = Duration::from_secs(20);
/// Connections that roll the last migration back.
const ROLLBACK_CONNECTIONS: usize = 4;

pub(super) async fn tenants_scale(b: &Bench, tenants: usize) -> Result<Vec<String>> {
    anyhow::ensure!(tenants >= 2, "--tenants: at least 2");
    let mut lines = vec![format!(
        "[tenants-scale: {tenants} tenants, reads at {} clients for {} s]",
        b.concurrency,
        b.duration.as_secs()
    )];
    super::scenarios::read_partners(b).await?;
    let one = reads(b, "GET /partners/:id, 1 tenant").await;
    let idle_one = idle_cpu(b).await;
    lines.push(one.line());
    lines.push(format!("idle, 1 tenant:      {idle_one}"));

    let started = Instant::now();
    let failed = provision(b, tenants - 1).await?;
    let took = started.elapsed();
    lines.push(format!(
        "provisioned {} tenants via POST /platform/tenants ({PROVISION_CLIENTS} at a time) in {:.1} s: {:.1} tenants/s, {failed} failed; load average {}",
        tenants - 1,
        took.as_secs_f64(),
        (tenants - 1) as f64 / took.as_secs_f64(),
        load_average()
    ));

    let many = reads(b, &format!("GET /partners/:id, {tenants} tenants")).await;
    let idle_many = idle_cpu(b).await;
    lines.push(many.line());
    lines.push(format!("idle, {tenants} tenants: {idle_many}"));
    lines.push(format!(
        "read p99 at {tenants} tenants / at 1 tenant: {:.2}x (p50 {:.2}x); load average {}",
        many.quantile_ms(0.99) / one.quantile_ms(0.99),
        many.quantile_ms(0.50) / one.quantile_ms(0.50),
        load_average()
    ));

    let noop = migrate(b).await?;
    lines.push(format!(
        "openpartner migrate, nothing to do, {tenants} tenants: {:.2} s ({})",
        noop.0.as_secs_f64(),
        noop.1
    ));
    let rolled = roll_back_last_migration(b).await?;
    let pending = migrate(b).await?;
    lines.push(format!(
        "openpartner migrate, 1 migration pending in {rolled} tenant schemas ({}): {:.2} s ({}); load average {}",
        op_control::migrations::TENANT
            .last()
            .map_or("", |m| m.name),
        pending.0.as_secs_f64(),
        pending.1,
        load_average()
    ));
    Ok(lines)
}

/// The read of the partners-get scenario, through the gateway, after a short warm-up.
async fn reads(b: &Bench, label: &str) -> Report {
    let admin = b.admin.clone();
    let load = admin.load.clone();
    let op = move |client: usize, n: u64| {
        let req = admin.request(
            Method::GET,
            &format!("/partners/{}", super::scenarios::read_id(n)),
            &Value::Null,
        );
        let load = load.clone();
        async move { load.send(client, req).await == Some(200) }
    };
    measure("warm-up", b.concurrency, Duration::from_secs(2), op.clone()).await;
    let label = format!("{label:<40} via gateway (HTTP)");
    measure(&label, b.concurrency, b.duration, op).await
}

/// The workers' and PostgreSQL's CPU over `IDLE` with no requests, as a share of one core.
async fn idle_cpu(b: &Bench) -> String {
    // Whatever the previous step left in flight settles first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = cpu::snapshot();
    tokio::time::sleep(IDLE).await;
    let spent = cpu::spent_since(&before);
    let share = |part: &str| {
        spent
            .iter()
            .find(|(p, _)| *p == part)
            .map_or(0.0, |(_, s)| s * 100.0 / IDLE.as_secs_f64())
    };
    let workers = b.target.stack.workers.len().max(1);
    format!(
        "workers {:.2}% of a core ({} workers: {:.2}% each), postgres {:.2}%, gateway {:.2}% over {} s",
        share("workers"),
        workers,
        share("workers") / workers as f64,
        share("postgres"),
        share("gateway"),
        IDLE.as_secs()
    )
}

/// Provisions `n` tenants through the gateway, `PROVISION_CLIENTS` at a time. Returns how
/// many calls failed.
async fn provision(b: &Bench, n: usize) -> Result<usize> {
    let key = b
        .target
        .platform_key
        .clone()
        .context("the bench stack has no platform key")?;
    let url = format!("{}/platform/tenants", b.target.stack.base_url);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(PROVISION_CLIENTS)
        .build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let run = b.run_id.clone();
    let mut tasks = Vec::new();
    for _ in 0..PROVISION_CLIENTS {
        let (http, url, key, next, failed, run) = (
            http.clone(),
            url.clone(),
            key.clone(),
            next.clone(),
            failed.clone(),
            run.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let slug = format!("s{i}-{}", &run[run.len() - 8..]);
                let ok = http
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&json!({"slug": slug, "name": format!("Scale {i}")}))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().as_u16() == 201);
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                if i > 0 && i % 1000 == 0 {
                    eprintln!("  provisioned {i} tenants");
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    Ok(failed.load(Ordering::Relaxed))
}

/// Runs `openpartner migrate` against the bench database: how long it took, and the last
/// line it printed.
async fn migrate(b: &Bench) -> Result<(Duration, String)> {
    let started = Instant::now();
    let out = tokio::process::Command::new(std::env::current_exe()?)
        .arg("migrate")
        .env("DATABASE_URL", &b.target.stack.database_url)
        .env("RUST_LOG", "warn")
        .output()
        .await?;
    let took = started.elapsed();
    anyhow::ensure!(
        out.status.success(),
        "openpartner migrate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .to_string();
    Ok((took, said))
}

/// How to undo a tenant migration, for the ones this scenario can take back (a new last
/// migration needs its entry here).
const ROLLBACKS: &[(&str, &[&str])] = &[
    (
        "0015_events_user_ts_id",
        &[
            "CREATE INDEX events_user_idx ON events (user_id, ts)",
            "DROP INDEX events_user_ts_id_idx",
        ],
    ),
    (
        // A backfill: the rollups it fills are emptied, so applying it again fills them.
        "0017_reporting_money_backfill",
        &[
            "DELETE FROM event_rollups",
            "DELETE FROM user_rollups",
            "DELETE FROM commission_rollups",
        ],
    ),
];

/// Undoes the last tenant migration in every tenant schema ([`ROLLBACKS`]), one transaction
/// per schema, so that `openpartner migrate` has it to apply again. Returns how many schemas
/// it rolled back.
async fn roll_back_last_migration(b: &Bench) -> Result<usize> {
    let last = op_control::migrations::TENANT
        .last()
        .context("no migrations")?;
    let undo = ROLLBACKS
        .iter()
        .find(|(name, _)| *name == last.name)
        .map(|(_, undo)| *undo)
        .with_context(|| {
            format!(
                "the scenario cannot roll back {} (src/bench/scale.rs ROLLBACKS)",
                last.name
            )
        })?;
    let url = &b.target.stack.database_url;
    let c = crate::connect(url).await?;
    let ids: Vec<String> = c
        .query("SELECT id FROM control.tenants ORDER BY id", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let queue = std::sync::Mutex::new(ids.clone().into_iter());
    let mut lanes = Vec::new();
    for _ in 0..ROLLBACK_CONNECTIONS {
        lanes.push(crate::connect(url).await?);
    }
    let version = last.version;
    let work = lanes.iter_mut().map(|client| {
        let queue = &queue;
        async move {
            loop {
                let Some(id) = queue.lock().expect("queue").next() else {
                    return Ok::<_, anyhow::Error>(());
                };
                let schema = op_control::schema::Schema::of_tenant(&id).context("tenant id")?;
                let tx = client.transaction().await?;
                tx.batch_execute(&format!("SET LOCAL search_path TO {schema}"))
                    .await?;
                for statement in undo {
                    tx.batch_execute(statement).await?;
                }
                tx.execute(
                    "DELETE FROM schema_migrations WHERE version = $1",
                    &[&version],
                )
                .await?;
                tx.execute(
                    "UPDATE control.tenants SET schema_version = $2 WHERE id = $1",
                    &[&id, &(version - 1)],
                )
                .await?;
                tx.commit().await?;
            }
        }
    });
    for lane in futures::future::join_all(work).await {
        lane?;
    }
    Ok(ids.len())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".into())
}
