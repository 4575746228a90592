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
    stack::{Mode, Stack, StackOptions, WorkerTransport},
};
use anyhow::{Context, Result};
use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use http_load::Clients;
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

mod http_load;

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
    /// Scenarios to run (comma-separated): partners-get, partners-create, events, clicks, webhooks.
    #[arg(
        long,
        default_value = "partners-get,partners-create,events,clicks,webhooks"
    )]
    pub scenarios: String,
    /// Extra alternating runs of event ingest through the gateway and pgbench (events
    /// scenario): a shared machine's speed drifts over minutes, and the ratio of two
    /// adjacent runs cancels the drift better than one run of each.
    #[arg(long, default_value_t = 3)]
    pub pairs: usize,
    /// How the gateway reaches the workers (both on this machine).
    #[arg(long, value_enum, default_value_t = WorkerTransport::Unix)]
    pub worker_transport: WorkerTransport,
}

/// Latency samples and counts of one measured run.
pub struct Report {
    pub label: String,
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub micros: Vec<u64>,
    /// CPU seconds each part of the system spent during the run (Linux; empty elsewhere).
    pub cpu: Vec<(&'static str, f64)>,
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
        let mut line = format!(
            "{:<52} {:>10.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  ({} ok, {} errors)",
            self.label,
            self.rps(),
            self.quantile_ms(0.50),
            self.quantile_ms(0.99),
            self.ok,
            self.errors
        );
        if !self.cpu.is_empty() && self.ok > 0 {
            // Where the machine's CPU went, per successful request: the profile in one line.
            let per: Vec<String> = self
                .cpu
                .iter()
                .map(|(part, secs)| format!("{part} {:.0}", secs * 1e6 / self.ok as f64))
                .collect();
            line.push_str(&format!("\n{:<52} CPU µs/req: {}", "", per.join(", ")));
        }
        line
    }
}

/// Runs `op` from `concurrency` tasks for `duration`; `op(client, n)` gets the task's index
/// and a unique sequence number and returns whether the call succeeded.
pub async fn measure<F, Fut>(label: &str, concurrency: usize, duration: Duration, op: F) -> Report
where
    F: Fn(usize, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let seq = Arc::new(AtomicU64::new(0));
    let cpu_before = cpu::snapshot();
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for client in 0..concurrency {
        let (op, seq) = (op.clone(), seq.clone());
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut ok, mut err) = (Vec::with_capacity(4096), 0u64, 0u64);
            while Instant::now() < deadline {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                if op(client, n).await {
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
        cpu: Vec::new(),
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
    report.cpu = cpu::spent_since(&cpu_before);
    report
}

/// CPU time per part of the system (PostgreSQL, workers, gateway, this load generator),
/// from `/proc`: with everything on one machine, the split says where a request's cost is.
mod cpu {
    use std::collections::HashMap;

    /// CPU seconds per process id, with the part each process belongs to.
    pub type Snapshot = HashMap<u32, (&'static str, f64)>;

    pub fn snapshot() -> Snapshot {
        let mut out = Snapshot::new();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return out;
        };
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let me = std::process::id();
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // `pid (comm) state …`: utime and stime are fields 14 and 15.
            let Some((head, rest)) = stat.rsplit_once(") ") else {
                continue;
            };
            let fields: Vec<f64> = rest
                .split_whitespace()
                .map(|f| f.parse().unwrap_or(0.0))
                .collect();
            if fields.len() < 15 {
                continue;
            }
            let comm = head.split_once('(').map_or("", |(_, c)| c);
            // Own time, plus for PostgreSQL the exited backends the postmaster waited for
            // (pgbench's connections end before the run is measured).
            let mut secs = (fields[11] + fields[12]) / ticks;
            if comm == "postgres" {
                secs += (fields[13] + fields[14]) / ticks;
            }
            let part = if pid == me {
                "load generator"
            } else if comm == "postgres" {
                "postgres"
            } else {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let mut args = cmdline.split(|b| *b == 0).skip(1);
                match args.next() {
                    Some(b"worker") => "workers",
                    Some(b"gateway") => "gateway",
                    _ => "other",
                }
            };
            out.insert(pid, (part, secs));
        }
        out
    }

    /// CPU seconds of this process's exited, waited-for children.
    pub fn children_secs() -> f64 {
        // SAFETY: getrusage writes into the zeroed struct we pass.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) } != 0 {
            return 0.0;
        }
        let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
        t(u.ru_utime) + t(u.ru_stime)
    }

    /// CPU seconds per part since `before` (processes born since count from zero).
    pub fn spent_since(before: &Snapshot) -> Vec<(&'static str, f64)> {
        let mut parts: HashMap<&'static str, f64> = HashMap::new();
        for (pid, (part, secs)) in snapshot() {
            let was = before.get(&pid).map_or(0.0, |(_, s)| *s);
            *parts.entry(part).or_default() += (secs - was).max(0.0);
        }
        let order = ["postgres", "workers", "gateway", "load generator", "other"];
        order
            .iter()
            .filter_map(|p| parts.get(p).filter(|s| **s > 0.0).map(|s| (*p, *s)))
            .collect()
    }
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
            // Durable settings (fsync on): the numbers must mean "2xx = committed". Sized
            // as a server would be rather than PostgreSQL's minimal defaults (128 MB of
            // buffers, a checkpoint every 1 GB of WAL, which a write benchmark reaches every
            // ~20 s — PostgreSQL then logs "checkpoints are occurring too frequently").
            // Both the product and the pgbench baseline run on this server.
            let settings = [
                ("max_connections", "300"),
                ("shared_buffers", "1GB"),
                ("max_wal_size", "8GB"),
                ("checkpoint_timeout", "15min"),
            ];
            let pg = EmbeddedPg::start(&dir.join("pg"), &settings).await?;
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
            ("OP_CLICK_IP_CAP_PER_MIN".into(), "0".into()),
            ("OP_SECRETS_KEY".into(), "bench-secrets-key".into()),
            ("OP_WEBHOOK_ALLOW_PRIVATE".into(), "1".into()),
        ],
        quiet: true,
        worker_transport: args.worker_transport,
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

