//! The `rs-1` import: one transaction, all or nothing. Each table of `super::TABLES` is
//! one `INSERT … SELECT … FROM jsonb_populate_recordset(…)` of the bundle's rows whose key is
//! not there yet (existing ids are skipped, so a second import inserts 0), under a savepoint:
//! when the database refuses the batch (a constraint, a type), the rows are tried one by one
//! to name the one that breaks the rule. Then the rollups of the clicks and identities it
//! inserted are recomputed, and the transaction commits — or, for a dry run, rolls back, so
//! the dry run's report is the real run's.

use super::{columns, ident, Table, LEFT_OUT, MISSING, REBUILT, SCHEMA_VERSION, TABLES};
use crate::secrets::SecretsKey;
use op_control::schema::Schema;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use tokio_postgres::Transaction;

pub struct ImportOptions<'a> {
    /// Run everything, then roll back.
    pub dry_run: bool,
    /// Seals the new secret of each imported webhook endpoint (`OP_SECRETS_KEY`); without
    /// it, webhook endpoints are left out with a warning.
    pub secrets: Option<&'a SecretsKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// `400 invalid_body`: not a bundle.
    #[error("{0}")]
    InvalidBody(String),
    /// `400 unsupported_schema_version`: anything but `rs-1`.
    #[error("{0}")]
    UnsupportedSchemaVersion(String),
    /// `422 invalid_row`: a row breaks a rule; `row` is its `id` (its index when it has no
    /// usable id, its key object in the two tables keyed otherwise).
    #[error("{table} row {row}: {detail}")]
    InvalidRow {
        table: String,
        row: Value,
        detail: String,
    },
    /// The database failed otherwise (`500`).
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
}

impl ImportError {
    /// The `error` code of the API.
    pub fn code(&self) -> &'static str {
        match self {
            ImportError::InvalidBody(_) => "invalid_body",
            ImportError::UnsupportedSchemaVersion(_) => "unsupported_schema_version",
            ImportError::InvalidRow { .. } => "invalid_row",
            ImportError::Db(_) => "internal",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            ImportError::InvalidBody(_) | ImportError::UnsupportedSchemaVersion(_) => 400,
            ImportError::InvalidRow { .. } => 422,
            ImportError::Db(_) => 500,
        }
    }

    /// `{error, detail}` (+ `table`, `row` for `invalid_row`).
    pub fn to_json(&self) -> Value {
        let mut v = json!({"error": self.code(), "detail": self.to_string()});
        if let ImportError::InvalidRow { table, row, detail } = self {
            v["table"] = json!(table);
            v["row"] = row.clone();
            v["detail"] = json!(detail);
        }
        v
    }
}

/// Imports `bundle` into the tenant `tenant_id`; the reply `{ok, dryRun, report: {inserted,
/// skipped, warnings, missing}}`.
pub async fn import(
    db: &mut tokio_postgres::Client,
    tenant_id: &str,
    bundle: &Value,
    opts: ImportOptions<'_>,
) -> Result<Value, ImportError> {
    let schema = Schema::of_tenant(tenant_id)
        .ok_or_else(|| ImportError::InvalidBody(format!("`{tenant_id}` is not a tenant id")))?;
    let Some(bundle) = bundle.as_object() else {
        return Err(ImportError::InvalidBody("a bundle is a JSON object".into()));
    };
    match bundle.get("schemaVersion") {
        Some(Value::String(v)) if v == SCHEMA_VERSION => {}
        other => {
            return Err(ImportError::UnsupportedSchemaVersion(format!(
                "schemaVersion must be \"{SCHEMA_VERSION}\", got {}",
                other.map_or("nothing".to_string(), Value::to_string)
            )))
        }
    }
    let Some(tables) = bundle.get("tables").and_then(Value::as_object) else {
        return Err(ImportError::InvalidBody(
            "`tables` must be an object of arrays of rows".into(),
        ));
    };
    let mut warnings: Vec<String> = Vec::new();
    for name in tables.keys() {
        if TABLES.iter().any(|t| t.name == name) {
            continue;
        }
        if let Some((_, why)) = LEFT_OUT.iter().find(|(t, _)| t == name) {
            warnings.push(format!("table {name} is not imported ({why})"));
        } else if REBUILT.contains(&name.as_str()) {
            warnings.push(format!(
                "table {name} is not imported: it is rebuilt from the imported rows"
            ));
        } else {
            warnings.push(format!("unknown table {name} ignored"));
        }
    }

    let mut tx = db.transaction().await?;
    let mut inserted = Map::new();
    let mut skipped = Map::new();
    // Clicks whose rollups must be recomputed: inserted ones and those of inserted identities.
    let mut touched_clicks: Vec<String> = Vec::new();
    for table in TABLES {
        let rows = match tables.get(table.name) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(rows)) => rows.clone(),
            Some(_) => {
                return Err(ImportError::InvalidBody(format!(
                    "tables.{} must be an array of rows",
                    table.name
                )))
            }
        };
        let total = rows.len();
        let (n, returned) = if rows.is_empty() {
            (0, Vec::new())
        } else if table.name == "webhook_endpoints" && opts.secrets.is_none() {
            warnings.push(format!(
                "{total} webhook endpoint(s) not imported: OP_SECRETS_KEY is not set, so no secret can be sealed for them"
            ));
            (0, Vec::new())
        } else {
            let rows = prepare(table, rows, &opts, &mut warnings)?;
            insert(&mut tx, &schema, table, rows, &mut warnings).await?
        };
        match table.name {
            "clicks" | "identities" => touched_clicks.extend(returned),
            "webhook_endpoints" if n > 0 => warnings.push(format!(
                "{n} webhook endpoint(s) imported disabled (disabledReason \"imported\") with a new secret: rotate the secret (POST /webhooks/:id/rotate-secret), give it to the receiver, then enable the endpoint (PATCH active: true)"
            )),
            _ => {}
        }
        inserted.insert(table.name.into(), json!(n));
        skipped.insert(table.name.into(), json!(total - n));
    }
    if !touched_clicks.is_empty() {
        rebuild_rollups(&tx, &schema, &touched_clicks).await?;
    }
    if opts.dry_run {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(json!({
        "ok": true,
        "dryRun": opts.dry_run,
        "report": {
            "inserted": inserted,
            "skipped": skipped,
            "warnings": warnings,
            "missing": MISSING,
        }
    }))
}

