//! A whole local OpenPartner: Postgres (embedded or given), migrations, N worker processes
//! and the gateway process. `openpartner dev` runs one for humans; the end-to-end tests run
//! one per test binary (and extra ones for tests that kill processes).

use crate::{children, embedded_pg::EmbeddedPg};
use anyhow::{bail, Context, Result};
use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Re-exported so the stack's callers (dev, bench, the e2e harness) name the one `Mode`.
pub use op_control::Mode;

pub struct StackOptions {
    /// The `openpartner` executable whose `worker` and `gateway` subcommands are started.
    pub exe: PathBuf,
    pub mode: Mode,
    /// Gateway port; 0 picks a free one.
    pub port: u16,
    pub workers: usize,
    pub database_url: String,
    pub platform_key: Option<String>,
    pub admin_api_key: Option<String>,
    /// Extra environment for gateway and workers (e.g. OP_* settings under test).
    pub env: Vec<(String, String)>,
    /// Child output: inherited (dev) or discarded (tests, unless OP_TEST_LOG=1).
    pub quiet: bool,
    /// How the gateway reaches the workers on this one machine.
    pub worker_transport: WorkerTransport,
}

/// The gateway→worker hop of a local stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum WorkerTransport {
    /// Unix sockets in a private (0700) directory: no TCP stack on the hop, and only this
    /// user can reach the workers' unauthenticated gRPC.
    #[default]
    Unix,
    /// `127.0.0.1:<port>`, as between machines.
    Tcp,
}

pub struct WorkerProc {
    pub url: String,
    pub listen: String,
    child: Option<Child>,
}

pub struct Stack {
    pub base_url: String,
    pub database_url: String,
    pub workers: Vec<WorkerProc>,
    gateway: Option<Child>,
    opts: StackOptions,
    /// The workers' sockets ([`WorkerTransport::Unix`]); removed with the stack.
    socket_dir: Option<PathBuf>,
    /// Kept last so it stops after the processes that use it.
    pub pg: Option<EmbeddedPg>,
}

