//! The database floor, the third way an operation is measured: an equivalent row written
//! or read straight from PostgreSQL, by our own connections (raw SQL) and by pgbench (a C
//! client, the anchor the targets are stated against).

use super::{cpu, measure::measure, report::Report, target::Bench};
use anyhow::{Context, Result};
use op_control::schema::Schema;
use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

/// The floor: `sql` (one `$1` text parameter, a fresh ULID) per autocommit transaction,
/// from as many connections as clients.
pub(super) async fn raw_sql(b: &Bench, what: &str, sql: &str) -> Result<Report> {
    raw_sql_with(b, what, sql, |_| ulid::Ulid::new().to_string()).await
}

/// The floor: `sql` (one `$1` text parameter, `param(n)` for the n-th call, prepared once
/// per connection) per autocommit statement, from as many connections as clients.
pub(super) async fn raw_sql_with(
    b: &Bench,
    what: &str,
    sql: &str,
    param: impl Fn(u64) -> String + Clone + Send + Sync + 'static,
) -> Result<Report> {
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
        move |_, n| {
            let (pool, next, p) = (pool.clone(), next.clone(), param(n));
            async move {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize % pool.len();
                let (c, stmt) = &*pool[i];
                c.execute(stmt, &[&p]).await.is_ok()
            }
        },
    )
    .await)
}

/// One pgbench anchor: a one-statement script run by pgbench with as many clients as the
/// bench's, for the same duration. Insert anchors start each run from an empty copy of the
/// tenant's table (with its indexes), as the events anchor always has.
pub(super) struct Pgbench {
    label: String,
    script: PathBuf,
    /// Run before each run (e.g. recreate the empty table); none for reads.
    reset: Option<String>,
    /// `-M prepared`: the statement parsed and planned once per connection.
    prepared: bool,
}

impl Drop for Pgbench {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.script);
    }
}

fn script_file(tag: &str, text: &str) -> Result<PathBuf> {
    let script = std::env::temp_dir().join(format!(
        "openpartner-pgbench-{}-{tag}.sql",
        std::process::id()
    ));
    std::fs::write(&script, text)?;
    Ok(script)
}

/// An empty copy of the tenant's `table` in `bench_baseline` (columns, defaults, checks and
/// indexes; no foreign keys).
fn fresh_copy(tenant_schema: &Schema, table: &str) -> String {
    format!(
        "CREATE SCHEMA IF NOT EXISTS bench_baseline;
         DROP TABLE IF EXISTS bench_baseline.{table};
         CREATE TABLE bench_baseline.{table} (LIKE {tenant_schema}.{table} INCLUDING ALL);"
    )
}

impl Pgbench {
    /// pgbench inserting an equivalent event row into a copy of the tenant's `events`.
    pub(super) fn event_insert(tenant_schema: &Schema) -> Result<Pgbench> {
        Ok(Pgbench {
            label: format!("{:<26} pgbench (baseline)", "INSERT event row"),
            script: script_file(
                "events",
                "INSERT INTO bench_baseline.events (id, event_id, user_id, type, value, currency, metadata, ts, attribution_status, response) \
                 VALUES ('evt_' || md5(random()::text), md5(random()::text), 'u1', 'invoice.paid', 49.90, 'USD', '{}', now(), 'no_identity', '{\"ok\":true}') \
                 ON CONFLICT (event_id) DO NOTHING;\n",
            )?,
            reset: Some(fresh_copy(tenant_schema, "events")),
            prepared: false,
        })
    }

    /// pgbench inserting a partner row (as `POST /partners` does) into a copy of the
    /// tenant's `partners`: the one-row durable insert.
    pub(super) fn partner_insert(tenant_schema: &Schema) -> Result<Pgbench> {
        Ok(Pgbench {
            label: format!("{:<26} pgbench (baseline)", "INSERT partner row"),
            script: script_file(
                "partners-insert",
                "INSERT INTO bench_baseline.partners (id, email, name, metadata, status, activated_at) \
                 VALUES (md5(random()::text), md5(random()::text) || '@pg.bench.example', 'B', '{}', 'active', now()) \
                 ON CONFLICT (email) DO NOTHING;\n",
            )?,
            reset: Some(fresh_copy(tenant_schema, "partners")),
            prepared: false,
        })
    }

