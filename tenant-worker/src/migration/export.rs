//! The `rs-1` export: every table of `super::TABLES` of one tenant, read in one
//! repeatable-read snapshot and written row by row as it streams from the database.

use super::{columns, ident, SCHEMA_VERSION, TABLES};
use futures::{pin_mut, TryStreamExt};
use op_control::schema::Schema;
use std::io::Write;

/// Writes the bundle of the tenant `tenant_id` (`slug`, `name`) to `out`: `{exportedAt,
/// schemaVersion, tenant: {slug, name}, tables: {<table>: [rows]}}`, tables in foreign-key
/// order, rows in key order.
pub async fn export(
    db: &mut tokio_postgres::Client,
    tenant_id: &str,
    slug: &str,
    name: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let schema = Schema::of_tenant(tenant_id)
        .ok_or_else(|| anyhow::anyhow!("`{tenant_id}` is not a tenant id"))?;
    let tx = db
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    // Times as UTC, whatever the server's default.
    tx.batch_execute("SET LOCAL TimeZone = 'UTC'").await?;
    let exported_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    write!(
        out,
        "{{\"exportedAt\":{},\"schemaVersion\":{},\"tenant\":{},\"tables\":{{",
        serde_json::Value::from(exported_at),
        serde_json::Value::from(SCHEMA_VERSION),
        serde_json::json!({"slug": slug, "name": name}),
    )?;
    for (n, table) in TABLES.iter().enumerate() {
        let cols = columns(&tx, &schema, table.name).await?;
        // Numbers as decimal strings (exact, as the API writes money).
        let numbers: Vec<String> = cols
            .iter()
            .filter(|(c, ty)| ty == "numeric" && !table.secret.contains(&c.as_str()))
            .map(|(c, _)| format!("'{c}', t.{}::text", ident(c)))
            .collect();
        let row = if numbers.is_empty() {
            "to_jsonb(t) - $1::text[]".to_string()
        } else {
            format!(
                "(to_jsonb(t) - $1::text[]) || jsonb_build_object({})",
                numbers.join(", ")
            )
        };
        let order: Vec<String> = table
            .key
            .iter()
            .map(|k| format!("t.{}", ident(k)))
            .collect();
        let sql = format!(
            "SELECT {row} FROM {} t ORDER BY {}",
            schema.table(table.name),
            order.join(", ")
        );
        let secret: Vec<String> = table.secret.iter().map(|s| s.to_string()).collect();
        if n > 0 {
            out.write_all(b",")?;
        }
        write!(out, "{}:[", serde_json::Value::from(table.name))?;
        let rows = tx.query_raw(&sql, [&secret]).await?;
        pin_mut!(rows);
        let mut first = true;
        while let Some(r) = rows.try_next().await? {
            if !first {
                out.write_all(b",")?;
            }
            first = false;
            let v: serde_json::Value = r.get(0);
            serde_json::to_writer(&mut *out, &v)?;
        }
        out.write_all(b"]")?;
    }
    out.write_all(b"}}")?;
    tx.commit().await?;
    Ok(())
}
