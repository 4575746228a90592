//! The operator commands of the CLI, for people at a terminal (tables) and scripts
//! (`--json`): `tenants list|create|suspend|resume|export|import`, `workers`, `migrate --status`. Like
//! `openpartner migrate` they talk to the database (`DATABASE_URL`), doing what the
//! `/platform/*` endpoints do with the same control-plane functions, so a gateway's caches
//! hear of every change (`NOTIFY`). `workers --gateway <url>` asks one gateway for its view
//! instead (`GET /platform/workers`, with `OP_PLATFORM_KEY`).

use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Subcommand};
use op_control::{migrations, placement, tenants, workers};
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum TenantsCommand {
    /// Every tenant, newest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Provision a tenant: its schema with every migration and its first admin key (shown once).
    Create {
        /// Lower-case letters, digits and `-`, 2 to 40 characters, not a reserved word.
        slug: String,
        /// Display name (default: the slug).
        #[arg(long)]
        name: Option<String>,
        /// The first human admin, invited (signs in with a magic link).
        #[arg(long)]
        admin_email: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Suspend a tenant: its API and click router answer `403 tenant_suspended`.
    Suspend {
        slug: String,
        #[arg(long)]
        json: bool,
    },
    /// Resume a suspended tenant.
    Resume {
        slug: String,
        #[arg(long)]
        json: bool,
    },
    /// Move a live tenant to another node of a Citus cluster (`citus_schema_move`: it keeps
    /// serving; writes wait only for the final catch-up).
    Move {
        slug: String,
        /// The target node, `host:port` as the cluster knows it (`tenants list` shows nodes).
        #[arg(long)]
        to: String,
        #[arg(long)]
        json: bool,
    },
    /// Write the tenant's data as an `rs-1` bundle (JSON): partners, campaigns, links,
    /// clicks, events, commissions with their ledger, payouts, ... (never secrets, key
    /// hashes, sessions or tokens).
    Export {
        slug: String,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Import an `rs-1` bundle into a tenant: one transaction, all or nothing; rows whose id
    /// is already there are skipped.
    Import {
        slug: String,
        /// The bundle (`-`: stdin).
        file: std::path::PathBuf,
        /// Check everything and report what would be inserted, then roll back.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct WorkersArgs {
    /// Ask this gateway (`http://host:port`) for the set it routes to, with its health
    /// probes and in-flight counts (needs OP_PLATFORM_KEY). Without it: the worker registry.
    #[arg(long)]
    gateway: Option<String>,
    #[arg(long)]
    json: bool,
}

async fn client() -> Result<tokio_postgres::Client> {
    let url =
        op_control::env::var("DATABASE_URL").ok_or_else(|| anyhow!("DATABASE_URL is required"))?;
    crate::connect(&url).await
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A tenant as `/platform/tenants` shows it, with its Citus node (`None` on plain PostgreSQL).
fn tenant_json(t: &tenants::Tenant, node: Option<&String>) -> Value {
    json!({"id": t.id, "slug": t.slug, "name": t.name, "status": t.status, "createdAt": ts(t.created_at), "node": node})
}

/// The Citus node of each tenant (by id); empty on plain PostgreSQL.
async fn nodes(
    db: &tokio_postgres::Client,
    list: &[tenants::Tenant],
) -> Result<std::collections::HashMap<String, String>> {
    let schemas: Vec<String> = list
        .iter()
        .map(|t| op_control::schema::schema_name(&t.id))
        .collect();
    let by_schema = placement::nodes_of(db, &schemas).await?;
    Ok(list
        .iter()
        .filter_map(|t| {
            let node = by_schema.get(&op_control::schema::schema_name(&t.id))?;
            Some((t.id.clone(), node.clone()))
        })
        .collect())
}

/// Left-aligned columns, a header row first.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ");
        s.truncate(s.trim_end().len());
        s
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out.push('\n');
        out.push_str(&line(r.clone()));
    }
    out
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).expect("json"));
}

