//! The migration runner for the control schema and every tenant schema.
//!
//! Hand-written rather than taken from a crate because of two Citus rules (shared CITUS.md
//! 7 and 8) that the usual runners break: each file is split and sent one statement per
//! query, and every tenant schema is migrated in its own transaction, versioned inside the
//! schema itself (`schema_migrations`) so the version moves with the tenant.
//!
//! Concurrency: each run holds a transaction-scoped advisory lock (taken in a statement of
//! its own, rule 11) for the control schema or for the one tenant, so two `openpartner
//! migrate` runs at once serialize and the second finds nothing to do.

use crate::{schema::Schema, ControlError};
use tokio_postgres::{Client, Transaction};

/// One migration file, embedded in the binary at build time.
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! migration {
    ($version:expr, $dir:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("../../migrations/", $dir, "/", $name, ".sql")),
        }
    };
}

pub const CONTROL: &[Migration] = &[
    migration!(1, "control", "0001_tenants_and_keys"),
    migration!(2, "control", "0002_worker_registry"),
];

pub const TENANT: &[Migration] = &[
    migration!(1, "tenant", "0001_partners"),
    migration!(2, "tenant", "0002_auth"),
    migration!(3, "tenant", "0003_money_path"),
    migration!(4, "tenant", "0004_ledger_and_payouts"),
    migration!(5, "tenant", "0005_webhooks"),
    migration!(6, "tenant", "0006_drop_outbox_created_idx"),
    migration!(7, "tenant", "0007_idempotency_retention"),
    migration!(8, "tenant", "0008_outbox_is_a_queue"),
    migration!(9, "tenant", "0009_ledger_transitions_as_a_check"),
    migration!(10, "tenant", "0010_program_access"),
    migration!(11, "tenant", "0011_partner_terms"),
    migration!(12, "tenant", "0012_compound_rules"),
    migration!(13, "tenant", "0013_reporting"),
    migration!(14, "tenant", "0014_reporting_backfill"),
    migration!(15, "tenant", "0015_events_user_ts_id"),
    migration!(16, "tenant", "0016_reporting_money_rollups"),
    migration!(17, "tenant", "0017_reporting_money_backfill"),
];

/// The version a fully migrated tenant schema has.
pub fn latest_tenant_version() -> i32 {
    TENANT.last().map_or(0, |m| m.version)
}

const CONTROL_LOCK: i64 = 0x6f70_636f_6e74; // "opcont"

/// Splits a migration file into statements. Our migrations are plain DDL: statements end
/// with `;`, strings are single-quoted, comments start with `--`. No dollar quoting (no
/// functions or triggers in tenant schemas, CITUS rule 3).
pub fn split_statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_string = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            cur.push(c);
            if c == '\'' {
                in_string = false;
            }
            continue;
        }
        match c {
            '\'' => {
                in_string = true;
                cur.push(c);
            }
            '-' if chars.peek() == Some(&'-') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        cur.push('\n');
                        break;
                    }
                }
            }
            ';' => {
                let stmt = cur.trim();
                if !stmt.is_empty() {
                    out.push(stmt.to_string());
                }
                cur.clear();
            }
            _ => cur.push(c),
        }
    }
    let stmt = cur.trim();
    if !stmt.is_empty() {
        out.push(stmt.to_string());
    }
    out
}

async fn apply(tx: &Transaction<'_>, m: &Migration) -> Result<(), ControlError> {
    for stmt in split_statements(m.sql) {
        tx.execute(stmt.as_str(), &[])
            .await
            .map_err(|source| ControlError::Migration {
                name: m.name.to_string(),
                source,
            })?;
    }
    Ok(())
}

/// Brings the control schema up to date. Returns the versions applied by this call.
pub async fn migrate_control(client: &mut Client) -> Result<Vec<i32>, ControlError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CONTROL_LOCK])
        .await?;
    tx.execute("CREATE SCHEMA IF NOT EXISTS control", &[])
        .await?;
    tx.execute(
        "CREATE TABLE IF NOT EXISTS control.schema_migrations (
             version integer PRIMARY KEY,
             name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now())",
        &[],
    )
    .await?;
    let applied = applied_versions(&tx, "control.schema_migrations").await?;
    let mut done = Vec::new();
    for m in CONTROL.iter().filter(|m| !applied.contains(&m.version)) {
        apply(&tx, m).await?;
        tx.execute(
            "INSERT INTO control.schema_migrations (version, name) VALUES ($1, $2)",
            &[&m.version, &m.name],
        )
        .await?;
        done.push(m.version);
    }
    tx.commit().await?;
    Ok(done)
}

