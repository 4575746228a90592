//! `openpartner bench`: the load tool. Measures the same operations three ways in one run,
//! so every number has a baseline from the same machine and moment:
//!
//! 1. through the gateway over HTTP (what customers see),
//! 2. straight to a worker over gRPC (the gateway hop removed),
//! 3. raw SQL against the tenant schema (the database floor; writes only).
//!
//! It starts its own stack (embedded Postgres with durable settings, workers, gateway,
//! a fresh tenant) unless pointed at a running one. It reports throughput and latency
//! percentiles; it asserts nothing.

use crate::{
    embedded_pg::EmbeddedPg,
    stack::{Mode, Stack, StackOptions},
};
use anyhow::{Context, Result};
use op_proto::v1::{
    tenant_worker_client::TenantWorkerClient, Envelope, Principal, PrincipalKind, Surface, Tenant,
};
use serde_json::{json, Value};
use std::{
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Concurrent clients per scenario.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Seconds per scenario.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Worker processes in the stack the tool starts.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Use this Postgres instead of a fresh embedded one (the bench creates its own tenant).
    #[arg(long, env = "BENCH_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Scenarios to run (comma-separated): partners-get, partners-create.
    #[arg(long, default_value = "partners-get,partners-create")]
    pub scenarios: String,
}

/// Latency samples and counts of one measured run.
pub struct Report {
    pub label: String,
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub micros: Vec<u64>,
}

impl Report {
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// The `q`-quantile latency in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.micros.is_empty() {
            return f64::NAN;
        }
        let i = ((self.micros.len() as f64 - 1.0) * q).round() as usize;
        self.micros[i] as f64 / 1000.0
    }

    fn line(&self) -> String {
        format!(
            "{:<44} {:>10.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  ({} ok, {} errors)",
            self.label,
            self.rps(),
            self.quantile_ms(0.50),
            self.quantile_ms(0.99),
            self.ok,
            self.errors
        )
    }
}

/// Runs `op` from `concurrency` tasks for `duration`; `op(n)` gets a unique sequence number
/// and returns whether the call succeeded.
pub async fn measure<F, Fut>(label: &str, concurrency: usize, duration: Duration, op: F) -> Report
where
    F: Fn(u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let seq = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (op, seq) = (op.clone(), seq.clone());
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut ok, mut err) = (Vec::with_capacity(4096), 0u64, 0u64);
            while Instant::now() < deadline {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                if op(n).await {
                    ok += 1;
                    lat.push(t.elapsed().as_micros() as u64);
                } else {
                    err += 1;
                }
            }
            (lat, ok, err)
        }));
    }
    let mut report = Report {
        label: label.to_string(),
        ok: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        micros: Vec::new(),
    };
    for t in tasks {
        if let Ok((lat, ok, err)) = t.await {
            report.micros.extend(lat);
            report.ok += ok;
            report.errors += err;
        }
    }
    report.elapsed = start.elapsed();
    report.micros.sort_unstable();
    report
}

struct Target {
    stack: Stack,
    tenant_id: String,
    slug: String,
    admin_key: String,
    dir: Option<std::path::PathBuf>,
}

async fn start_target(args: &BenchArgs) -> Result<Target> {
    let (database_url, pg, dir) = match &args.database_url {
        Some(url) => (url.clone(), None, None),
        None => {
            let dir =
                std::env::temp_dir().join(format!("openpartner-bench-{}", std::process::id()));
            // Durable settings (fsync on): the numbers must mean "2xx = committed".
            let pg = EmbeddedPg::start(&dir.join("pg"), &[("max_connections", "300")]).await?;
            (pg.database_url(), Some(pg), Some(dir))
        }
    };
    let mut client = crate::connect(&database_url).await?;
    op_control::migrations::migrate_all(&mut client).await?;
    let slug = format!(
        "bench-{}",
        &ulid::Ulid::new().to_string().to_lowercase()[16..]
    );
    let p = op_control::tenants::provision(&mut client, &slug, "Bench", None).await?;
    let opts = StackOptions {
        exe: std::env::current_exe()?,
        mode: Mode::Multi,
        port: 0,
        workers: args.workers,
        database_url,
        platform_key: None,
        admin_api_key: None,
        env: vec![
            ("RUST_LOG".into(), "warn".into()),
            ("OP_RATE_LIMIT_PER_MIN".into(), "0".into()),
        ],
        quiet: true,
    };
    let stack = Stack::start(opts, pg).await?;
    Ok(Target {
        stack,
        tenant_id: p.tenant.id,
        slug,
        admin_key: p.admin_key,
        dir,
    })
}

fn envelope(t: &Target, method: &str, path: &str, body: Vec<u8>) -> Envelope {
    let mut principal = Principal::default();
    principal.set_kind(PrincipalKind::PrincipalAdmin);
    Envelope {
        request_id: ulid::Ulid::new().to_string(),
        surface: Surface::Api as i32,
        tenant: Some(Tenant {
            id: t.tenant_id.clone(),
            slug: t.slug.clone(),
        }),
        principal: Some(principal),
        method: method.into(),
        path: path.into(),
        body,
        ..Default::default()
    }
}

