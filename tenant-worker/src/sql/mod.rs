//! Everything that talks to PostgreSQL in the same way for every domain module: the
//! tenant transaction ([`Tx`]), single-statement reads in one round trip ([`read`]),
//! changes sent whole in one round trip ([`Writes`]), pipelines of statements
//! ([`pipeline`]), multi-row inserts ([`Rows`]) and parameters that are already encoded
//! ([`JsonText`]). Domain modules own their statements; this module owns how they travel.
//!
//! Tenant isolation: a statement reaches a tenant's tables either inside a [`Tx`] (whose
//! `search_path` is that tenant's schema only) or through a table name qualified with the
//! tenant's [`Schema`] — and a `Schema` can only be built from a tenant id.

mod pipeline;
pub(crate) mod rows;
mod writes;

pub use op_control::schema::Schema;
pub use pipeline::{pipeline, rollback, send, Statement};
pub use rows::{val, JsonText, Rows};
pub use writes::{Stmt, Writer, Writes};

use crate::error::ApiError;
use crate::reporting::deltas::Deltas;
use deadpool_postgres::{Object, Pool};
use std::ops::Deref;
use tokio_postgres::{types::ToSql, Row};

pub use op_control::db::prepare;

/// One read-only statement, in one round trip: prepared, no transaction around it. Its
/// tables must be qualified with the tenant's [`Schema`] (there is no `search_path` here,
/// so an unqualified tenant table is an error, never another tenant's rows).
pub async fn read(
    pool: &Pool,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, ApiError> {
    let conn = pool.get().await?;
    let stmt = prepare(&conn, sql).await?;
    Ok(conn.query(&stmt, params).await?)
}

/// A transaction in one tenant's schema that owns its pooled connection.
///
/// Opened with `BEGIN; SET LOCAL search_path TO <schema>` in one round trip; `SET LOCAL`
/// dies with the transaction, so a pooled connection never carries one tenant's
/// search_path into another tenant's request. Its `query`/`execute` methods prepare each
/// statement once per connection; anything else of the pooled connection is reached through
/// `Deref`. Dropped without [`Tx::commit`] — an error returned with `?`, a deadline, a
/// panic — it rolls back before the connection goes back to the pool.
pub struct Tx {
    conn: Option<Object>,
    schema: Schema,
    open: bool,
    /// The reporting rollups' changes, gathered in memory and written by [`Tx::commit`] as
    /// the transaction's last statements ([`Tx::rollups`]).
    rollups: std::sync::Mutex<Deltas>,
}

impl Tx {
    /// Opens a transaction whose unqualified table names resolve to `schema` only.
    pub async fn begin(pool: &Pool, schema: &Schema) -> Result<Tx, ApiError> {
        let conn = pool.get().await?;
        let tx = Tx {
            conn: Some(conn),
            schema: schema.clone(),
            open: true,
            rollups: Default::default(),
        };
        // Two queries pipelined (one round trip), not one string "BEGIN; SET LOCAL …": a
        // multi-statement query opens an implicit transaction block first, and Citus then
        // sends its nodes a second BEGIN (each answers "WARNING: there is already a
        // transaction in progress").
        let search_path = format!("SET LOCAL search_path TO {schema}");
        let (began, set) =
            futures::future::join(tx.batch_execute("BEGIN"), tx.batch_execute(&search_path)).await;
        began?;
        set?;
        Ok(tx)
    }

    // Statements on a `Tx` are prepared once per connection (their text names no schema, so
    // one statement serves every tenant; PostgreSQL plans it again when the search_path
    // differs from the one it was planned under). Hence no `SELECT *` / `RETURNING *`: two
    // tenants at different migration versions would give one statement two result types.

    pub async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let stmt = prepare(self, sql).await?;
        self.client().query(&stmt, params).await
    }

    pub async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        let stmt = prepare(self, sql).await?;
        self.client().query_opt(&stmt, params).await
    }

    pub async fn query_one(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, tokio_postgres::Error> {
        let stmt = prepare(self, sql).await?;
        self.client().query_one(&stmt, params).await
    }

    pub async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, tokio_postgres::Error> {
        let stmt = prepare(self, sql).await?;
        self.client().execute(&stmt, params).await
    }

    /// The tenant schema this transaction is in.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The plain client, for functions written against `tokio_postgres::GenericClient`.
    pub fn client(&self) -> &tokio_postgres::Client {
        self
    }

    /// The row that `sql` (whose one parameter, `$1`, is `id`) finds, or `404 no <what>
    /// with id <id>` — the opening of most handlers that read or change one resource
    /// (`SELECT … WHERE id = $1 FOR UPDATE`).
    pub async fn one_or_404(&self, what: &str, id: &str, sql: &str) -> Result<Row, ApiError> {
        self.query_opt(sql, &[&id])
            .await?
            .ok_or_else(|| ApiError::no_such(what, id))
    }

    /// Adds to the rollup changes of this transaction, summed per key however many
    /// statements add to them and written when it commits: its last statements, in one
    /// table order with sorted keys ([`Deltas::rows`]), so writers that all write them last
    /// never deadlock on them.
    pub fn rollups(&self, f: impl FnOnce(&mut Deltas)) {
        f(&mut self.rollups.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Writes the rollup changes ([`Tx::rollups`]), then commits.
    pub async fn commit(mut self) -> Result<(), ApiError> {
        let rollups = std::mem::take(&mut *self.rollups.lock().unwrap_or_else(|e| e.into_inner()));
        for rows in rollups.rows(&self.schema) {
            for (sql, params) in rows.statements() {
                self.execute(&sql, &params).await?;
            }
        }
        let result = self.batch_execute("COMMIT").await;
        // A failed COMMIT has ended the transaction all the same (PostgreSQL rolled it back).
        self.open = false;
        Ok(result?)
    }
}

/// To the pooled connection: the statement cache, and `deadpool_postgres::GenericClient`
/// for functions that run either inside a `Tx` or on a bare connection (`&*tx`).
impl Deref for Tx {
    type Target = Object;

    fn deref(&self) -> &Object {
        self.conn
            .as_ref()
            .expect("the connection is held until drop")
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if !self.open {
            return;
        }
        // Dropping cannot wait: a task rolls back, then returns the connection to the pool.
        // Without a runtime (never in the worker) the connection is discarded instead.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    if let Err(e) = conn.batch_execute("ROLLBACK").await {
                        tracing::warn!(error = %e, "rollback of an abandoned transaction");
                    }
                });
            }
            Err(_) => drop(Object::take(conn)),
        }
    }
}
