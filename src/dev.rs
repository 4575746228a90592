//! `openpartner dev`: the whole product on one machine, for humans and black-box tests.
//!
//! Embedded Postgres under a project-local folder (unless `DATABASE_URL` is set),
//! migrations, 2 workers, the gateway, a demo tenant, and a banner with the base URL, the
//! keys and a curl example. Run twice, it reuses the data and the keys.

use crate::{
    embedded_pg::EmbeddedPg,
    stack::{Mode, Stack, StackOptions},
};
use anyhow::{Context, Result};
use op_control::{keys, migrations, tenants};
use std::{
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    time::Duration,
};

pub const DEMO_SLUG: &str = "demo";

#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Gateway port on 127.0.0.1.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Number of worker processes.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Where the embedded database and the dev keys live.
    #[arg(long, default_value = ".openpartner")]
    pub data_dir: PathBuf,
}

/// The settings `openpartner dev` turns on unless the environment says otherwise.
const DEV_DEFAULTS: &[(&str, &str)] = &[
    ("OP_COOKIE_SECURE", "0"),
    ("OP_WEBHOOK_ALLOW_PRIVATE", "1"),
    ("OP_DEV_MAILBOX", "1"),
];

pub async fn run(args: DevArgs) -> Result<()> {
    let mode = Mode::from_env().map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let data_dir = args.data_dir.canonicalize()?;

    let (database_url, pg, db_label) = match op_control::env::var("DATABASE_URL") {
        Some(url) => (url, None, "DATABASE_URL".to_string()),
        None => {
            eprintln!("openpartner: starting the embedded PostgreSQL...");
            let pg = EmbeddedPg::start(&data_dir.join("pg"), &[]).await?;
            let label = format!(
                "embedded, data in {} (port {})",
                pg.data_dir.display(),
                pg.port
            );
            (pg.database_url(), Some(pg), label)
        }
    };

    let mut client = crate::connect(&database_url).await?;
    let report = migrations::migrate_all(&mut client).await?;
    eprintln!(
        "openpartner: migrations applied (control: {:?}, tenants migrated: {}/{})",
        report.control_applied, report.tenants_migrated, report.tenants_total
    );

    let env_or_file = |var: &str, file: &str, make: fn() -> String| -> Result<String> {
        match op_control::env::var(var) {
            Some(v) => Ok(v),
            None => read_or_create_secret(&data_dir.join(file), make),
        }
    };
    let platform_key = env_or_file("OP_PLATFORM_KEY", "platform-key", || {
        format!(
            "opp_{}",
            keys::NewKey::generate().plaintext.trim_start_matches("op_")
        )
    })?;

    let (admin_key, admin_api_key, tenant_base) = match mode {
        Mode::Multi => {
            let key = demo_admin_key(&mut client, &data_dir).await?;
            (key, None, format!("/api/t/{DEMO_SLUG}"))
        }
        Mode::Single => {
            tenants::ensure_single_tenant(&mut client).await?;
            let key = env_or_file("ADMIN_API_KEY", "admin-api-key", || {
                keys::NewKey::generate().plaintext
            })?;
            (key.clone(), Some(key), "/api".to_string())
        }
    };
    drop(client);

    let mut env: Vec<(String, String)> = Vec::new();
    for (k, v) in DEV_DEFAULTS {
        if std::env::var_os(k).is_none() {
            env.push((k.to_string(), v.to_string()));
        }
    }
    // Sessions survive a restart of the dev stack: the signing secret is kept with the data.
    env.push((
        "OP_SESSION_SECRET".into(),
        env_or_file("OP_SESSION_SECRET", "session-secret", || {
            keys::NewKey::generate().plaintext
        })?,
    ));
    env.push((
        "OP_SECRETS_KEY".into(),
        env_or_file("OP_SECRETS_KEY", "secrets-key", || {
            keys::NewKey::generate().plaintext
        })?,
    ));
    // The portal: built with npm when its sources changed, then served by the gateway.
    let portal_dir = match std::env::var_os("OP_PORTAL_DIR") {
        Some(d) => Some(PathBuf::from(d)),
        None => match crate::portal_build::find_portal() {
            None => None,
            Some(src) => match crate::portal_build::ensure_built(&src) {
                Ok(dist) => {
                    env.push(("OP_PORTAL_DIR".into(), dist.display().to_string()));
                    Some(dist)
                }
                Err(e) => {
                    eprintln!("openpartner: warning: the portal was not built ({e:#}); the API runs without it");
                    None
                }
            },
        },
    };
    let exe = std::env::current_exe()?;
    let opts = StackOptions {
        exe,
        mode,
        port: args.port,
        workers: args.workers.max(1),
        database_url: database_url.clone(),
        platform_key: Some(platform_key.clone()),
        admin_api_key,
        env,
        quiet: false,
        worker_transport: Default::default(),
    };
    let mut stack = Stack::start(opts, pg).await?;
    let base = format!("{}{}", stack.base_url, tenant_base);
    write_state_file(
        &data_dir,
        &stack.base_url,
        &base,
        &admin_key,
        &platform_key,
        mode,
    )?;

    let mut out = std::io::stdout().lock();
    writeln!(out)?;
    writeln!(
        out,
        "OpenPartner dev stack is ready ({} mode)",
        match mode {
            Mode::Multi => "multi-tenant",
            Mode::Single => "single-tenant",
        }
    )?;
    writeln!(
        out,
        "  gateway:      {} ({} workers)",
        stack.base_url,
        stack.workers.len()
    )?;
    writeln!(out, "  base URL:     {base}")?;
    if portal_dir.is_some() {
        let portal = match mode {
            Mode::Multi => format!("{}/t/{DEMO_SLUG}/", stack.base_url),
            Mode::Single => format!("{}/", stack.base_url),
        };
        let who = match mode {
            Mode::Multi => "sign in as admin@demo.example",
            Mode::Single => "invite yourself with POST /api/admins, then sign in",
        };
        writeln!(
            out,
            "  portal:       {portal} ({who}; the link is in the dev mailbox)"
        )?;
    }
    if mode == Mode::Multi {
        writeln!(out, "  demo tenant:  {DEMO_SLUG}")?;
    }
    writeln!(out, "  admin key:    {admin_key}")?;
    if mode == Mode::Multi {
        writeln!(out, "  platform key: {platform_key}")?;
    }
    writeln!(out, "  database:     {db_label}")?;
    writeln!(out, "  dev defaults: OP_COOKIE_SECURE=0 (cookies without Secure), OP_WEBHOOK_ALLOW_PRIVATE=1, dev mailbox at GET {tenant_base}/dev/mailbox")?;
    writeln!(out)?;
    writeln!(out, "Try:")?;
    writeln!(out, "  curl -s -X POST {base}/partners -H 'Authorization: Bearer {admin_key}' -H 'Content-Type: application/json' -d '{{\"email\":\"ann@example.com\",\"name\":\"Ann\",\"sendInvite\":false}}'")?;
    writeln!(
        out,
        "  curl -s {base}/partners -H 'Authorization: Bearer {admin_key}'"
    )?;
    writeln!(
        out,
        "  curl -s {base}/dev/mailbox -H 'Authorization: Bearer {admin_key}'   # sign-in links"
    )?;
    writeln!(out)?;
    writeln!(out, "Ctrl-C stops everything.")?;
    out.flush()?;
    drop(out);

    let shutdown = op_control::process::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                if let Some(what) = stack.try_exited() {
                    eprintln!("openpartner: {what}; stopping");
                    stack.stop();
                    anyhow::bail!("{what}");
                }
            }
        }
    }
    eprintln!("openpartner: stopping");
    stack.stop();
    Ok(())
}

