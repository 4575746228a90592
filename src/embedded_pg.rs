//! A private PostgreSQL cluster built from the system's server binaries: the default
//! database of `openpartner dev` and of the test harness. No Docker, no root daemon.
//!
//! - The binaries come from the Debian package's versioned folder (`pg_config --bindir`,
//!   else `/usr/lib/postgresql/<v>/bin`); if absent and we are root, `apt-get install
//!   postgresql` brings them.
//! - initdb/postgres refuse to run as root, so as root they run as the `postgres` user and
//!   the data folder is handed to it.
//! - `postgres` runs as our child with a parent-death signal: if we die, it shuts down too.

use crate::children;
use anyhow::{bail, Context, Result};
use std::{
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub struct EmbeddedPg {
    pub data_dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

/// Settings for a throwaway test cluster: durability off, it is thrown away anyway.
pub const FAST_SETTINGS: &[(&str, &str)] = &[
    ("fsync", "off"),
    ("synchronous_commit", "off"),
    ("full_page_writes", "off"),
];

impl EmbeddedPg {
    pub fn database_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/openpartner", self.port)
    }

    /// Initialises `data_dir` if needed and starts the server on a free port. If a server
    /// from an earlier run is still alive on this folder, it is reused.
    pub async fn start(data_dir: &Path, settings: &[(&str, &str)]) -> Result<EmbeddedPg> {
        let bin = server_bin_dir()?;
        std::fs::create_dir_all(data_dir)?;
        let data_dir = data_dir.canonicalize()?;
        let run_as = run_as_user()?;
        if let Some(port) = running_port(&data_dir) {
            let pg = EmbeddedPg {
                data_dir: data_dir.clone(),
                port,
                child: None,
            };
            if wait_ready(port, Duration::from_secs(5)).await.is_ok() {
                ensure_database(port).await?;
                return Ok(pg);
            }
        }
        if !data_dir.join("PG_VERSION").exists() {
            if let Some((uid, gid)) = run_as {
                chown_recursive(&data_dir, uid, gid)?;
            }
            std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o700))?;
            let mut initdb = Command::new(bin.join("initdb"));
            initdb
                .args(["-D"])
                .arg(&data_dir)
                .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            if let Some((uid, gid)) = run_as {
                initdb.uid(uid).gid(gid);
            }
            let out = initdb.output().context("running initdb")?;
            if !out.status.success() {
                bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
        let port = children::free_port()?;
        let mut cmd = Command::new(bin.join("postgres"));
        cmd.arg("-D")
            .arg(&data_dir)
            .args(["-p", &port.to_string()])
            .arg("-k")
            .arg(&data_dir)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=300",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(data_dir.with_extension("log"))?,
            ));
        for (k, v) in settings {
            cmd.args(["-c", &format!("{k}={v}")]);
        }
        if let Some((uid, gid)) = run_as {
            cmd.uid(uid).gid(gid);
        }
        // SIGINT = "fast shutdown": clean, quick, no recovery needed next time.
        let child = children::spawn_owned(cmd, libc::SIGINT).context("starting postgres")?;
        let pg = EmbeddedPg {
            data_dir: data_dir.clone(),
            port,
            child: Some(child),
        };
        wait_ready(port, Duration::from_secs(30))
            .await
            .with_context(|| {
                format!(
                    "postgres did not start; see {}",
                    data_dir.with_extension("log").display()
                )
            })?;
        ensure_database(port).await?;
        Ok(pg)
    }

    /// Fast shutdown, waiting for the server to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            let _ = child.wait();
        }
    }
}

impl Drop for EmbeddedPg {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The folder holding initdb and postgres, installing the Debian package if needed.
pub fn server_bin_dir() -> Result<PathBuf> {
    if let Some(dir) = find_bin_dir() {
        return Ok(dir);
    }
    if unsafe { libc::geteuid() } != 0 {
        bail!("PostgreSQL server binaries not found; install them (Debian: sudo apt-get install -y postgresql) or set DATABASE_URL");
    }
    eprintln!(
        "openpartner: installing the PostgreSQL server binaries (apt-get install postgresql)..."
    );
    let ok = Command::new("sh")
        .args([
            "-c",
            "export DEBIAN_FRONTEND=noninteractive; (apt-get install -y --no-install-recommends postgresql || (apt-get update && apt-get install -y --no-install-recommends postgresql)) >/dev/null",
        ])
        .status()
        .context("running apt-get")?
        .success();
    match find_bin_dir() {
        Some(dir) if ok => Ok(dir),
        _ => bail!(
            "could not install PostgreSQL; install the `postgresql` package or set DATABASE_URL"
        ),
    }
}

fn find_bin_dir() -> Option<PathBuf> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() && dir.join("postgres").exists() {
            return Some(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").exists() && bin.join("postgres").exists()).then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p)
}

/// As root, the uid/gid of the `postgres` user (created if missing); otherwise None.
fn run_as_user() -> Result<Option<(u32, u32)>> {
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let lookup = || -> Option<(u32, u32)> {
        let out = Command::new("id").args(["-u", "postgres"]).output().ok()?;
        let uid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
        let out = Command::new("id").args(["-g", "postgres"]).output().ok()?;
        let gid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
        Some((uid, gid))
    };
    if let Some(ids) = lookup() {
        return Ok(Some(ids));
    }
    let _ = Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            "postgres",
        ])
        .status();
    lookup()
        .map(Some)
        .context("running as root needs a `postgres` user for the embedded database")
}

fn chown_recursive(dir: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.is_dir() {
            chown_recursive(&p, uid, gid)?;
        } else {
            std::os::unix::fs::chown(&p, Some(uid), Some(gid))?;
        }
    }
    Ok(())
}

/// Port of a live server from an earlier run on this folder (postmaster.pid line 4).
fn running_port(data_dir: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    let mut lines = text.lines();
    let pid: i32 = lines.next()?.trim().parse().ok()?;
    let port: u16 = lines.nth(2)?.trim().parse().ok()?;
    (unsafe { libc::kill(pid, 0) } == 0).then_some(port)
}

async fn wait_ready(port: u16, within: Duration) -> Result<()> {
    let start = Instant::now();
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    loop {
        match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
            Ok((client, conn)) => {
                tokio::spawn(conn);
                if client.simple_query("SELECT 1").await.is_ok() {
                    return Ok(());
                }
            }
            Err(e) if start.elapsed() > within => bail!("postgres on port {port} not ready: {e}"),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn ensure_database(port: u16) -> Result<()> {
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let exists = client
        .query_opt(
            "SELECT 1 FROM pg_database WHERE datname = 'openpartner'",
            &[],
        )
        .await?
        .is_some();
    if !exists {
        // Two starters may race here; losing the race is fine.
        if let Err(e) = client.batch_execute("CREATE DATABASE openpartner").await {
            if e.code() != Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) {
                return Err(e.into());
            }
        }
    }
    Ok(())
}
