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
//!
//! This module holds the command line and the run; the parts:
//! - `target`: the system under test (stack, tenant) and the handles the scenarios use;
//! - `measure`: the load loop, and one operation via the gateway and direct to a worker;
//! - `baselines`: the database floor (raw SQL, pgbench);
//! - `scenarios`: set-up data and what each scenario measures;
//! - `scale`: the tenants-scale scenario (provisioning, reads, idle CPU and `migrate` at
//!   `--tenants` tenants);
//! - `reporting`: the reporting generator (1M clicks, 100k events, 500 partners) and its reads;
//! - `tenant_move`: a live tenant moved between Citus nodes under load;
//! - `receiver`: the local webhook receiver of the webhooks scenario;
//! - `report`: latency percentiles, throughput and CPU per request, as printed lines;
//! - `cpu`: CPU time per part of the system, from `/proc`;
//! - `http_load`: the lean HTTP client of the load.

use crate::stack::WorkerTransport;
use anyhow::{Context, Result};
use scenarios::Compound;

mod baselines;
mod cpu;
mod http_load;
mod measure;
mod receiver;
mod report;
mod reporting;
mod scale;
mod scenarios;
mod target;
mod tenant_move;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Concurrent clients per scenario; several (comma-separated, e.g. `8,64`) run every
    /// scenario at each (webhooks at the last only).
    #[arg(long, value_delimiter = ',', default_value = "32")]
    concurrency: Vec<usize>,
    /// Seconds per scenario.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Worker processes in the stack the tool starts.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Use this Postgres instead of a fresh embedded one (the bench creates its own tenant).
    #[arg(long, env = "BENCH_DATABASE_URL")]
    database_url: Option<String>,
    /// Scenarios to run (comma-separated): partners-get, partners-create, events,
    /// events-terms, events-terms-stacked, clicks, webhooks, reporting, tenants-scale,
    /// tenant-move (Citus).
    #[arg(
        long,
        default_value = "partners-get,partners-create,events,clicks,webhooks"
    )]
    scenarios: String,
    /// Extra alternating runs of each scenario through the gateway and its pgbench anchor
    /// (partners-get, partners-create, events, clicks), per concurrency: a shared machine's
    /// speed drifts over minutes, and the ratio of two adjacent runs cancels the drift better
    /// than one run of each. The targets use the median of these pairs.
    #[arg(long, default_value_t = 3)]
    pairs: usize,
    /// Tenants in the database at the end of the tenants-scale scenario (the bench's own
    /// included); use a fresh database (the default embedded one).
    #[arg(long, default_value_t = 10_000)]
    tenants: usize,
    /// How the gateway reaches the workers (both on this machine).
    #[arg(long, value_enum, default_value_t = WorkerTransport::Unix)]
    worker_transport: WorkerTransport,
}

const SCENARIOS: [&str; 10] = [
    "partners-get",
    "partners-create",
    "events",
    "events-terms",
    "events-terms-stacked",
    "clicks",
    "webhooks",
    "reporting",
    "tenants-scale",
    "tenant-move",
];

pub async fn run(args: BenchArgs) -> Result<()> {
    let scenarios: Vec<&str> = args.scenarios.split(',').map(str::trim).collect();
    if let Some(other) = scenarios.iter().find(|s| !SCENARIOS.contains(s)) {
        anyhow::bail!("unknown scenario `{other}`");
    }
    anyhow::ensure!(
        !args.concurrency.is_empty() && !args.concurrency.contains(&0),
        "--concurrency: one or more client counts, e.g. 64 or 8,64"
    );
    let target = target::Target::start(&args)
        .await
        .context("starting the bench stack")?;
    let mut b = target::Bench::new(&args, target).await?;
    let levels: Vec<String> = args.concurrency.iter().map(usize::to_string).collect();
    println!(
        "openpartner bench: {} clients, {} s per scenario, {} workers, {} cores",
        levels.join(", "),
        args.seconds,
        args.workers,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let several = args.concurrency.len() > 1;
    let mut sections: Vec<Vec<String>> = Vec::new();
    let mut measured = Vec::new();
    for &scenario in &scenarios {
        // The webhooks scenario leaves its endpoints behind, the tenants-scale scenario its
        // tenants: they run once, at the last level.
        let levels = match scenario {
            "webhooks" | "tenants-scale" => &args.concurrency[args.concurrency.len() - 1..],
            _ => &args.concurrency[..],
        };
        for &clients in levels {
            b.concurrency = clients;
            let mut section = match scenario {
                "partners-get" => scenarios::partners_get(&b).await?,
                "partners-create" => scenarios::partners_create(&b).await?,
                "events" => scenarios::events(&b).await?,
                "events-terms" => scenarios::events_terms(&b, Compound::OnePerEvent).await?,
                "events-terms-stacked" => scenarios::events_terms(&b, Compound::Stacked).await?,
                "clicks" => scenarios::clicks(&b).await?,
                "reporting" => reporting::reporting(&mut b).await?,
                "tenants-scale" => {
                    report::Section::plain(scale::tenants_scale(&b, args.tenants).await?)
                }
                "tenant-move" => tenant_move::tenant_move(&b).await?,
                _ => report::Section::plain(scenarios::webhooks(&b).await?),
            };
            if several {
                section
                    .lines
                    .insert(0, format!("[{scenario}, {clients} clients]"));
            }
            measured.extend(section.versus);
            sections.push(section.lines);
        }
    }
    sections.push(report::targets(&measured));
    println!();
    for lines in sections.iter().filter(|l| !l.is_empty()) {
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