/// What every scenario needs: the stack, clients and the run's knobs.
struct Bench {
    target: Target,
    http: reqwest::Client,
    /// Does not follow redirects (the click router answers 302).
    http_noredirect: reqwest::Client,
    base: String,
    /// `/api/t/<slug>`: the tenant API's path prefix.
    prefix: String,
    auth: String,
    /// The measured HTTP load: one connection per client.
    load: Arc<Clients>,
    worker: TenantWorkerClient<tonic::transport::Channel>,
    run_id: String,
    pairs: usize,
    concurrency: usize,
    duration: Duration,
}

impl Bench {
    async fn api(&self, method: reqwest::Method, path: &str, body: Value) -> Result<Value> {
        let r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("authorization", &self.auth)
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or_default();
        anyhow::ensure!(status.is_success(), "{path}: {status} {v}");
        Ok(v)
    }

    /// An admin request to the tenant's API, for the load (`path` is tenant-relative).
    fn admin(&self, method: Method, path: &str, body: &Value) -> http::Request<Full<Bytes>> {
        api_request(&self.load, &self.prefix, &self.auth, method, path, body)
    }

    /// The same operation through the gateway and straight to the worker.
    async fn both(
        &self,
        label: &str,
        http_req: impl Fn(u64) -> http::Request<Full<Bytes>> + Clone + Send + Sync + 'static,
        want_http: u16,
        envelope_for: impl Fn(u64) -> Envelope + Clone + Send + Sync + 'static,
        want_grpc: u32,
    ) -> (Report, Report) {
        let load = self.load.clone();
        let via_gw = measure(
            &format!("{label:<26} via gateway (HTTP)"),
            self.concurrency,
            self.duration,
            move |client, n| {
                let (load, req) = (load.clone(), http_req(n));
                async move { load.send(client, req).await == Some(want_http) }
            },
        )
        .await;
        let w = self.worker.clone();
        let direct =
            measure(
                &format!("{label:<26} direct to worker (gRPC)"),
                self.concurrency,
                self.duration,
                move |_, n| {
                    let (mut w, env) = (w.clone(), envelope_for(n));
                    async move {
                        matches!(w.handle(env).await, Ok(r) if r.get_ref().status == want_grpc)
                    }
                },
            )
            .await;
        (via_gw, direct)
    }
}

