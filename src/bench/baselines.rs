//! The database floor, the third way an operation is measured: an equivalent row written
//! straight to PostgreSQL, by our own connections (raw SQL) and by pgbench (a C client).

use super::{cpu, measure::measure, report::Report, target::Bench};
use anyhow::{Context, Result};
use op_control::schema::Schema;
use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

/// The floor: `sql` (one `$1` text parameter, a fresh ULID) per autocommit transaction,
/// from as many connections as clients.
pub(super) async fn raw_sql(b: &Bench, what: &str, sql: &str) -> Result<Report> {
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
pub(super) async fn pgbench(b: &Bench, tenant_schema: &Schema) -> Result<Report> {
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