pub async fn run(args: BenchArgs) -> Result<()> {
    let target = start_target(&args)
        .await
        .context("starting the bench stack")?;
    let duration = Duration::from_secs(args.seconds);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let base = format!("{}/api/t/{}", target.stack.base_url, target.slug);
    let auth = format!("Bearer {}", target.admin_key);
    let worker = TenantWorkerClient::connect(target.stack.workers[0].url.clone()).await?;
    let run_id = ulid::Ulid::new().to_string().to_lowercase();

    // A partner to read.
    let seed: Value = http
        .post(format!("{base}/partners"))
        .header("authorization", &auth)
        .json(&json!({"email": format!("seed-{run_id}@bench.example"), "name": "Seed", "sendInvite": false}))
        .send()
        .await?
        .json()
        .await?;
    let seed_id = seed["id"].as_str().context("seed partner")?.to_string();

    println!(
        "openpartner bench: {} clients, {} s per scenario, {} workers, {} cores",
        args.concurrency,
        args.seconds,
        args.workers,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut reports = Vec::new();
    for scenario in args.scenarios.split(',').map(str::trim) {
        match scenario {
            "partners-get" => {
                let path = format!("/partners/{seed_id}");
                let (h, url, a) = (http.clone(), format!("{base}{path}"), auth.clone());
                let via_gw = measure("GET /partners/:id   via gateway (HTTP)", args.concurrency, duration, move |_| {
                    let (h, url, a) = (h.clone(), url.clone(), a.clone());
                    async move {
                        matches!(h.get(&url).header("authorization", a).send().await, Ok(r) if r.status().as_u16() == 200)
                    }
                })
                .await;
                let env = envelope(&target, "GET", &path, vec![]);
                let w = worker.clone();
                let direct =
                    measure(
                        "GET /partners/:id   direct to worker (gRPC)",
                        args.concurrency,
                        duration,
                        move |_| {
                            let (mut w, env) = (w.clone(), env.clone());
                            async move {
                                matches!(w.handle(env).await, Ok(r) if r.get_ref().status == 200)
                            }
                        },
                    )
                    .await;
                reports.push((via_gw, direct, None));
            }
            "partners-create" => {
                let (h, url, a, rid) = (
                    http.clone(),
                    format!("{base}/partners"),
                    auth.clone(),
                    run_id.clone(),
                );
                let via_gw = measure("POST /partners      via gateway (HTTP)", args.concurrency, duration, move |n| {
                    let (h, url, a) = (h.clone(), url.clone(), a.clone());
                    let body = json!({"email": format!("gw-{rid}-{n}@bench.example"), "name": "B", "sendInvite": false});
                    async move {
                        matches!(h.post(&url).header("authorization", a).json(&body).send().await, Ok(r) if r.status().as_u16() == 201)
                    }
                })
                .await;
                let (w, rid) = (worker.clone(), run_id.clone());
                let tmpl = envelope(&target, "POST", "/partners", vec![]);
                let direct = measure("POST /partners      direct to worker (gRPC)", args.concurrency, duration, move |n| {
                    let mut w = w.clone();
                    let mut env = tmpl.clone();
                    env.body = json!({"email": format!("w-{rid}-{n}@bench.example"), "name": "B", "sendInvite": false})
                        .to_string()
                        .into_bytes();
                    async move { matches!(w.handle(env).await, Ok(r) if r.get_ref().status == 201) }
                })
                .await;
                let raw = raw_insert_baseline(&target, args.concurrency, duration, &run_id).await?;
                reports.push((via_gw, direct, Some(raw)));
            }
            other => anyhow::bail!("unknown scenario `{other}`"),
        }
    }
    println!();
    for (gw, direct, raw) in &reports {
        println!("{}", gw.line());
        println!("{}", direct.line());
        if let Some(raw) = raw {
            println!("{}", raw.line());
        }
        println!(
            "  gateway hop adds: p50 {:+.2} ms, p99 {:+.2} ms; throughput ratio gateway/direct {:.2}{}",
            gw.quantile_ms(0.5) - direct.quantile_ms(0.5),
            gw.quantile_ms(0.99) - direct.quantile_ms(0.99),
            gw.rps() / direct.rps(),
            raw.as_ref()
                .map(|r| format!(", gateway/raw SQL {:.2}", gw.rps() / r.rps()))
                .unwrap_or_default()
        );
        println!();
    }
    let dir = target.dir.clone();
    drop(target);
    if let Some(dir) = dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}

/// The floor: one INSERT of an equivalent partner row per transaction, `concurrency`
/// connections, straight into the tenant schema.
async fn raw_insert_baseline(
    target: &Target,
    concurrency: usize,
    duration: Duration,
    run_id: &str,
) -> Result<Report> {
    let schema = op_control::tenants::schema_name(&target.tenant_id);
    let mut clients = Vec::new();
    for _ in 0..concurrency {
        let c = crate::connect(&target.stack.database_url).await?;
        c.batch_execute(&format!(
            "SET search_path TO {}",
            op_control::db::quote_ident(&schema)
        ))
        .await?;
        let stmt = c
            .prepare(
                "INSERT INTO partners (id, email, name, metadata, status, activated_at)
                 VALUES ($1, $2, 'B', '{}'::jsonb, 'active', now()) ON CONFLICT (email) DO NOTHING",
            )
            .await?;
        clients.push(Arc::new((c, stmt)));
    }
    let pool = Arc::new(clients);
    let next = Arc::new(AtomicU64::new(0));
    let rid = run_id.to_string();
    Ok(measure(
        "INSERT partner row  raw SQL (baseline)",
        concurrency,
        duration,
        move |n| {
            let (pool, next, rid) = (pool.clone(), next.clone(), rid.clone());
            async move {
                // Each task sticks to "its" connection: n spreads round-robin.
                let i = next.fetch_add(1, Ordering::Relaxed) as usize % pool.len();
                let (c, stmt) = &*pool[i];
                let id = ulid::Ulid::new().to_string();
                let email = format!("raw-{rid}-{n}@bench.example");
                c.execute(stmt, &[&id, &email]).await.is_ok()
            }
        },
    )
    .await)
}