/// `method path` of the tenant API under `prefix` (`/api/t/<slug>`) with the admin key and a
/// JSON body (none for `Value::Null`).
fn api_request(
    load: &Clients,
    prefix: &str,
    auth: &str,
    method: Method,
    path: &str,
    body: &Value,
) -> http::Request<Full<Bytes>> {
    let body = match body {
        Value::Null => Bytes::new(),
        v => Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
    };
    load.request(method, &format!("{prefix}{path}"))
        .header(http::header::AUTHORIZATION, auth)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .expect("a valid request")
}

pub async fn run(args: BenchArgs) -> Result<()> {
    let target = start_target(&args)
        .await
        .context("starting the bench stack")?;
    let b = Bench {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(args.concurrency)
            .build()?,
        http_noredirect: reqwest::Client::builder()
            .pool_max_idle_per_host(args.concurrency)
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
        base: format!("{}/api/t/{}", target.stack.base_url, target.slug),
        prefix: format!("/api/t/{}", target.slug),
        load: Arc::new(Clients::new(&target.stack.base_url, args.concurrency)?),
        auth: format!("Bearer {}", target.admin_key),
        worker: TenantWorkerClient::connect(target.stack.workers[0].url.clone()).await?,
        run_id: ulid::Ulid::new().to_string().to_lowercase(),
        pairs: args.pairs,
        concurrency: args.concurrency,
        duration: Duration::from_secs(args.seconds),
        target,
    };
    println!(
        "openpartner bench: {} clients, {} s per scenario, {} workers, {} cores",
        args.concurrency,
        args.seconds,
        args.workers,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut sections: Vec<Vec<String>> = Vec::new();
    for scenario in args.scenarios.split(',').map(str::trim) {
        let section = match scenario {
            "partners-get" => trio_lines(partners_get(&b).await?),
            "partners-create" => trio_lines(partners_create(&b).await?),
            "events" => {
                let mut lines = trio_lines(events(&b).await?);
                lines.extend(event_pairs(&b).await?);
                lines
            }
            "clicks" => trio_lines(clicks(&b).await?),
            "webhooks" => webhooks(&b).await?,
            other => anyhow::bail!("unknown scenario `{other}`"),
        };
        sections.push(section);
    }
    println!();
    for lines in &sections {
        for l in lines {
            println!("{l}");
        }
        println!();
    }
    let dir = b.target.dir.clone();
    drop(b);
    if let Some(dir) = dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}

/// The report of a gateway / direct / baselines trio, with the ratios that matter.
fn trio_lines((gw, direct, baselines): (Report, Report, Vec<Report>)) -> Vec<String> {
    let mut lines = vec![gw.line(), direct.line()];
    lines.extend(baselines.iter().map(Report::line));
    let mut ratios = format!(
        "  gateway hop adds: p50 {:+.2} ms, p99 {:+.2} ms; throughput gateway/direct {:.2}",
        gw.quantile_ms(0.5) - direct.quantile_ms(0.5),
        gw.quantile_ms(0.99) - direct.quantile_ms(0.99),
        gw.rps() / direct.rps(),
    );
    for base in &baselines {
        let name = if base.label.contains("pgbench") {
            "pgbench"
        } else {
            "raw SQL"
        };
        ratios.push_str(&format!("; gateway/{name} {:.2}", gw.rps() / base.rps()));
    }
    lines.push(ratios);
    lines
}

async fn partners_get(b: &Bench) -> Result<(Report, Report, Vec<Report>)> {
    let seed = b
        .api(
            reqwest::Method::POST,
            "/partners",
            json!({"email": format!("seed-{}@bench.example", b.run_id), "name": "Seed", "sendInvite": false}),
        )
        .await?;
    let path = format!("/partners/{}", seed["id"].as_str().context("seed partner")?);
    let req = b.admin(Method::GET, &path, &Value::Null);
    let env = envelope(&b.target, "GET", &path, vec![]);
    let (gw, direct) = b
        .both(
            "GET /partners/:id",
            move |_| req.clone(),
            200,
            move |_| env.clone(),
            200,
        )
        .await;
    Ok((gw, direct, vec![]))
}

async fn partners_create(b: &Bench) -> Result<(Report, Report, Vec<Report>)> {
    let (load, prefix, auth, rid) = (
        b.load.clone(),
        b.prefix.clone(),
        b.auth.clone(),
        b.run_id.clone(),
    );
    let body = move |prefix: &str, n: u64| json!({"email": format!("{prefix}-{rid}-{n}@bench.example"), "name": "B", "sendInvite": false});
    let (b1, b2) = (body.clone(), body);
    let tmpl = envelope(&b.target, "POST", "/partners", vec![]);
    let (gw, direct) = b
        .both(
            "POST /partners",
            move |n| {
                api_request(
                    &load,
                    &prefix,
                    &auth,
                    Method::POST,
                    "/partners",
                    &b1("gw", n),
                )
            },
            201,
            move |n| Envelope {
                body: b2("w", n).to_string().into_bytes(),
                ..tmpl.clone()
            },
            201,
        )
        .await;
    let schema = op_control::schema::schema_name(&b.target.tenant_id);
    let raw = raw_sql_baseline(
        b,
        "INSERT partner row",
        &format!(
            "INSERT INTO {}.partners (id, email, name, metadata, status, activated_at)
             VALUES ($1, $1 || '@raw.bench.example', 'B', '{{}}'::jsonb, 'active', now()) ON CONFLICT (email) DO NOTHING",
            op_control::schema::quote_ident(&schema)
        ),
    )
    .await?;
    Ok((gw, direct, vec![raw]))
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
        .api(
            reqwest::Method::POST,
            "/partners",
            json!({"email": format!("linker-{}-{}@bench.example", b.run_id, ulid::Ulid::new()), "name": "L", "sendInvite": false}),
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

/// `POST /attribution/events`: half the users are identified (clicked and stitched), so half
/// the events are attributed and priced, half are `no_identity`.
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

const USERS: u64 = 200;

/// The body of the n-th event of a run on `key`'s users.
fn event_body(prefix: &str, rid: &str, key: &str, n: u64) -> Value {
    json!({"userId": format!("{key}-u{}", n % USERS), "type": "invoice.paid", "value": "49.90",
           "eventId": format!("{prefix}-{rid}-{key}-{n}")})
}

const EVENTS: &str = "/attribution/events";

/// Event ingest through the gateway only (for before/after comparisons).
async fn events_via_gateway(b: &Bench, label: &str) -> Result<Report> {
    let key = identified_users(b).await?;
    let (load, prefix, auth, rid) = (
        b.load.clone(),
        b.prefix.clone(),
        b.auth.clone(),
        b.run_id.clone(),
    );
    Ok(measure(label, b.concurrency, b.duration, move |client, n| {
        let body = event_body("gwo", &rid, &key, n);
        let req = api_request(&load, &prefix, &auth, Method::POST, EVENTS, &body);
        let load = load.clone();
        async move { load.send(client, req).await == Some(201) }
    })
    .await)
}

async fn events(b: &Bench) -> Result<(Report, Report, Vec<Report>)> {
    let key = identified_users(b).await?;
    // Users are per link (per run of this scenario), so runs do not share histories.
    let (k1, k2, r1, r2) = (key.clone(), key.clone(), b.run_id.clone(), b.run_id.clone());
    let e1 = move |n: u64| event_body("gw", &r1, &k1, n);
    let e2 = move |n: u64| event_body("w", &r2, &k2, n);
    let (load, prefix, auth) = (b.load.clone(), b.prefix.clone(), b.auth.clone());
    let tmpl = envelope(&b.target, "POST", EVENTS, vec![]);
    let (gw, direct) = b
        .both(
            "POST /attribution/events",
            move |n| api_request(&load, &prefix, &auth, Method::POST, EVENTS, &e1(n)),
            201,
            move |n| Envelope {
                body: e2(n).to_string().into_bytes(),
                ..tmpl.clone()
            },
            201,
        )
        .await;
    let schema = op_control::schema::Schema::of_tenant(&b.target.tenant_id)
        .expect("tenant id")
        .to_string();
    let row = format!(
        "INSERT INTO {schema}.events (id, event_id, user_id, type, value, currency, metadata, ts, attribution_status, response)
         VALUES ($1, $1, 'u1', 'invoice.paid', 49.90, 'USD', '{{}}'::jsonb, now(), 'no_identity', '{{\"ok\":true}}'::jsonb)
         ON CONFLICT (event_id) DO NOTHING"
    );
    let raw = raw_sql_baseline(b, "INSERT event row", &row).await?;
    let mut baselines = vec![raw];
    match pgbench_baseline(b, &schema).await {
        Ok(r) => baselines.push(r),
        Err(e) => eprintln!("pgbench baseline skipped: {e}"),
    }
    Ok((gw, direct, baselines))
}

/// `pairs` × (event ingest through the gateway, then pgbench), each pair's ratio and the
/// median ratio.
async fn event_pairs(b: &Bench) -> Result<Vec<String>> {
    if b.pairs == 0 {
        return Ok(vec![]);
    }
    let schema = op_control::schema::Schema::of_tenant(&b.target.tenant_id)
        .expect("tenant id")
        .to_string();
    let mut lines = vec![format!(
        "  {} alternating runs, gateway then pgbench:",
        b.pairs
    )];
    let mut ratios = Vec::new();
    for i in 1..=b.pairs {
        let label = format!("POST /attribution/events   via gateway, pair {i}");
        let gw = events_via_gateway(b, &label).await?;
        let pg = pgbench_baseline(b, &schema).await?;
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
async fn clicks(b: &Bench) -> Result<(Report, Report, Vec<Report>)> {
    let key = link(b).await?;
    let (load, path) = (b.load.clone(), format!("/r/{}/{key}", b.target.slug));
    let mut tmpl = envelope(&b.target, "GET", &format!("/{key}"), vec![]);
    tmpl.surface = Surface::Router as i32;
    tmpl.principal = None;
    tmpl.client_ip = "192.0.2.1".into();
    let (gw, direct) = b
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
    let schema = op_control::schema::Schema::of_tenant(&b.target.tenant_id)
        .expect("tenant id")
        .to_string();
    let link_id: String = {
        let c = crate::connect(&b.target.stack.database_url).await?;
        c.query_one(
            &format!("SELECT id FROM {schema}.links WHERE link_key = $1"),
            &[&key],
        )
        .await?
        .get(0)
    };
    let raw = raw_sql_baseline(
        b,
        "INSERT click row",
        &format!(
            "INSERT INTO {schema}.clicks (id, link_id, partner_id, campaign_id, ip_hash, user_agent, referer, ts)
             SELECT $1, id, partner_id, campaign_id, md5($1), 'bench', NULL, now() FROM {schema}.links WHERE id = '{link_id}'"
        ),
    )
    .await?;
    Ok((gw, direct, vec![raw]))
}

/// The floor: `sql` (one `$1` text parameter, a fresh ULID) per autocommit transaction,
/// from as many connections as clients.
async fn raw_sql_baseline(b: &Bench, what: &str, sql: &str) -> Result<Report> {
    let mut clients = Vec::new();
    for _ in 0..b.concurrency {
        let c = crate::connect(&b.target.stack.database_url).await?;
        let stmt = c.prepare(sql).await?;
        clients.push(Arc::new((c, stmt)));
    }
    let pool = Arc::new(clients);
    let next = Arc::new(AtomicU64::new(0));
    Ok(measure(
        &format!("{what:<26} raw SQL (baseline)"),
        b.concurrency,
        b.duration,
        move |_, _| {
            let (pool, next) = (pool.clone(), next.clone());
            async move {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize % pool.len();
                let (c, stmt) = &*pool[i];
                c.execute(stmt, &[&ulid::Ulid::new().to_string()])
                    .await
                    .is_ok()
            }
        },
    )
    .await)
}

/// pgbench inserting an equivalent event row into an equivalent table (a copy of the
/// tenant's `events` with its indexes), `concurrency` clients, for the same duration.
async fn pgbench_baseline(b: &Bench, tenant_schema: &str) -> Result<Report> {
    let bin = crate::embedded_pg::server_bin_dir()?.join("pgbench");
    let c = crate::connect(&b.target.stack.database_url).await?;
    c.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS bench_baseline;
         DROP TABLE IF EXISTS bench_baseline.events;
         CREATE TABLE bench_baseline.events (LIKE {tenant_schema}.events INCLUDING ALL);"
    ))
    .await?;
    let script =
        std::env::temp_dir().join(format!("openpartner-pgbench-{}.sql", std::process::id()));
    std::fs::write(
        &script,
        "INSERT INTO bench_baseline.events (id, event_id, user_id, type, value, currency, metadata, ts, attribution_status, response) \
         VALUES ('evt_' || md5(random()::text), md5(random()::text), 'u1', 'invoice.paid', 49.90, 'USD', '{}', now(), 'no_identity', '{\"ok\":true}') \
         ON CONFLICT (event_id) DO NOTHING;\n",
    )?;
    let cpu_before = cpu::snapshot();
    let children_before = cpu::children_secs();
    let out = tokio::process::Command::new(bin)
        .args([
            "-n",
            "-c",
            &b.concurrency.to_string(),
            "-j",
            "2",
            "-T",
            &b.duration.as_secs().to_string(),
            "-f",
        ])
        .arg(&script)
        .arg(&b.target.stack.database_url)
        .output()
        .await?;
    let _ = std::fs::remove_file(&script);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    anyhow::ensure!(
        out.status.success(),
        "pgbench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let grab = |prefix: &str| -> Option<f64> {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .and_then(|l| l.split('=').nth(1))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    let tps = grab("tps").context("pgbench printed no tps")?;
    let avg_ms = grab("latency average").unwrap_or(f64::NAN);
    let ok = (tps * b.duration.as_secs_f64()) as u64;
    // pgbench reports an average latency, not percentiles: both quantiles show the average.
    Ok(Report {
        label: "INSERT event row          pgbench (baseline)".into(),
        ok,
        errors: 0,
        elapsed: b.duration,
        micros: vec![(avg_ms * 1000.0) as u64],
        cpu: {
            // pgbench has exited: its CPU is in our children's rusage, not in /proc.
            let mut cpu = cpu::spent_since(&cpu_before);
            cpu.insert(
                cpu.len().min(1),
                ("pgbench", cpu::children_secs() - children_before),
            );
            cpu
        },
    })
}

/// A local receiver that answers 200 to everything and counts requests.
async fn counting_receiver() -> Result<(String, Arc<AtomicU64>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://127.0.0.1:{}/hook", listener.local_addr()?.port());
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let c = c.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut have = Vec::new();
                loop {
                    let Ok(n) = s.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    have.extend_from_slice(&buf[..n]);
                    // One request per connection is enough for the client we serve.
                    if let Some(i) = have.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&have[..i]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if have.len() >= i + 4 + len {
                            c.fetch_add(1, Ordering::Relaxed);
                            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n").await;
                            have.drain(..i + 4 + len);
                        }
                    }
                }
            });
        }
    });
    Ok((url, count))
}