impl Stack {
    /// Starts workers and gateway against `opts.database_url` (already migrated) and waits
    /// until the gateway reports ready.
    pub async fn start(opts: StackOptions, pg: Option<EmbeddedPg>) -> Result<Stack> {
        let socket_dir = match opts.worker_transport {
            WorkerTransport::Unix => Some(private_dir()?),
            WorkerTransport::Tcp => None,
        };
        let mut workers = Vec::new();
        for i in 0..opts.workers {
            let (url, listen) = match &socket_dir {
                Some(dir) => {
                    let path = dir.join(format!("worker-{}.sock", i + 1));
                    let listen = format!("unix:{}", path.display());
                    (listen.clone(), listen)
                }
                None => {
                    let listen = format!("127.0.0.1:{}", children::free_port()?);
                    (format!("http://{listen}"), listen)
                }
            };
            let mut w = WorkerProc {
                url,
                listen,
                child: None,
            };
            w.child = Some(spawn_worker(&opts, &w.listen, i)?);
            workers.push(w);
        }
        let port = if opts.port == 0 {
            children::free_port()?
        } else {
            opts.port
        };
        let mut cmd = Command::new(&opts.exe);
        cmd.arg("gateway")
            .env("DATABASE_URL", &opts.database_url)
            .env("OP_MODE", opts.mode.as_str())
            .env("OP_GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "OP_WORKERS",
                workers
                    .iter()
                    .map(|w| w.url.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            );
        if let Some(k) = &opts.platform_key {
            cmd.env("OP_PLATFORM_KEY", k);
        }
        if let Some(k) = &opts.admin_api_key {
            cmd.env("ADMIN_API_KEY", k);
        }
        configure(&mut cmd, &opts);
        let gateway = children::spawn_owned(cmd, libc::SIGTERM).context("starting the gateway")?;
        let stack = Stack {
            base_url: format!("http://127.0.0.1:{port}"),
            database_url: opts.database_url.clone(),
            workers,
            gateway: Some(gateway),
            opts,
            socket_dir,
            pg,
        };
        stack.wait_ready(Duration::from_secs(60)).await?;
        Ok(stack)
    }

    /// Polls `GET /ready` until it answers 200 with every worker healthy.
    pub async fn wait_ready(&self, within: Duration) -> Result<()> {
        let client = reqwest::Client::new();
        let start = Instant::now();
        let want = self.workers.iter().filter(|w| w.child.is_some()).count() as u64;
        loop {
            if let Ok(r) = client.get(format!("{}/ready", self.base_url)).send().await {
                if r.status().is_success() {
                    let body: serde_json::Value = r.json().await.unwrap_or_default();
                    if body["workers"].as_u64().unwrap_or(0) >= want {
                        return Ok(());
                    }
                }
            }
            if start.elapsed() > within {
                bail!("the gateway at {} did not become ready", self.base_url);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILLs worker `i` (no graceful drain): what a crash looks like.
    pub fn kill_worker(&mut self, i: usize) {
        if let Some(mut c) = self.workers[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts worker `i` again on its old address.
    pub fn restart_worker(&mut self, i: usize) -> Result<()> {
        self.kill_worker(i);
        let child = spawn_worker(&self.opts, &self.workers[i].listen, i)?;
        self.workers[i].child = Some(child);
        Ok(())
    }

    /// Starts every running worker again with `key=value` in its environment (`None`: without
    /// `key`): the bench's switches that only a worker's start reads.
    pub fn restart_workers_with(&mut self, key: &str, value: Option<&str>) -> Result<()> {
        self.opts.env.retain(|(k, _)| k != key);
        if let Some(v) = value {
            self.opts.env.push((key.to_string(), v.to_string()));
        }
        for i in 0..self.workers.len() {
            if self.workers[i].child.is_some() {
                self.restart_worker(i)?;
            }
        }
        Ok(())
    }

    /// Waits until the gateway, worker or postgres child exits (dev mode: "something died").
    pub fn try_exited(&mut self) -> Option<String> {
        if let Some(g) = self.gateway.as_mut() {
            if let Ok(Some(s)) = g.try_wait() {
                return Some(format!("gateway exited ({s})"));
            }
        }
        for w in &mut self.workers {
            if let Some(c) = w.child.as_mut() {
                if let Ok(Some(s)) = c.try_wait() {
                    return Some(format!("worker {} exited ({s})", w.url));
                }
            }
        }
        None
    }

    /// Graceful stop: SIGTERM everyone, wait, then stop postgres.
    pub fn stop(&mut self) {
        let mut all: Vec<Child> = self.gateway.take().into_iter().collect();
        all.extend(self.workers.iter_mut().filter_map(|w| w.child.take()));
        for c in &all {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        }
        for mut c in all {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match c.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        if let Some(pg) = self.pg.as_mut() {
            pg.stop();
        }
        if let Some(dir) = self.socket_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A new directory only this user can enter, for the workers' sockets. Short (a socket
/// path must fit in 108 bytes) and unique per stack.
fn private_dir() -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let name = format!(
        "openpartner-{}-{}",
        std::process::id(),
        &ulid::Ulid::new().to_string()[20..]
    );
    let dir = std::env::temp_dir().join(name);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop();
    }
}

fn configure(cmd: &mut Command, opts: &StackOptions) {
    // The stack puts the gateway, the workers and Postgres on one machine. A runtime per
    // process with a thread per core would be N processes × N threads fighting for N cores
    // (measured: a third more CPU per request in context switches), so each process gets
    // its share of the cores unless the operator says otherwise.
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let share = (cores / (opts.workers + 1)).max(1);
        cmd.env("TOKIO_WORKER_THREADS", share.to_string());
    }
    for (k, v) in &opts.env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null());
    if opts.quiet && std::env::var_os("OP_TEST_LOG").is_none() {
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
    }
}

fn spawn_worker(opts: &StackOptions, listen: &str, i: usize) -> Result<Child> {
    let mut cmd = Command::new(&opts.exe);
    cmd.arg("worker")
        .env("DATABASE_URL", &opts.database_url)
        .env("OP_WORKER_LISTEN", listen)
        .env("OP_WORKER_ID", format!("worker-{}", i + 1));
    configure(&mut cmd, opts);
    children::spawn_owned(cmd, libc::SIGTERM).context("starting a worker")
}