/// The demo tenant's admin key: created with the tenant on first run, kept in the data
/// folder (dev only; production keys exist only as hashes), re-minted if it was revoked.
async fn demo_admin_key(client: &mut tokio_postgres::Client, data_dir: &Path) -> Result<String> {
    let file = data_dir.join("demo-admin-key");
    let tenant = match tenants::find_by_slug(&*client, DEMO_SLUG).await? {
        Some(t) => t,
        None => {
            let p =
                tenants::provision(client, DEMO_SLUG, "Demo", Some("admin@demo.example")).await?;
            write_secret(&file, &p.admin_key)?;
            return Ok(p.admin_key);
        }
    };
    if let Ok(saved) = std::fs::read_to_string(&file) {
        let saved = saved.trim().to_string();
        if let Some(rec) = keys::lookup(&*client, &saved).await? {
            if rec.tenant_id == tenant.id && rec.kind == keys::KeyKind::Admin {
                return Ok(saved);
            }
        }
    }
    let key = keys::NewKey::generate();
    keys::insert(
        &*client,
        &tenant.id,
        &key,
        &keys::KeyKind::Admin,
        Some("openpartner dev"),
    )
    .await?;
    write_secret(&file, &key.plaintext)?;
    Ok(key.plaintext)
}

fn read_or_create_secret(path: &Path, make: fn() -> String) -> Result<String> {
    if let Ok(s) = std::fs::read_to_string(path) {
        if !s.trim().is_empty() {
            return Ok(s.trim().to_string());
        }
    }
    let s = make();
    write_secret(path, &s)?;
    Ok(s)
}

fn write_secret(path: &Path, value: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    writeln!(f, "{value}")?;
    Ok(())
}

/// `.openpartner/dev.json`: the same facts as the banner, for scripts.
fn write_state_file(
    data_dir: &Path,
    gateway: &str,
    base: &str,
    admin_key: &str,
    platform_key: &str,
    mode: Mode,
) -> Result<()> {
    let body = serde_json::json!({
        "gateway": gateway,
        "baseUrl": base,
        "mode": mode.as_str(),
        "tenant": if mode == Mode::Multi { DEMO_SLUG } else { tenants::SINGLE_TENANT_SLUG },
        "adminKey": admin_key,
        "platformKey": platform_key,
    });
    write_secret(
        &data_dir.join("dev.json"),
        &serde_json::to_string_pretty(&body)?,
    )
}