pub async fn tenants(command: TenantsCommand) -> Result<()> {
    let mut db = client().await?;
    match command {
        TenantsCommand::List { json } => {
            let mut all = Vec::new();
            let mut after = None;
            loop {
                let page = tenants::list(&db, after.clone(), 1000).await?;
                let Some(last) = page.last() else { break };
                after = Some((last.created_at, last.id.clone()));
                let n = page.len();
                all.extend(page);
                if n < 1000 {
                    break;
                }
            }
            let nodes = nodes(&db, &all).await?;
            if json {
                let list: Vec<Value> = all
                    .iter()
                    .map(|t| tenant_json(t, nodes.get(&t.id)))
                    .collect();
                print_json(&json!({"tenants": list}));
            } else {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|t| {
                        vec![
                            t.slug.clone(),
                            t.status.clone(),
                            ts(t.created_at),
                            t.id.clone(),
                            nodes.get(&t.id).cloned().unwrap_or_else(|| "-".into()),
                            t.name.clone(),
                        ]
                    })
                    .collect();
                println!(
                    "{}",
                    table(&["SLUG", "STATUS", "CREATED", "ID", "NODE", "NAME"], &rows)
                );
            }
        }
        TenantsCommand::Create {
            slug,
            name,
            admin_email,
            json,
        } => {
            let op_worker::NewTenant {
                slug,
                name,
                admin_email: email,
            } = op_worker::NewTenant::check(slug, name, admin_email.as_deref())
                .map_err(|e| anyhow!("{}: {}", e.code, e.detail))?;
            let p = match tenants::provision(&mut db, &slug, &name, email.as_deref()).await {
                Ok(p) => p,
                Err(op_control::ControlError::SlugTaken) => bail!("slug_taken: `{slug}` is taken"),
                Err(e) => return Err(e.into()),
            };
            if json {
                let node = nodes(&db, std::slice::from_ref(&p.tenant)).await?;
                print_json(
                    &json!({"tenant": tenant_json(&p.tenant, node.get(&p.tenant.id)), "adminKey": p.admin_key}),
                );
            } else {
                println!(
                    "{}\n\nadmin key (shown once): {}",
                    table(
                        &["SLUG", "STATUS", "ID", "NAME"],
                        &[vec![
                            p.tenant.slug.clone(),
                            p.tenant.status.clone(),
                            p.tenant.id.clone(),
                            p.tenant.name.clone()
                        ]]
                    ),
                    p.admin_key
                );
            }
        }
        TenantsCommand::Suspend { slug, json } => {
            set_status(&mut db, &slug, "suspended", json).await?
        }
        TenantsCommand::Resume { slug, json } => set_status(&mut db, &slug, "active", json).await?,
        TenantsCommand::Move { slug, to, json } => move_tenant(&db, &slug, &to, json).await?,
        TenantsCommand::Export { slug, out } => export(&mut db, &slug, out).await?,
        TenantsCommand::Import {
            slug,
            file,
            dry_run,
            json,
        } => import(&mut db, &slug, &file, dry_run, json).await?,
    }
    Ok(())
}

async fn find(db: &tokio_postgres::Client, slug: &str) -> Result<tenants::Tenant> {
    tenants::find_by_slug(db, slug)
        .await?
        .ok_or_else(|| anyhow!("tenant_not_found: no tenant `{slug}`"))
}

