//! Single processes started exactly as deploy/CONFIG.md documents them (`openpartner worker`,
//! `openpartner gateway`, each with its own environment), for the operations tests: tokens
//! that differ between a gateway and a worker, logs captured to a file, signals sent to one
//! process. Each child dies with the test (`openpartner::children`) and is killed on drop.

use super::{shared, PLATFORM_KEY, TEST_ENV};
use openpartner::{
    children,
    embedded_pg::{EmbeddedPg, FAST_SETTINGS},
};
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

pub struct Proc {
    child: Option<Child>,
    /// stderr (the process's log) and stdout, appended to this file.
    pub log: PathBuf,
}

impl Proc {
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    pub fn signal(&self, signal: i32) {
        if self.pid() > 0 {
            unsafe { libc::kill(self.pid(), signal) };
        }
    }

    /// Waits up to `within` for the process to exit; its status, or None if it still runs.
    /// (Async: the test's own servers, e.g. a webhook receiver, keep running meanwhile.)
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            let c = self.child.as_mut()?;
            if let Ok(Some(s)) = c.try_wait() {
                self.child = None;
                return Some(s);
            }
            if start.elapsed() > within {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A directory of its own for one test's logs (removed by [`LogDir`]'s drop).
pub struct LogDir(pub PathBuf);

impl LogDir {
    pub fn new(name: &str) -> LogDir {
        let dir = std::env::temp_dir().join(format!(
            "openpartner-e2e-{name}-{}-{}",
            std::process::id(),
            ulid::Ulid::new()
        ));
        std::fs::create_dir_all(&dir).expect("log dir");
        LogDir(dir)
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for LogDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `ALTER SYSTEM SET <name> = <value>` on a test's own cluster, then a reload (which new
/// connections see a moment later).
pub async fn alter_system(admin: &tokio_postgres::Client, name: &str, value: &str) {
    admin
        .batch_execute(&format!("ALTER SYSTEM SET {name} = {value}"))
        .await
        .unwrap();
    admin
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .unwrap();
}

/// A PostgreSQL cluster of the test's own (in `logs`), migrated: the cluster (stopped on
/// drop) and its URL, for processes whose background jobs must not meet the shared stack's.
pub async fn own_cluster(logs: &LogDir) -> (EmbeddedPg, String) {
    let pg = EmbeddedPg::start(&logs.file("pg"), FAST_SETTINGS)
        .await
        .expect("a cluster");
    let database_url = pg.database_url();
    let mut client = openpartner::connect(&database_url).await.unwrap();
    op_control::migrations::migrate_all(&mut client)
        .await
        .unwrap();
    (pg, database_url)
}

/// Starts `openpartner <role>` with DATABASE_URL of the shared cluster (unless `env` names one), the test settings
/// ([`TEST_ENV`]) and then `env` (which wins), its output appended to `log`.
pub fn spawn(role: &str, env: &[(&str, &str)], log: &Path) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_openpartner"));
    cmd.arg(role);
    // A test on a cluster of its own names it; the shared one is started only when used.
    if !env.iter().any(|(k, _)| *k == "DATABASE_URL") {
        cmd.env("DATABASE_URL", &shared().database_url);
    }
    cmd.env("OP_PLATFORM_KEY", PLATFORM_KEY)
        .env("TOKIO_WORKER_THREADS", "1")
        .env_remove("RUST_LOG");
    for (k, v) in TEST_ENV {
        cmd.env(k, v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone().expect("log file"))
        .stderr(out);
    let child = children::spawn_owned(cmd, libc::SIGKILL).expect("spawn");
    Proc {
        child: Some(child),
        log: log.to_path_buf(),
    }
}

/// A worker on `127.0.0.1:<free port>`; returns it and its URL for `OP_WORKERS`.
pub fn worker(id: &str, env: &[(&str, &str)], log: &Path) -> (Proc, String) {
    let port = children::free_port().expect("free port");
    let url = format!("http://127.0.0.1:{port}");
    (worker_at(id, &url, env, log), url)
}

/// A worker listening at `url` (`http://127.0.0.1:<port>`), e.g. one restarted in place.
pub fn worker_at(id: &str, url: &str, env: &[(&str, &str)], log: &Path) -> Proc {
    let listen = url.trim_start_matches("http://");
    let mut all: Vec<(&str, &str)> = vec![("OP_WORKER_LISTEN", listen), ("OP_WORKER_ID", id)];
    all.extend_from_slice(env);
    spawn("worker", &all, log)
}

/// A gateway on `127.0.0.1:<free port>` routing to `workers` (an `OP_WORKERS` value);
/// returns it and its base URL, once it listens.
pub async fn gateway(workers: &str, env: &[(&str, &str)], log: &Path) -> (Proc, String) {
    let port = children::free_port().expect("free port");
    let listen = format!("127.0.0.1:{port}");
    let mut all: Vec<(&str, &str)> = vec![("OP_GATEWAY_LISTEN", &listen), ("OP_WORKERS", workers)];
    all.extend_from_slice(env);
    let p = spawn("gateway", &all, log);
    let base = format!("http://{listen}");
    let client = reqwest::Client::new();
    let start = Instant::now();
    while client.get(format!("{base}/health")).send().await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the gateway did not listen: {}",
            p.log_text()
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    (p, base)
}

/// Polls `GET /ready` until it reports `workers` healthy workers (or fails after 30 s).
pub async fn wait_workers(base: &str, workers: u64) {
    let client = reqwest::Client::new();
    let start = Instant::now();
    loop {
        if let Ok(r) = client.get(format!("{base}/ready")).send().await {
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            if body["workers"].as_u64() == Some(workers) {
                return;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{base} never saw {workers} healthy workers"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// One worker and one gateway routing to it, started with the same `env`, the gateway
/// seeing the worker healthy; their logs `worker.log` and `gateway.log` in `logs`.
pub struct Pair {
    pub worker: Proc,
    /// The worker's URL (an `OP_WORKERS` value, or where to restart it).
    pub worker_url: String,
    pub gateway: Proc,
    /// The gateway's base URL.
    pub base: String,
}

impl Pair {
    /// Sends SIGTERM to the gateway and the worker, then waits up to `within` for each to
    /// exit: their exit statuses (gateway first; `None`: still running).
    pub async fn terminate(&mut self, within: Duration) -> [Option<ExitStatus>; 2] {
        self.gateway.signal(libc::SIGTERM);
        self.worker.signal(libc::SIGTERM);
        [
            self.gateway.wait_exit(within).await,
            self.worker.wait_exit(within).await,
        ]
    }
}

/// Starts a [`Pair`] whose worker is `worker_id`.
pub async fn pair(worker_id: &str, env: &[(&str, &str)], logs: &LogDir) -> Pair {
    let (worker, worker_url) = self::worker(worker_id, env, &logs.file("worker.log"));
    let (gateway, base) = self::gateway(&worker_url, env, &logs.file("gateway.log")).await;
    wait_workers(&base, 1).await;
    Pair {
        worker,
        worker_url,
        gateway,
        base,
    }
}
