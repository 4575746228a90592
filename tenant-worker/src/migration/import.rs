//! The `rs-1` import: one transaction, all or nothing, in plain statements (CITUS.md: no
//! `INSERT … SELECT` on tenant tables). Each table's rows go in as multi-row `INSERT …
//! VALUES … ON CONFLICT (<key>) DO NOTHING` (existing ids are skipped, so a second import
//! inserts 0; every other rule of the database still refuses a row). When the database
//! refuses a batch, the transaction is rolled back and the import runs again in a
//! transaction that is always rolled back, that table row by row, to name the row that
//! breaks the rule. The rollups then count what the import inserted — the clicks and
//! identities, the events, attributions, refunds and commissions — the way the live writes
//! count them, with adding upserts (never a recompute: live writers go on meanwhile), and the
//! transaction commits — or, for a dry run, rolls back, so the dry run's report is the real
//! run's.

use super::{columns, ident, Table, LEFT_OUT, MISSING, REBUILT, SCHEMA_VERSION, TABLES};
use crate::reporting::deltas::{Counted, Deltas, Touch};
use crate::secrets::SecretsKey;
use op_control::schema::Schema;
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
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
            ImportError::Db(_) if self.is_transient() => "unavailable",
            ImportError::Db(_) => "internal",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            ImportError::InvalidBody(_) | ImportError::UnsupportedSchemaVersion(_) => 400,
            ImportError::InvalidRow { .. } => 422,
            ImportError::Db(_) if self.is_transient() => 503,
            ImportError::Db(_) => 500,
        }
    }

    /// A deadlock or serialization failure with a live writer (CITUS rule 10, by SQLSTATE):
    /// nothing was written, and running the import again works.
    fn is_transient(&self) -> bool {
        use tokio_postgres::error::SqlState;
        matches!(self, ImportError::Db(e) if e.code().is_some_and(|c| {
            *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
        }))
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
                "table {name} is not imported: the imported rows are counted into it"
            ));
        } else {
            warnings.push(format!("unknown table {name} ignored"));
        }
    }
    // Every row checked and prepared before the database sees any.
    let mut prepared: Vec<(&Table, Vec<Value>, usize)> = Vec::new();
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
        let rows = if table.name == "webhook_endpoints" && opts.secrets.is_none() && total > 0 {
            warnings.push(format!(
                "{total} webhook endpoint(s) not imported: OP_SECRETS_KEY is not set, so no secret can be sealed for them"
            ));
            Vec::new()
        } else {
            prepare(table, rows, &opts, &mut warnings)?
        };
        prepared.push((table, rows, total));
    }

    let outcome = match apply(db, &schema, &prepared, None, opts.dry_run, &mut warnings).await? {
        Applied::Done(inserted) => inserted,
        Applied::Refused(t, error) => {
            // Again, table `t` row by row, always rolled back: which row?
            let mut ignored = Vec::new();
            return Err(
                match apply(db, &schema, &prepared, Some(t), true, &mut ignored).await? {
                    Applied::RefusedRow(i, e) => {
                        let (table, rows, _) = &prepared[t];
                        ImportError::InvalidRow {
                            table: table.name.into(),
                            row: row_name(table, i, &rows[i]),
                            detail: db_detail(&e),
                        }
                    }
                    _ => ImportError::InvalidRow {
                        table: prepared[t].0.name.into(),
                        row: Value::Null,
                        detail: db_detail(&error),
                    },
                },
            );
        }
        Applied::RefusedRow(..) => unreachable!("only when one table goes row by row"),
    };
    let mut inserted = Map::new();
    let mut skipped = Map::new();
    for ((table, _, total), n) in prepared.iter().zip(outcome) {
        if table.name == "webhook_endpoints" && n > 0 {
            warnings.push(format!(
                "{n} webhook endpoint(s) imported disabled (disabledReason \"imported\") with a new secret: rotate the secret (POST /webhooks/:id/rotate-secret), give it to the receiver, then enable the endpoint (PATCH active: true)"
            ));
        }
        inserted.insert(table.name.into(), json!(n));
        skipped.insert(table.name.into(), json!(total - n));
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

enum Applied {
    /// Rows inserted per table (in the order of `prepared`).
    Done(Vec<usize>),
    /// The database refused a batch of table `.0`.
    Refused(usize, tokio_postgres::Error),
    /// Row by row: the database refused row `.0` of the table.
    RefusedRow(usize, tokio_postgres::Error),
}

/// One run of the import in one transaction, committed unless `rollback` (or a refusal).
/// `one_by_one`: the table (index) to insert a row at a time, to find a refused row.
async fn apply(
    db: &mut tokio_postgres::Client,
    schema: &Schema,
    prepared: &[(&Table, Vec<Value>, usize)],
    one_by_one: Option<usize>,
    rollback: bool,
    warnings: &mut Vec<String>,
) -> Result<Applied, ImportError> {
    let tx = db.transaction().await?;
    let mut counts = Vec::with_capacity(prepared.len());
    let mut inserted = Inserted::default();
    for (t, (table, rows, _)) in prepared.iter().enumerate() {
        if rows.is_empty() {
            counts.push(0);
            continue;
        }
        let statement = Statement::new(&tx, schema, table, rows, warnings).await?;
        let per = if one_by_one == Some(t) {
            1
        } else {
            statement.rows_per_statement()
        };
        let mut n = 0;
        for (c, chunk) in rows.chunks(per).enumerate() {
            match statement.run(&tx, chunk).await {
                Ok(ids) => {
                    n += ids.len();
                    inserted.add(table.name, ids.into_iter().flatten());
                }
                Err(e) if refused_row(&e) => {
                    return Ok(if one_by_one == Some(t) {
                        Applied::RefusedRow(c, e)
                    } else {
                        Applied::Refused(t, e)
                    })
                }
                Err(e) => return Err(e.into()),
            }
        }
        counts.push(n);
        if one_by_one == Some(t) {
            // The row the batch tripped over was not found alone (an order within the
            // table): report the batch's error.
            tx.rollback().await?;
            return Ok(Applied::Done(counts));
        }
    }
    // The rows locked in the order identify locks them: the events (`money_deltas`), the
    // click rollups, then the event, user and commission rollups.
    let money = money_deltas(&tx, schema, &inserted).await?;
    count_rollups(&tx, schema, &inserted.clicks, &inserted.identities).await?;
    for rows in money.rows(schema) {
        for (sql, params) in rows.statements() {
            tx.execute(sql.as_str(), &params).await?;
        }
    }
    if rollback {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(Applied::Done(counts))
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
        check_domain_rules(table, i, &mut obj)?;
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

/// What the database cannot check but the API relies on when it reads a row back: a
/// commission rule parses (a campaign's, a partner's terms'; stored in its canonical form),
/// a currency is an ISO 4217 code with a minor unit.
fn check_domain_rules(
    table: &Table,
    index: usize,
    obj: &mut Map<String, Value>,
) -> Result<(), ImportError> {
    let refuse = |obj: &Map<String, Value>, detail: String| ImportError::InvalidRow {
        table: table.name.into(),
        row: row_name(table, index, &Value::Object(obj.clone())),
        detail,
    };
    let rule_column = match table.name {
        "campaigns" => Some("commission_rule"),
        "partner_terms" => Some("rule"),
        _ => None,
    };
    if let Some(column) = rule_column {
        if let Some(rule) = obj.get(column).filter(|v| !v.is_null()) {
            match crate::commissions::rules::CommissionRule::parse_field(rule, column) {
                Ok(rule) => {
                    obj.insert(column.into(), rule.to_json());
                }
                Err(e) => return Err(refuse(obj, e.detail)),
            }
        }
    }
    // The numbers the rollups read back and add up in Rust: exact decimals within the API's
    // bound (`numeric` would store a NaN, an infinity or 1e40 that no sum can take).
    let numbers: &[&str] = match table.name {
        "events" => &["value"],
        "commissions" | "payouts" => &["amount"],
        "attributions" => &["weight"],
        _ => &[],
    };
    for column in numbers {
        if let Some(v) = obj.get(*column).filter(|v| !v.is_null()) {
            match crate::money::parse_decimal(v, column) {
                Ok(d) if d.abs() <= crate::money::MAX_AMOUNT => {}
                Ok(_) => return Err(refuse(obj, format!("{column} is larger than 10^15"))),
                Err(e) => return Err(refuse(obj, e.detail)),
            }
        }
    }
    if matches!(table.name, "events" | "commissions" | "payouts") {
        if let Some(Value::String(c)) = obj.get("currency") {
            if let Err(e) = crate::money::Currency::parse(c) {
                return Err(refuse(obj, e.detail));
            }
        }
    }
    Ok(())
}

/// The multi-row insert of one table: the columns the bundle has (the others keep their
/// defaults), each parameter sent as text and cast to its column's type.
struct Statement {
    head: String,
    types: Vec<String>,
    tail: String,
    columns: Vec<String>,
}

impl Statement {
    async fn new(
        tx: &Transaction<'_>,
        schema: &Schema,
        table: &Table,
        rows: &[Value],
        warnings: &mut Vec<String>,
    ) -> Result<Statement, tokio_postgres::Error> {
        let known = columns(tx, schema, table.name).await?;
        let mut present: BTreeSet<&str> = BTreeSet::new();
        for r in rows {
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
        let used: Vec<&(String, String)> = known
            .iter()
            .filter(|(c, _)| present.contains(c.as_str()))
            .collect();
        let key: Vec<String> = table.key.iter().map(|k| ident(k)).collect();
        let returning = match Inserted::returns_id(table.name) {
            true => "id",
            false => "NULL::text",
        };
        Ok(Statement {
            head: format!(
                "INSERT INTO {} ({}) VALUES ",
                schema.table(table.name),
                used.iter()
                    .map(|(c, _)| ident(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            types: used.iter().map(|(_, t)| t.clone()).collect(),
            tail: format!(
                " ON CONFLICT ({}) DO NOTHING RETURNING {returning}",
                key.join(", ")
            ),
            columns: used.iter().map(|(c, _)| c.clone()).collect(),
        })
    }

    /// Rows per statement: at most 64, and never more parameters than the protocol takes.
    fn rows_per_statement(&self) -> usize {
        (60_000 / self.columns.len().max(1)).clamp(1, 64)
    }

    /// Inserts `rows`; what `RETURNING` gave for each row inserted (its id in the tables
    /// the rollups count, [`Inserted::returns_id`], else null).
    async fn run(
        &self,
        tx: &Transaction<'_>,
        rows: &[Value],
    ) -> Result<Vec<Option<String>>, tokio_postgres::Error> {
        let mut sql = self.head.clone();
        let mut params: Vec<Option<String>> = Vec::with_capacity(rows.len() * self.columns.len());
        for (r, row) in rows.iter().enumerate() {
            sql.push_str(if r == 0 { "(" } else { ", (" });
            for (c, (column, ty)) in self.columns.iter().zip(&self.types).enumerate() {
                params.push(param(row.get(column), ty));
                if c > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("${}::text::{ty}", params.len()));
            }
            sql.push(')');
        }
        sql.push_str(&self.tail);
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        Ok(tx
            .query(&sql, &refs)
            .await?
            .iter()
            .map(|r| r.get::<_, Option<String>>(0))
            .collect())
    }
}

/// A bundle value as the text of its column's type: JSON columns get JSON text, arrays a
/// PostgreSQL array literal, everything else its own text (what the type then checks).
fn param(v: Option<&Value>, ty: &str) -> Option<String> {
    let v = v?;
    if v.is_null() {
        return None;
    }
    if ty == "jsonb" || ty == "json" {
        return Some(v.to_string());
    }
    Some(match v {
        Value::String(s) => s.clone(),
        Value::Array(items) if ty.ends_with("[]") => {
            let cells: Vec<String> = items
                .iter()
                .map(|i| match i {
                    Value::Null => "NULL".to_string(),
                    Value::String(s) => quote_cell(s),
                    other => quote_cell(&other.to_string()),
                })
                .collect();
            format!("{{{}}}", cells.join(","))
        }
        other => other.to_string(),
    })
}

/// An array element, quoted for an array literal.
fn quote_cell(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
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

/// What one run inserted (the ids `ON CONFLICT … DO NOTHING RETURNING` gave back) of the
/// tables the rollups count.
#[derive(Default)]
struct Inserted {
    clicks: Vec<String>,
    identities: Vec<String>,
    events: Vec<String>,
    attributions: Vec<String>,
    commissions: Vec<String>,
}

impl Inserted {
    /// The tables whose new ids the rollups need; the others return no id.
    fn returns_id(table: &str) -> bool {
        Inserted::default().ids_of(table).is_some()
    }

    /// Where the new ids of `table` go, if the rollups count it.
    fn ids_of(&mut self, table: &str) -> Option<&mut Vec<String>> {
        match table {
            "clicks" => Some(&mut self.clicks),
            "identities" => Some(&mut self.identities),
            "events" => Some(&mut self.events),
            "attributions" => Some(&mut self.attributions),
            "commissions" => Some(&mut self.commissions),
            _ => None,
        }
    }

    fn add(&mut self, table: &str, ids: impl IntoIterator<Item = String>) {
        if let Some(to) = self.ids_of(table) {
            to.extend(ids);
        }
    }
}

/// What the imported rows change in the event, user and commission rollups, with the live
/// writers' credit rules ([`Deltas`]); written by the caller as the transaction's last
/// statements, adding upserts with sorted keys as every writer's, so the import never
/// deletes or rewrites a rollup row and commutes with live writers.
///
/// A commission counts its amount under its status on its accrual day. An event's figures
/// depend on all its live attributions together (the first of a partner's, a campaign's, the
/// tenant's touches takes the count) and on the sum of its refunds, and the import may add
/// either to an event already there (an attribution of it, a refund of it): each event the
/// import touches — a new event, an event of a new attribution, an event a new refund
/// refunds — is uncounted as it stood without the imported rows and counted again with them,
/// as rederive uncounts and counts. The events already there are locked first (`FOR UPDATE`,
/// id order: the lock refunds, rederive and identify's backlog take), so no live writer
/// changes one between this read and the import's commit.
async fn money_deltas(
    tx: &Transaction<'_>,
    schema: &Schema,
    new: &Inserted,
) -> Result<Deltas, tokio_postgres::Error> {
    let s = schema;
    let mut deltas = Deltas::default();
    let new_events: HashSet<&str> = new.events.iter().map(String::as_str).collect();
    let new_attributions: HashSet<&str> = new.attributions.iter().map(String::as_str).collect();
    // The events whose figures change.
    let mut touched: BTreeSet<String> = new.events.iter().cloned().collect();
    if !new.attributions.is_empty() {
        for r in tx
            .query(
                &format!("SELECT DISTINCT event_id FROM {s}.attributions WHERE id = ANY($1)"),
                &[&new.attributions],
            )
            .await?
        {
            touched.insert(r.get(0));
        }
    }
    if !new.events.is_empty() {
        let refunded: Vec<String> = tx
            .query(
                &format!(
                    "SELECT DISTINCT refund_of FROM {s}.events WHERE id = ANY($1) AND refund_of IS NOT NULL"
                ),
                &[&new.events],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if !refunded.is_empty() {
            for r in tx
                .query(
                    &format!("SELECT id FROM {s}.events WHERE event_id = ANY($1)"),
                    &[&refunded],
                )
                .await?
            {
                touched.insert(r.get(0));
            }
        }
    }
    let existing: Vec<&String> = touched
        .iter()
        .filter(|id| !new_events.contains(id.as_str()))
        .collect();
    if !existing.is_empty() {
        tx.query(
            &format!("SELECT id FROM {s}.events WHERE id = ANY($1) ORDER BY id FOR UPDATE"),
            &[&existing],
        )
        .await?;
    }
    if !touched.is_empty() {
        let ids: Vec<&String> = touched.iter().collect();
        let events = tx
            .query(
                &format!(
                    "SELECT id, event_id, type, value, currency, ts, user_id FROM {s}.events WHERE id = ANY($1)"
                ),
                &[&ids],
            )
            .await?;
        // event id → (touches without the imported attributions, with them)
        let mut touches: HashMap<String, (Vec<Touch>, Vec<Touch>)> = HashMap::new();
        for r in tx
            .query(
                &format!(
                    "SELECT a.event_id, a.id, a.partner_id, c.link_id, a.campaign_id, a.weight
                       FROM {s}.attributions a JOIN {s}.clicks c ON c.id = a.click_id
                      WHERE a.event_id = ANY($1) AND a.superseded_at IS NULL"
                ),
                &[&ids],
            )
            .await?
        {
            let touch = Touch {
                partner: r.get(2),
                link: r.get(3),
                campaign: r.get(4),
                weight: r.get(5),
            };
            let e = touches.entry(r.get(0)).or_default();
            if !new_attributions.contains(r.get::<_, &str>(1)) {
                e.0.push(touch.clone());
            }
            e.1.push(touch);
        }
        // client event id → (refunds without the imported ones, with them)
        let client_ids: Vec<&str> = events.iter().map(|r| r.get::<_, &str>(1)).collect();
        let mut refunds: HashMap<String, (Option<Decimal>, Option<Decimal>)> = HashMap::new();
        for r in tx
            .query(
                &format!(
                    "SELECT refund_of, id, value FROM {s}.events WHERE refund_of = ANY($1) AND value IS NOT NULL"
                ),
                &[&client_ids],
            )
            .await?
        {
            let value: Decimal = r.get(2);
            let e = refunds.entry(r.get(0)).or_default();
            if !new_events.contains(r.get::<_, &str>(1)) {
                e.0 = Some(e.0.unwrap_or_default() + value);
            }
            e.1 = Some(e.1.unwrap_or_default() + value);
        }
        let none = (Vec::new(), Vec::new());
        for r in &events {
            let id: &str = r.get(0);
            let client_id: &str = r.get(1);
            let counted = Counted {
                kind: r.get(2),
                value: r.get(3),
                currency: r.get(4),
                ts: r.get(5),
                user: r.get(6),
            };
            let (before, after) = touches.get(id).unwrap_or(&none);
            let (refunded_before, refunded_after) =
                refunds.get(client_id).copied().unwrap_or_default();
            deltas.event(&counted, before, refunded_before, -1);
            deltas.event(&counted, after, refunded_after, 1);
        }
    }
    if !new.commissions.is_empty() {
        for r in tx
            .query(
                &format!(
                    "SELECT partner_id, accrued_at, campaign_id, currency, status, amount
                       FROM {s}.commissions WHERE id = ANY($1)"
                ),
                &[&new.commissions],
            )
            .await?
        {
            deltas.commission(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5));
        }
    }
    Ok(deltas)
}

/// Counts the imported clicks and identities into the click rollups the way the live
/// writes do (reporting::rollups): a click adds to its (partner, UTC day, link) row as
/// unflagged or flagged, a new identity of an unflagged click adds an identity. Upserts
/// that add, in key order, so they commute with live click batches.
async fn count_rollups(
    tx: &Transaction<'_>,
    schema: &Schema,
    clicks: &[String],
    identities: &[String],
) -> Result<(), tokio_postgres::Error> {
    type Key = (String, chrono::NaiveDate, String);
    // key → (campaign, clicks, flagged clicks, identities)
    let mut add: BTreeMap<Key, (String, i64, i64, i64)> = BTreeMap::new();
    let s = schema;
    if !clicks.is_empty() {
        for r in tx
            .query(
                &format!(
                    "SELECT partner_id, (ts AT TIME ZONE 'UTC')::date, link_id, min(campaign_id),
                            count(*) FILTER (WHERE fraud_flag IS NULL),
                            count(*) FILTER (WHERE fraud_flag IS NOT NULL)
                       FROM {s}.clicks WHERE id = ANY($1) GROUP BY 1, 2, 3"
                ),
                &[&clicks],
            )
            .await?
        {
            let e = add
                .entry((r.get(0), r.get(1), r.get(2)))
                .or_insert_with(|| (r.get(3), 0, 0, 0));
            e.1 += r.get::<_, i64>(4);
            e.2 += r.get::<_, i64>(5);
        }
    }
    if !identities.is_empty() {
        for r in tx
            .query(
                &format!(
                    "SELECT c.partner_id, (c.ts AT TIME ZONE 'UTC')::date, c.link_id, min(c.campaign_id), count(*)
                       FROM {s}.identities i JOIN {s}.clicks c ON c.id = i.click_id
                      WHERE i.id = ANY($1) AND c.fraud_flag IS NULL GROUP BY 1, 2, 3"
                ),
                &[&identities],
            )
            .await?
        {
            let e = add
                .entry((r.get(0), r.get(1), r.get(2)))
                .or_insert_with(|| (r.get(3), 0, 0, 0));
            e.3 += r.get::<_, i64>(4);
        }
    }
    let all: Vec<_> = add.into_iter().collect();
    for chunk in all.chunks(64) {
        let mut sql = format!(
            "INSERT INTO {s}.click_rollups (partner_id, day, link_id, campaign_id, clicks, flagged_clicks, identities) VALUES "
        );
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::new();
        for (i, ((partner, day, link), (campaign, clicks, flagged, identities))) in
            chunk.iter().enumerate()
        {
            let n = i * 7;
            sql.push_str(&format!(
                "{}(${}::text, ${}::date, ${}::text, ${}::text, ${}::int8, ${}::int8, ${}::int8)",
                if i == 0 { "" } else { ", " },
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5,
                n + 6,
                n + 7
            ));
            params.extend([
                partner as &(dyn tokio_postgres::types::ToSql + Sync),
                day,
                link,
                campaign,
                clicks,
                flagged,
                identities,
            ]);
        }
        sql.push_str(
            " ON CONFLICT (partner_id, day, link_id) DO UPDATE
                SET clicks = click_rollups.clicks + excluded.clicks,
                    flagged_clicks = click_rollups.flagged_clicks + excluded.flagged_clicks,
                    identities = click_rollups.identities + excluded.identities",
        );
        tx.execute(&sql, &params).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_become_the_text_of_their_column_type() {
        assert_eq!(param(None, "text"), None);
        assert_eq!(param(Some(&Value::Null), "jsonb"), None);
        assert_eq!(param(Some(&json!("a b")), "text"), Some("a b".into()));
        assert_eq!(
            param(Some(&json!("12.50")), "numeric"),
            Some("12.50".into())
        );
        assert_eq!(param(Some(&json!(7)), "integer"), Some("7".into()));
        assert_eq!(param(Some(&json!(true)), "boolean"), Some("true".into()));
        assert_eq!(
            param(Some(&json!({"a": [1]})), "jsonb"),
            Some(r#"{"a":[1]}"#.into())
        );
        assert_eq!(param(Some(&json!("s")), "jsonb"), Some(r#""s""#.into()));
        assert_eq!(
            param(Some(&json!(["a", "b\"c", "d\\e", null])), "text[]"),
            Some(r#"{"a","b\"c","d\\e",NULL}"#.into())
        );
        assert_eq!(param(Some(&json!([])), "text[]"), Some("{}".into()));
    }
}