/// `tenants export`: the bundle, to `out` or stdout (written to a temporary file first, so
/// a failed export leaves no half file behind).
async fn export(
    db: &mut tokio_postgres::Client,
    slug: &str,
    out: Option<std::path::PathBuf>,
) -> Result<()> {
    use std::io::Write;
    let t = find(db, slug).await?;
    match out {
        Some(path) => {
            let tmp = path.with_extension(format!("partial-{}", std::process::id()));
            let file = std::fs::File::create(&tmp)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            let mut w = std::io::BufWriter::new(file);
            let done = op_worker::migration::export(db, &t.id, &t.slug, &t.name, &mut w).await;
            let done = done.and_then(|()| Ok(w.flush()?));
            if let Err(e) = done {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            std::fs::rename(&tmp, &path)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        None => {
            let stdout = std::io::stdout();
            let mut w = std::io::BufWriter::new(stdout.lock());
            op_worker::migration::export(db, &t.id, &t.slug, &t.name, &mut w).await?;
            writeln!(w)?;
            w.flush()?;
        }
    }
    Ok(())
}

/// `tenants import`: the reply of `POST /import` (`--json`), or a table of counts.
async fn import(
    db: &mut tokio_postgres::Client,
    slug: &str,
    file: &std::path::Path,
    dry_run: bool,
    json: bool,
) -> Result<()> {
    let t = find(db, slug).await?;
    let bytes = if file.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)?;
        b
    } else {
        std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let key = op_control::env::trimmed("OP_SECRETS_KEY")
        .map(|k| op_worker::secrets::SecretsKey::from_passphrase(&k));
    let result = match serde_json::from_slice::<Value>(&bytes) {
        Ok(bundle) => {
            let opts = op_worker::migration::ImportOptions {
                dry_run,
                secrets: key.as_ref(),
            };
            op_worker::migration::import(db, &t.id, &bundle, opts).await
        }
        Err(e) => Err(op_worker::migration::ImportError::InvalidBody(format!(
            "the bundle is not JSON: {e}"
        ))),
    };
    let reply = match result {
        Ok(reply) => reply,
        Err(e) => {
            if json {
                print_json(&e.to_json());
            }
            bail!("{}: {e}", e.code());
        }
    };
    if json {
        print_json(&reply);
        return Ok(());
    }
    let report = &reply["report"];
    let rows: Vec<Vec<String>> = op_worker::migration::TABLES
        .iter()
        .map(|tb| {
            vec![
                tb.name.to_string(),
                report["inserted"][tb.name].to_string(),
                report["skipped"][tb.name].to_string(),
            ]
        })
        .collect();
    println!("{}", table(&["TABLE", "INSERTED", "SKIPPED"], &rows));
    for w in report["warnings"].as_array().into_iter().flatten() {
        println!("warning: {}", w.as_str().unwrap_or_default());
    }
    println!(
        "not in a bundle (recreate them): {}",
        report["missing"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    );
    if dry_run {
        println!("dry run: nothing was written");
    }
    Ok(())
}

async fn set_status(
    db: &mut tokio_postgres::Client,
    slug: &str,
    status: &str,
    json: bool,
) -> Result<()> {
    let Some(t) = tenants::set_status(db, slug, status).await? else {
        bail!("tenant_not_found: no tenant `{slug}`");
    };
    if json {
        let node = nodes(db, std::slice::from_ref(&t)).await?;
        print_json(&json!({"ok": true, "tenant": tenant_json(&t, node.get(&t.id))}));
    } else {
        println!(
            "{}",
            table(
                &["SLUG", "STATUS", "ID", "NAME"],
                &[vec![t.slug, t.status, t.id, t.name]]
            )
        );
    }
    Ok(())
}

async fn move_tenant(db: &tokio_postgres::Client, slug: &str, to: &str, json: bool) -> Result<()> {
    let Some(t) = tenants::find_by_slug(db, slug).await? else {
        bail!("tenant_not_found: no tenant `{slug}`");
    };
    let schema = op_control::schema::Schema::of_tenant(&t.id)
        .ok_or_else(|| anyhow!("tenant `{slug}` has no valid id"))?;
    let started = std::time::Instant::now();
    let moved = placement::move_schema(db, &schema, to)
        .await
        .map_err(|e| anyhow!("{}: moving `{slug}` to {to}: {e}", e.code()))?;
    let seconds = started.elapsed().as_secs_f64();
    if json {
        print_json(
            &json!({"ok": true, "tenant": slug, "from": moved.from, "to": moved.to, "moved": moved.moved, "seconds": seconds}),
        );
    } else if moved.moved {
        println!(
            "moved `{slug}` from {} to {} in {seconds:.1} s",
            moved.from, moved.to
        );
    } else {
        println!("`{slug}` already is on {}: nothing moved", moved.to);
    }
    Ok(())
}

pub async fn workers(args: WorkersArgs) -> Result<()> {
    let set: Vec<Value> = match &args.gateway {
        Some(gateway) => {
            let key = op_control::env::var("OP_PLATFORM_KEY")
                .ok_or_else(|| anyhow!("--gateway needs OP_PLATFORM_KEY"))?;
            let url = format!("{}/platform/workers", gateway.trim_end_matches('/'));
            let r = reqwest::Client::new()
                .get(&url)
                .bearer_auth(key)
                .send()
                .await
                .with_context(|| format!("GET {url}"))?;
            let status = r.status();
            let body: Value = r.json().await.unwrap_or_default();
            if !status.is_success() {
                bail!(
                    "{}: {} (HTTP {})",
                    body["error"].as_str().unwrap_or("error"),
                    body["detail"].as_str().unwrap_or(""),
                    status.as_u16()
                );
            }
            body["workers"].as_array().cloned().unwrap_or_default()
        }
        None => {
            let db = client().await?;
            let live_after = Utc::now()
                - chrono::Duration::from_std(workers::HEARTBEAT * workers::SILENT_AFTER)
                    .expect("small");
            db.query(
                "SELECT id, url, last_heartbeat_at, draining FROM control.workers ORDER BY id",
                &[],
            )
            .await?
            .iter()
            .map(|r| {
                let seen: DateTime<Utc> = r.get(2);
                let health = match (r.get::<_, bool>(3), seen > live_after) {
                    (_, false) => "down",
                    (true, true) => "draining",
                    (false, true) => "serving",
                };
                json!({"id": r.get::<_, String>(0), "url": r.get::<_, String>(1), "source": "registry",
                       "health": health, "inFlight": null, "lastSeenAt": ts(seen)})
            })
            .collect()
        }
    };
    if args.json {
        print_json(&json!({ "workers": set }));
    } else {
        let cell = |v: &Value| match v {
            Value::String(s) => s.clone(),
            Value::Null => "-".into(),
            v => v.to_string(),
        };
        let rows: Vec<Vec<String>> = set
            .iter()
            .map(|w| {
                ["id", "url", "source", "health", "inFlight", "lastSeenAt"]
                    .iter()
                    .map(|k| cell(&w[*k]))
                    .collect()
            })
            .collect();
        println!(
            "{}",
            table(
                &["ID", "URL", "SOURCE", "HEALTH", "IN FLIGHT", "LAST SEEN"],
                &rows
            )
        );
    }
    Ok(())
}

/// `migrate --status`: what `openpartner migrate` would do, without doing it.
pub async fn migrate_status(json: bool) -> Result<()> {
    let db = client().await?;
    let has_control = db
        .query_one(
            "SELECT to_regclass('control.schema_migrations') IS NOT NULL",
            &[],
        )
        .await?
        .get::<_, bool>(0);
    let applied: Vec<i32> = if has_control {
        db.query(
            "SELECT version FROM control.schema_migrations ORDER BY version",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect()
    } else {
        Vec::new()
    };
    let pending: Vec<&migrations::Migration> = migrations::CONTROL
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .collect();
    let latest = migrations::latest_tenant_version();
    let versions: Vec<(i32, i64)> = if applied.contains(&1) {
        db.query(
            "SELECT schema_version, count(*) FROM control.tenants GROUP BY schema_version ORDER BY schema_version",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    } else {
        Vec::new()
    };
    let total: i64 = versions.iter().map(|(_, n)| n).sum();
    let behind: i64 = versions
        .iter()
        .filter(|(v, _)| *v < latest)
        .map(|(_, n)| n)
        .sum();
    if json {
        print_json(&json!({
            "control": {
                "applied": applied,
                "pending": pending.iter().map(|m| json!({"version": m.version, "name": m.name})).collect::<Vec<_>>(),
            },
            "tenants": {
                "latestVersion": latest,
                "total": total,
                "behind": behind,
                "byVersion": versions.iter().map(|(v, n)| json!({"version": v, "tenants": n})).collect::<Vec<_>>(),
            },
            "upToDate": pending.is_empty() && behind == 0,
        }));
    } else {
        let mut rows: Vec<Vec<String>> = migrations::CONTROL
            .iter()
            .map(|m| {
                vec![
                    "control".into(),
                    m.version.to_string(),
                    m.name.to_string(),
                    if applied.contains(&m.version) {
                        "applied".into()
                    } else {
                        "pending".into()
                    },
                ]
            })
            .collect();
        for (v, n) in &versions {
            let state = if *v < latest {
                format!("pending (latest {latest})")
            } else {
                "up to date".into()
            };
            rows.push(vec![
                "tenant".into(),
                v.to_string(),
                format!("{n} tenant schema(s)"),
                state,
            ]);
        }
        println!("{}", table(&["SCOPE", "VERSION", "WHAT", "STATE"], &rows));
        println!(
            "{}",
            if pending.is_empty() && behind == 0 {
                "up to date".to_string()
            } else {
                format!("{} control migration(s) and {behind} of {total} tenant schema(s) pending: run `openpartner migrate`", pending.len())
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn tables_align_columns() {
        let t = super::table(&["A", "LONG"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(t, "A    LONG\nxyz  1");
    }
}