async fn applied_versions(tx: &Transaction<'_>, table: &str) -> Result<Vec<i32>, ControlError> {
    let rows = tx
        .query(&format!("SELECT version FROM {table}"), &[])
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Applies the missing tenant migrations inside `schema`, in the caller's transaction
/// (provisioning runs this in the same transaction that creates the schema).
pub async fn migrate_tenant_in(
    tx: &Transaction<'_>,
    tenant_id: &str,
    schema: &Schema,
) -> Result<Vec<i32>, ControlError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&tenant_lock_key(tenant_id)],
    )
    .await?;
    tx.execute(&format!("SET LOCAL search_path TO {schema}"), &[])
        .await?;
    tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version integer PRIMARY KEY,
             name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now())",
        &[],
    )
    .await?;
    let applied = applied_versions(tx, "schema_migrations").await?;
    let mut done = Vec::new();
    for m in TENANT.iter().filter(|m| !applied.contains(&m.version)) {
        apply(tx, m).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&m.version, &m.name],
        )
        .await?;
        done.push(m.version);
    }
    tx.execute(
        "UPDATE control.tenants SET schema_version = $2 WHERE id = $1 AND schema_version <> $2",
        &[&tenant_id, &latest_tenant_version()],
    )
    .await?;
    Ok(done)
}

/// Migrates one existing tenant schema in a transaction of its own (CITUS rule 8).
pub async fn migrate_tenant(
    client: &mut Client,
    tenant_id: &str,
) -> Result<Vec<i32>, ControlError> {
    let schema = Schema::of_tenant(tenant_id)
        .ok_or_else(|| ControlError::InvalidTenantId(tenant_id.to_string()))?;
    let tx = client.transaction().await?;
    let done = migrate_tenant_in(&tx, tenant_id, &schema).await?;
    tx.commit().await?;
    Ok(done)
}

/// Report of one `openpartner migrate` run.
#[derive(Debug, Default)]
pub struct MigrateReport {
    pub control_applied: Vec<i32>,
    pub tenants_total: usize,
    pub tenants_migrated: usize,
}

/// Control schema first, then every tenant schema, one transaction each.
pub async fn migrate_all(client: &mut Client) -> Result<MigrateReport, ControlError> {
    let mut report = MigrateReport {
        control_applied: migrate_control(client).await?,
        ..Default::default()
    };
    let ids: Vec<String> = client
        .query("SELECT id FROM control.tenants ORDER BY id", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    report.tenants_total = ids.len();
    for id in ids {
        if !migrate_tenant(client, &id).await?.is_empty() {
            report.tenants_migrated += 1;
        }
    }
    Ok(report)
}

fn tenant_lock_key(tenant_id: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("tenant-migrate:{tenant_id}").as_bytes());
    i64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_statements_ignoring_comments_and_strings() {
        let sql = "-- a comment; with a semicolon\nCREATE TABLE a (x text DEFAULT 'a;b');\n\nCREATE INDEX i ON a (x);\n-- trailing\n";
        let stmts = split_statements(sql);
        assert_eq!(
            stmts,
            vec![
                "CREATE TABLE a (x text DEFAULT 'a;b')".to_string(),
                "CREATE INDEX i ON a (x)".to_string()
            ]
        );
    }

    #[test]
    fn every_embedded_migration_splits_into_statements() {
        for m in CONTROL.iter().chain(TENANT) {
            let stmts = split_statements(m.sql);
            assert!(!stmts.is_empty(), "{} is empty", m.name);
            for s in stmts {
                assert!(!s.contains(';'), "{}: unsplit statement {s}", m.name);
            }
        }
    }

    #[test]
    fn versions_are_strictly_increasing() {
        for list in [CONTROL, TENANT] {
            for w in list.windows(2) {
                assert!(w[0].version < w[1].version);
            }
        }
    }
}