/// How a row is named in an error: its id, else its index (key object for composite keys).
fn row_name(table: &Table, index: usize, row: &Value) -> Value {
    if table.key.len() == 1 {
        match row.get(table.key[0]) {
            Some(Value::String(id)) if !id.is_empty() => json!(id),
            _ => json!(index),
        }
    } else {
        let key: Map<String, Value> = table
            .key
            .iter()
            .map(|k| (k.to_string(), row.get(*k).cloned().unwrap_or(Value::Null)))
            .collect();
        if key.values().all(Value::is_string) {
            Value::Object(key)
        } else {
            json!(index)
        }
    }
}

/// Checks each row's shape (an object with its key) and drops what never imports: secret
/// columns. Webhook endpoints get a new sealed secret and are disabled.
fn prepare(
    table: &Table,
    rows: Vec<Value>,
    opts: &ImportOptions<'_>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Value>, ImportError> {
    let mut dropped_secret = false;
    let mut out = Vec::with_capacity(rows.len());
    for (i, row) in rows.into_iter().enumerate() {
        let Value::Object(mut obj) = row else {
            return Err(ImportError::InvalidRow {
                table: table.name.into(),
                row: json!(i),
                detail: "a row is a JSON object".into(),
            });
        };
        for k in table.key {
            if obj
                .get(*k)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(ImportError::InvalidRow {
                    table: table.name.into(),
                    row: row_name(table, i, &Value::Object(obj.clone())),
                    detail: format!("`{k}` must be a non-empty string"),
                });
            }
        }
        for s in table.secret {
            dropped_secret |= obj.remove(*s).is_some();
        }
        if table.name == "webhook_endpoints" {
            if let Some(key) = opts.secrets {
                let id = obj["id"].as_str().unwrap_or_default().to_string();
                let sealed = key.seal(&crate::webhooks::signing::new_secret(), &id);
                obj.insert(
                    "secret_sealed".into(),
                    json!(format!("\\x{}", hex::encode(sealed))),
                );
                obj.insert("active".into(), json!(false));
                obj.insert("disabled_reason".into(), json!("imported"));
                obj.insert("failing_since".into(), Value::Null);
            }
        }
        out.push(Value::Object(obj));
    }
    if dropped_secret {
        warnings.push(format!(
            "{}: secret columns in the bundle were ignored",
            table.name
        ));
    }
    Ok(out)
}

