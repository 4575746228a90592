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
    migration!(3, "control", "0003_pending_work"),
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

const TENANT_VERSIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
             version integer PRIMARY KEY,
             name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now())";

/// The statements of every tenant migration, split once per process.
fn tenant_statements() -> &'static [Vec<String>] {
    static SPLIT: std::sync::OnceLock<Vec<Vec<String>>> = std::sync::OnceLock::new();
    SPLIT.get_or_init(|| TENANT.iter().map(|m| split_statements(m.sql)).collect())
}

/// Sends `stmts` (each with the name of the migration it belongs to, for the error) on the
/// transaction's connection without waiting for one answer before sending the next: one
/// statement per query still (CITUS rule 7), in order, but one round trip for the lot.
/// The first failure is the one reported (the statements after it fail as "aborted").
async fn pipeline(tx: &Transaction<'_>, stmts: &[(&str, &str)]) -> Result<(), ControlError> {
    let sent = stmts.iter().map(|(name, sql)| async move {
        tx.simple_query(sql)
            .await
            .map_err(|source| ControlError::Migration {
                name: name.to_string(),
                source,
            })
    });
    // `join_all` polls (and so sends) in order and waits for every answer; the first error
    // in statement order is the cause, the later ones its consequence.
    for result in futures::future::join_all(sent).await {
        result?;
    }
    Ok(())
}

/// The migration rows and the control plane's version of a schema that now has `applied`.
fn versions_sql(tenant_id: &str, applied: &[&Migration]) -> Vec<String> {
    let mut out = Vec::new();
    if !applied.is_empty() {
        let values: Vec<String> = applied
            .iter()
            .map(|m| format!("({}, '{}')", m.version, m.name.replace('\'', "''")))
            .collect();
        out.push(format!(
            "INSERT INTO schema_migrations (version, name) VALUES {}",
            values.join(", ")
        ));
    }
    // The id is a validated ULID (`Schema::of_tenant` accepted it): safe as a literal.
    out.push(format!(
        "UPDATE control.tenants SET schema_version = {v} WHERE id = '{tenant_id}' AND schema_version <> {v}",
        v = latest_tenant_version()
    ));
    out
}

/// Creates every tenant table in the brand-new, empty `schema` (created by the caller in
/// this transaction, so nobody else can see it: no lock, no versions to read), pipelined:
/// the versions table, every statement of every tenant migration, the version rows and the
/// control plane's `schema_version`, all in one round trip.
pub async fn create_tenant_schema(
    tx: &Transaction<'_>,
    tenant_id: &str,
    schema: &Schema,
) -> Result<Vec<i32>, ControlError> {
    if !crate::schema::valid_tenant_id(tenant_id) {
        return Err(ControlError::InvalidTenantId(tenant_id.to_string()));
    }
    let search_path = format!("SET LOCAL search_path TO {schema}");
    let first = [
        ("search_path", search_path.as_str()),
        ("schema_migrations", TENANT_VERSIONS_TABLE),
    ];
    let all = TENANT.iter().zip(tenant_statements()).collect();
    apply_tenant(tx, tenant_id, &first, all).await
}

/// Applies the missing tenant migrations inside `schema`, in the caller's transaction,
/// under the tenant's advisory lock (taken in a statement of its own, CITUS rule 11): one
/// round trip for the lock, one to learn the applied versions, one for the missing
/// migrations with their version rows.
pub async fn migrate_tenant_in(
    tx: &Transaction<'_>,
    tenant_id: &str,
    schema: &Schema,
) -> Result<Vec<i32>, ControlError> {
    if !crate::schema::valid_tenant_id(tenant_id) {
        return Err(ControlError::InvalidTenantId(tenant_id.to_string()));
    }
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&tenant_lock_key(tenant_id)],
    )
    .await?;
    let search_path = format!("SET LOCAL search_path TO {schema}");
    pipeline(
        tx,
        &[
            ("search_path", search_path.as_str()),
            ("schema_migrations", TENANT_VERSIONS_TABLE),
        ],
    )
    .await?;
    let applied = applied_versions(tx, "schema_migrations").await?;
    let missing = TENANT
        .iter()
        .zip(tenant_statements())
        .filter(|(m, _)| !applied.contains(&m.version))
        .collect();
    apply_tenant(tx, tenant_id, &[], missing).await
}

/// Sends `first`, then every statement of the `missing` migrations and their version rows,
/// pipelined (one round trip), in a tenant schema; returns the versions applied.
async fn apply_tenant(
    tx: &Transaction<'_>,
    tenant_id: &str,
    first: &[(&str, &str)],
    missing: Vec<(&Migration, &Vec<String>)>,
) -> Result<Vec<i32>, ControlError> {
    let ms: Vec<&Migration> = missing.iter().map(|(m, _)| *m).collect();
    let versions = versions_sql(tenant_id, &ms);
    let mut stmts: Vec<(&str, &str)> = first.to_vec();
    for (m, split) in &missing {
        stmts.extend(split.iter().map(|s| (m.name, s.as_str())));
    }
    stmts.extend(versions.iter().map(|s| ("schema_migrations", s.as_str())));
    pipeline(tx, &stmts).await?;
    Ok(ms.iter().map(|m| m.version).collect())
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

/// Control schema first, then every tenant schema, one transaction each, over `client`.
pub async fn migrate_all(client: &mut Client) -> Result<MigrateReport, ControlError> {
    migrate_all_over(client, 0, || async {
        Err("no more connections".to_string())
    })
    .await
}

/// [`migrate_all`] with the tenant schemas spread over `client` and up to `more` further
/// connections from `connect`, opened only when that many schemas are behind (a run with
/// nothing to do opens none).
///
/// Which schemas are behind is one query: `control.tenants.schema_version` is written in
/// the same transaction as the schema's own `schema_migrations` rows, so it is the
/// schema's version. Only those schemas are visited (a no-op run over 10,000 tenants is
/// that one query); each still checks its own `schema_migrations` under its lock.
pub async fn migrate_all_over<F, Fut>(
    client: &mut Client,
    more: usize,
    connect: F,
) -> Result<MigrateReport, ControlError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Client, String>>,
{
    let mut report = MigrateReport {
        control_applied: migrate_control(client).await?,
        ..Default::default()
    };
    let latest = latest_tenant_version();
    let row = client
        .query_one(
            "SELECT count(*), coalesce(array_agg(id ORDER BY id) FILTER (WHERE schema_version < $1), '{}')
               FROM control.tenants",
            &[&latest],
        )
        .await?;
    report.tenants_total = row.get::<_, i64>(0) as usize;
    let behind: Vec<String> = row.get(1);
    let mut more_clients = Vec::new();
    for _ in 0..more.min(behind.len().saturating_sub(1)) {
        more_clients.push(connect().await.map_err(ControlError::Connect)?);
    }
    let queue = std::sync::Mutex::new(behind.into_iter());
    let migrated = std::sync::atomic::AtomicUsize::new(0);
    let next = || queue.lock().expect("queue lock").next();
    let lanes = std::iter::once(client)
        .chain(more_clients.iter_mut())
        .map(|c| async {
            while let Some(id) = next() {
                if !migrate_tenant(c, &id).await?.is_empty() {
                    migrated.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Ok::<_, ControlError>(())
        });
    for lane in futures::future::join_all(lanes).await {
        lane?;
    }
    report.tenants_migrated = migrated.into_inner();
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
