//! Writes that commit together, built as statements ([`Stmt`]) and handed to a [`Writer`]:
//! a [`Tx`] runs each at once (when a later statement depends on an earlier one's answer),
//! a [`Writes`] collects them and sends `BEGIN`, every statement and `COMMIT` in one round
//! trip (when nothing depends on an answer, e.g. `POST /partners`: the partner, its
//! `partner.created` event, the invite token and mail). The domain modules that add rows
//! to a change (`outbox`, `mail`, `sessions`) write through a `Writer`, so each statement
//! has one definition whichever way it travels.
//!
//! Statements name their tables with the writer's [`Schema`], so they mean the same inside
//! a `Tx` (whose search_path is that schema) and in a pipeline (which sets none).

use super::{pipeline, rollback, rows::Value, Schema, Tx};
use crate::error::ApiError;
use deadpool_postgres::Pool;
use std::{future::Future, sync::Mutex};
use tokio_postgres::{types::ToSql, Row};

/// One statement and its parameters.
pub struct Stmt {
    pub sql: String,
    pub params: Vec<Value>,
}

impl Stmt {
    pub fn new(sql: String, params: Vec<Value>) -> Stmt {
        Stmt { sql, params }
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// Where the statements of one change go.
pub trait Writer: Sync {
    /// The tenant schema the statements name.
    fn schema(&self) -> &Schema;

    fn write(&self, stmt: Stmt) -> impl Future<Output = Result<(), ApiError>> + Send;
}

impl Writer for Tx {
    fn schema(&self) -> &Schema {
        Tx::schema(self)
    }

    async fn write(&self, stmt: Stmt) -> Result<(), ApiError> {
        self.execute(&stmt.sql, &stmt.refs()).await?;
        Ok(())
    }
}

/// Statements collected for one transaction sent in one round trip ([`Writes::commit`]).
pub struct Writes {
    schema: Schema,
    stmts: Mutex<Vec<Stmt>>,
}

/// A [`Writes`] that did not commit: which statement failed, and why. Nothing of it was
/// committed.
pub struct Failed {
    pub index: usize,
    pub error: tokio_postgres::Error,
}

impl Writes {
    pub fn new(schema: &Schema) -> Writes {
        Writes {
            schema: schema.clone(),
            stmts: Mutex::new(Vec::new()),
        }
    }

    /// Adds a statement; returns its index (for [`Writes::commit`]'s rows and errors).
    pub fn push(&self, stmt: Stmt) -> usize {
        let mut stmts = self.stmts.lock().unwrap_or_else(|e| e.into_inner());
        stmts.push(stmt);
        stmts.len() - 1
    }

    /// Sends `BEGIN`, the statements and `COMMIT` in one round trip: committed, with every
    /// statement's rows in order, or nothing of it.
    pub async fn commit(self, pool: &Pool) -> Result<Vec<Vec<Row>>, ApiError> {
        self.try_commit(pool)
            .await
            .map_err(|e| e.map_or_else(|e| e, |failed| failed.error.into()))
    }

    /// [`Writes::commit`], telling a failed statement apart: `Err(Ok(failed))` a statement
    /// failed and the transaction rolled back; `Err(Err(e))` the connection or pool failed.
    pub async fn try_commit(self, pool: &Pool) -> Result<Vec<Vec<Row>>, Result<Failed, ApiError>> {
        let stmts = self.stmts.into_inner().unwrap_or_else(|e| e.into_inner());
        let conn = pool.get().await.map_err(|e| Err(e.into()))?;
        let list: Vec<(String, Vec<&(dyn ToSql + Sync)>)> =
            stmts.iter().map(|s| (s.sql.clone(), s.refs())).collect();
        let sent = pipeline::send(&conn, &list, true, true)
            .await
            .map_err(Err)?;
        if let Err(e) = sent.began {
            rollback(&conn).await;
            return Err(Err(e.into()));
        }
        let mut out = Vec::with_capacity(sent.results.len());
        for (index, r) in sent.results.into_iter().enumerate() {
            match r {
                Ok(rows) => out.push(rows),
                // The pipelined COMMIT of an aborted transaction rolled it back.
                Err(error) => return Err(Ok(Failed { index, error })),
            }
        }
        sent.committed.map_err(|e| Err(e.into()))?;
        Ok(out)
    }
}

impl Writer for Writes {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    async fn write(&self, stmt: Stmt) -> Result<(), ApiError> {
        self.push(stmt);
        Ok(())
    }
}
