//! `openpartner`: the operator CLI.
//!
//! `dev` runs the whole stack locally; `migrate` brings the control schema and every tenant
//! schema up to date; `gateway` and `worker` run one process of each kind (the same code as
//! the `op-gateway` and `op-worker` binaries); `tenants`, `workers` and `migrate --status`
//! are the operator commands (`operator`); `bench` is the load tool; `openapi` prints the
//! API's description.

use clap::{Parser, Subcommand};
use std::io::Write;

// The gateway and the workers allocate per request (HTTP and gRPC frames, JSON values);
// glibc's malloc was a quarter of a worker's CPU under load, mimalloc a fraction of that.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "openpartner",
    version,
    about = "OpenPartner: partner programs, self-hosted or hosted"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the local stack: embedded Postgres, migrations, workers, gateway, demo tenant.
    Dev(openpartner::dev::DevArgs),
    /// Apply control-plane and tenant migrations (DATABASE_URL). Safe to run concurrently.
    Migrate {
        /// Show what is applied and what is pending, change nothing.
        #[arg(long)]
        status: bool,
        /// With --status: JSON for scripts.
        #[arg(long, requires = "status")]
        json: bool,
    },
    /// Tenants (DATABASE_URL): list, create, suspend, resume, export, import, move.
    #[command(subcommand)]
    Tenants(openpartner::operator::TenantsCommand),
    /// The workers: the registry (DATABASE_URL), or one gateway's routing set (--gateway).
    Workers(openpartner::operator::WorkersArgs),
    /// Run a gateway process (configured by environment, see deploy/CONFIG.md).
    Gateway,
    /// Run a tenant-worker process (configured by environment, see deploy/CONFIG.md).
    Worker,
    /// Print the API's OpenAPI 3.1 document (as the gateway serves at /openapi.json, with
    /// relative server URLs).
    Openapi {
        /// The self-hosted API (`/api`, no operator routes) instead of the hosted one.
        #[arg(long)]
        single_tenant: bool,
    },
    /// Load tool: throughput and latency through the gateway and straight to a worker.
    Bench(openpartner::bench::BenchArgs),
}

/// Errors end the process with status 1 and one line on stderr, `<code>: <detail>` where
/// the error has a code (docs/API.md, operator CLI), with its causes after `: `.
fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let done = op_control::process::runtime()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(run(cli.command)));
    match done {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Dev(args) => openpartner::dev::run(args).await,
        Command::Migrate { status: false, .. } => migrate().await,
        Command::Migrate { status: true, json } => {
            openpartner::operator::migrate_status(json).await
        }
        Command::Tenants(c) => openpartner::operator::tenants(c).await,
        Command::Workers(args) => openpartner::operator::workers(args).await,
        Command::Gateway => op_gateway::run_from_env().await,
        Command::Worker => op_worker::run_from_env().await,
        Command::Bench(args) => openpartner::bench::run(args).await,
        Command::Openapi { single_tenant } => {
            let doc = op_worker::routes::document(single_tenant);
            // A closed pipe (`| head`) ends the output, not in a panic.
            let _ = writeln!(
                std::io::stdout().lock(),
                "{}",
                serde_json::to_string_pretty(&doc)?
            );
            Ok(())
        }
    }
}

async fn migrate() -> anyhow::Result<()> {
    let url = op_control::env::var("DATABASE_URL")
        .ok_or_else(|| anyhow::anyhow!("DATABASE_URL is required"))?;
    let mut client = openpartner::connect(&url).await?;
    // Tenant schemas are migrated over up to this many more connections at once (each
    // schema in a transaction of its own): a 2-core database is kept busy without being
    // swamped.
    const MORE_CONNECTIONS: usize = 3;
    let report = op_control::migrations::migrate_all_over(&mut client, MORE_CONNECTIONS, || {
        op_control::db::connect(&url)
    })
    .await?;
    // An unknown OP_MODE is the gateway's to refuse; migrating only asks "single or not".
    if op_control::Mode::from_env() == Ok(op_control::Mode::Single) {
        op_control::tenants::ensure_single_tenant(&mut client).await?;
    }
    println!(
        "control migrations applied: {:?}; tenant schemas migrated: {} of {} (all at version {})",
        report.control_applied,
        report.tenants_migrated,
        report.tenants_total,
        op_control::migrations::latest_tenant_version()
    );
    Ok(())
}