    /// pgbench inserting a click row into a copy of the tenant's `clicks`: the one-row
    /// durable insert the click router is held to (`link` = its id, partner and campaign).
    pub(super) fn click_insert(tenant_schema: &Schema, link: [&str; 3]) -> Result<Pgbench> {
        let [link_id, partner_id, campaign_id] = link;
        Ok(Pgbench {
            label: format!("{:<26} pgbench (baseline)", "INSERT click row"),
            script: script_file(
                "clicks",
                &format!(
                    "INSERT INTO bench_baseline.clicks (id, link_id, partner_id, campaign_id, ip_hash, user_agent, referer, ts) \
                     VALUES (md5(random()::text), '{link_id}', '{partner_id}', '{campaign_id}', md5(random()::text), 'bench', NULL, now());\n"
                ),
            )?,
            reset: Some(fresh_copy(tenant_schema, "clicks")),
            prepared: false,
        })
    }

    /// The read anchor: pgbench `-M prepared` selecting a partner by primary key, a random
    /// one of the `count` rows of `bench_baseline.partners_read` (a copy of the tenant's
    /// `partners` with its indexes, filled with the same rows as the read scenario's
    /// partners: ids `prefix` and `first .. first + count` in decimal; pgbench's variables
    /// are numbers, so the statement prepends the prefix). Fills the table once.
    pub(super) async fn partner_select(
        b: &Bench,
        tenant_schema: &Schema,
        prefix: &str,
        first: u64,
        count: u64,
    ) -> Result<Pgbench> {
        let c = crate::connect(&b.target.stack.database_url).await?;
        c.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS bench_baseline;
             DROP TABLE IF EXISTS bench_baseline.partners_read;
             CREATE TABLE bench_baseline.partners_read (LIKE {tenant_schema}.partners INCLUDING ALL);
             INSERT INTO bench_baseline.partners_read SELECT * FROM {tenant_schema}.partners
              WHERE id IN (SELECT '{prefix}' || ({first} + n) FROM generate_series(0, {count} - 1) n);"
        ))
        .await?;
        c.batch_execute("VACUUM ANALYZE bench_baseline.partners_read")
            .await?;
        let rows: i64 = c
            .query_one("SELECT count(*) FROM bench_baseline.partners_read", &[])
            .await?
            .get(0);
        anyhow::ensure!(
            rows == count as i64,
            "the read anchor's table has {rows} rows, not {count}"
        );
        Ok(Pgbench {
            label: format!(
                "{:<26} pgbench -M prepared (anchor)",
                "SELECT partner by id"
            ),
            script: script_file(
                "partners-select",
                &format!(
                    "\\set id random({first}, {})\n\
                     SELECT {} FROM bench_baseline.partners_read WHERE id = '{prefix}' || :id;\n",
                    first + count - 1,
                    PARTNER_COLUMNS
                ),
            )?,
            reset: None,
            prepared: true,
        })
    }

    /// One run: `b.concurrency` clients for `b.duration`.
    pub(super) async fn run(&self, b: &Bench) -> Result<Report> {
        if let Some(reset) = &self.reset {
            let c = crate::connect(&b.target.stack.database_url).await?;
            c.batch_execute(reset).await?;
        }
        let bin = crate::embedded_pg::server_bin_dir()?.join("pgbench");
        let cpu_before = cpu::snapshot();
        let children_before = cpu::children_secs();
        let mut cmd = tokio::process::Command::new(bin);
        cmd.args([
            "-n",
            "-c",
            &b.concurrency.to_string(),
            "-j",
            "2",
            "-T",
            &b.duration.as_secs().to_string(),
        ]);
        if self.prepared {
            cmd.args(["-M", "prepared"]);
        }
        let out = cmd
            .arg("-f")
            .arg(&self.script)
            .arg(&b.target.stack.database_url)
            .output()
            .await?;
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
            label: self.label.clone(),
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
}

/// The columns `GET /partners/:id` reads (the worker's `partners::COLUMNS`).
pub(super) const PARTNER_COLUMNS: &str = "id, email, name, metadata, status, activated_at, revoked_at, revoke_reason, created_at, updated_at";