/// Inserts the rows of `table` whose key is not there yet: (inserted, click ids of what was
/// inserted for `clicks` / `identities`).
async fn insert(
    tx: &mut Transaction<'_>,
    schema: &Schema,
    table: &Table,
    rows: Vec<Value>,
    warnings: &mut Vec<String>,
) -> Result<(usize, Vec<String>), ImportError> {
    let known = columns(&*tx, schema, table.name).await?;
    let mut present: BTreeSet<&str> = BTreeSet::new();
    for r in &rows {
        present.extend(
            r.as_object()
                .into_iter()
                .flat_map(|o| o.keys().map(String::as_str)),
        );
    }
    let unknown: Vec<&str> = present
        .iter()
        .copied()
        .filter(|c| !known.iter().any(|(k, _)| k == c))
        .collect();
    if !unknown.is_empty() {
        warnings.push(format!(
            "{}: unknown column(s) ignored: {}",
            table.name,
            unknown.join(", ")
        ));
    }
    // Only the columns the bundle has: the others keep their defaults.
    let cols: Vec<String> = known
        .iter()
        .filter(|(c, _)| present.contains(c.as_str()))
        .map(|(c, _)| ident(c))
        .collect();
    let target = schema.table(table.name);
    let same_key: Vec<String> = table
        .key
        .iter()
        .map(|k| format!("e.{0} = x.{0}", ident(k)))
        .collect();
    let returning = match table.name {
        "clicks" => "id",
        "identities" => "click_id",
        _ => "NULL::text",
    };
    let sql = format!(
        "INSERT INTO {target} ({cols}) SELECT {xcols} FROM jsonb_populate_recordset(NULL::{target}, $1::jsonb) x
          WHERE NOT EXISTS (SELECT 1 FROM {target} e WHERE {same})
         RETURNING {returning}",
        cols = cols.join(", "),
        xcols = cols.iter().map(|c| format!("x.{c}")).collect::<Vec<_>>().join(", "),
        same = same_key.join(" AND "),
    );
    let batch = Value::Array(rows);
    let sp = tx.savepoint("import_table").await?;
    match sp.query(&sql, &[&batch]).await {
        Ok(returned) => {
            sp.commit().await?;
            let ids = returned
                .iter()
                .filter_map(|r| r.get::<_, Option<String>>(0))
                .collect();
            Ok((returned.len(), ids))
        }
        Err(e) if refused_row(&e) => {
            sp.rollback().await?;
            let Value::Array(rows) = batch else {
                unreachable!()
            };
            // One by one, to name the row the database refuses.
            for (i, row) in rows.iter().enumerate() {
                let one = tx.savepoint("import_row").await?;
                let result = one.query(&sql, &[&Value::Array(vec![row.clone()])]).await;
                match result {
                    Ok(_) => one.commit().await?,
                    Err(e) if refused_row(&e) => {
                        return Err(ImportError::InvalidRow {
                            table: table.name.into(),
                            row: row_name(table, i, row),
                            detail: db_detail(&e),
                        })
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Err(ImportError::InvalidRow {
                table: table.name.into(),
                row: Value::Null,
                detail: db_detail(&e),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// A refusal of the data (SQLSTATE classes 22, data exception, and 23, integrity
/// constraint), as opposed to a failing database.
fn refused_row(e: &tokio_postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| c.code().starts_with("22") || c.code().starts_with("23"))
}

fn db_detail(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => match d.detail() {
            Some(more) => format!("{} ({more})", d.message()),
            None => d.message().to_string(),
        },
        None => e.to_string(),
    }
}

/// Recomputes the click rollups of every (partner, day, link) of `clicks` from the clicks
/// and identities themselves — the formula the live writes keep (reporting::rollups):
/// unflagged and flagged clicks, identities of unflagged clicks.
async fn rebuild_rollups(
    tx: &Transaction<'_>,
    schema: &Schema,
    clicks: &[String],
) -> Result<(), tokio_postgres::Error> {
    let s = schema;
    let keys = format!(
        "SELECT DISTINCT partner_id, (ts AT TIME ZONE 'UTC')::date AS day, link_id
           FROM {s}.clicks WHERE id = ANY($1)"
    );
    tx.execute(
        &format!(
            "DELETE FROM {s}.click_rollups r USING ({keys}) k
              WHERE r.partner_id = k.partner_id AND r.day = k.day AND r.link_id = k.link_id"
        ),
        &[&clicks],
    )
    .await?;
    tx.execute(
        &format!(
            "INSERT INTO {s}.click_rollups (partner_id, day, link_id, campaign_id, clicks, flagged_clicks, identities)
             SELECT c.partner_id, (c.ts AT TIME ZONE 'UTC')::date, c.link_id, min(c.campaign_id),
                    count(*) FILTER (WHERE c.fraud_flag IS NULL),
                    count(*) FILTER (WHERE c.fraud_flag IS NOT NULL),
                    coalesce(sum(i.n) FILTER (WHERE c.fraud_flag IS NULL), 0)
               FROM {s}.clicks c
               JOIN ({keys}) k ON k.partner_id = c.partner_id
                              AND k.day = (c.ts AT TIME ZONE 'UTC')::date AND k.link_id = c.link_id
               LEFT JOIN (SELECT click_id, count(*) AS n FROM {s}.identities GROUP BY click_id) i
                      ON i.click_id = c.id
              GROUP BY c.partner_id, (c.ts AT TIME ZONE 'UTC')::date, c.link_id"
        ),
        &[&clicks],
    )
    .await?;
    Ok(())
}