/// Webhook delivery: (a) deliveries/s draining 1,000 pending deliveries (10 events × 100
/// endpoints) to a local receiver; (b) event ingest with and without a delivery backlog
/// draining at the same time.
async fn webhooks(b: &Bench) -> Result<Vec<String>> {
    let (url, received) = counting_receiver().await?;
    // Ingest alone first, before any endpoint exists.
    let alone =
        events_via_gateway(b, "POST /attribution/events   via gateway, no webhooks").await?;
    for i in 0..100 {
        b.api(
            reqwest::Method::POST,
            "/webhooks",
            json!({"url": url, "events": ["partner.created"], "label": format!("bench {i}")}),
        )
        .await?;
    }
    let start = Instant::now();
    for i in 0..10 {
        b.api(
            reqwest::Method::POST,
            "/partners",
            json!({"email": format!("hook-{}-{i}@bench.example", b.run_id), "name": "H", "sendInvite": false}),
        )
        .await?;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while received.load(Ordering::Relaxed) < 1000 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let drained = start.elapsed();
    let delivered = received.load(Ordering::Relaxed);
    // A backlog (20,000 deliveries) big enough to drain during the whole ingest run.
    for i in 0..200 {
        b.api(
            reqwest::Method::POST,
            "/partners",
            json!({"email": format!("hook2-{}-{i}@bench.example", b.run_id), "name": "H", "sendInvite": false}),
        )
        .await?;
    }
    let during = events_via_gateway(
        b,
        "POST /attribution/events   via gateway, deliveries draining",
    )
    .await?;
    // Ingest alone again once the backlog is gone: the baseline brackets the measurement.
    let deadline = Instant::now() + Duration::from_secs(120);
    while received.load(Ordering::Relaxed) < 21_000 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
