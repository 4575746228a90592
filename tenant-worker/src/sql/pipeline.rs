//! Several statements in one round trip: `BEGIN`, the statements and `COMMIT` leave
//! together and each answer is read back in order. This is how the hot paths save round
//! trips instead of writable CTEs or `INSERT … SELECT`, which Citus cannot plan here
//! (CITUS rule 13).

use crate::error::ApiError;
use deadpool_postgres::Object;
use tokio_postgres::{types::ToSql, Row};

/// One statement of a pipeline: SQL and its parameters.
pub type Statement<'a> = (String, Vec<&'a (dyn ToSql + Sync)>);

/// What came back from a [`send`]: each message's own result.
pub struct Pipelined {
    pub began: Result<(), tokio_postgres::Error>,
    pub results: Vec<Result<Vec<Row>, tokio_postgres::Error>>,
    pub committed: Result<(), tokio_postgres::Error>,
}

impl Pipelined {
    /// Every statement's rows, or the first error.
    pub fn into_rows(self) -> Result<Vec<Vec<Row>>, ApiError> {
        self.began?;
        let mut out = Vec::with_capacity(self.results.len());
        for r in self.results {
            out.push(r?);
        }
        self.committed?;
        Ok(out)
    }
}

/// Sends (optionally) `BEGIN`, every statement and (optionally) `COMMIT` on `conn` in one
/// round trip. Statements are prepared once per connection and shape. If a statement fails,
/// the ones after it fail too (the transaction is aborted) and a pipelined `COMMIT` rolls
/// back; the caller must end a transaction it left open ([`rollback`]).
pub async fn send(
    conn: &Object,
    stmts: &[Statement<'_>],
    begin: bool,
    commit: bool,
) -> Result<Pipelined, ApiError> {
    let mut prepared = Vec::with_capacity(stmts.len());
    for (sql, _) in stmts {
        prepared.push(super::prepare(conn, sql).await?);
    }
    // A parameter the client cannot encode fails its statement before it is sent, while
    // the pipelined BEGIN and COMMIT still go: the others would commit without it. So
    // every parameter is encoded once here, and nothing is sent if one cannot be.
    let mut scratch = bytes::BytesMut::new();
    for (stmt, (_, params)) in prepared.iter().zip(stmts) {
        if stmt.params().len() != params.len() {
            tracing::error!(
                want = stmt.params().len(),
                got = params.len(),
                "a pipelined statement with the wrong number of parameters"
            );
            return Err(ApiError::internal());
        }
        for (ty, p) in stmt.params().iter().zip(params) {
            scratch.clear();
            if let Err(e) = p.to_sql_checked(ty, &mut scratch) {
                tracing::error!(error = %e, %ty, "a pipelined parameter cannot be encoded");
                return Err(ApiError::internal());
            }
        }
    }
    // Each future queues its message on its first poll and `join!` polls in order, so the
    // messages leave in this order, together.
    let (began, results, committed) = futures::join!(
        async {
            match begin {
                true => conn.batch_execute("BEGIN").await,
                false => Ok(()),
            }
        },
        futures::future::join_all(
            prepared
                .iter()
                .zip(stmts)
                .map(|(s, (_, p))| conn.query(s, p))
        ),
        async {
            match commit {
                true => conn.batch_execute("COMMIT").await,
                false => Ok(()),
            }
        },
    );
    Ok(Pipelined {
        began,
        results,
        committed,
    })
}

/// [`send`], then every statement's rows or the first error.
pub async fn pipeline(
    conn: &Object,
    stmts: &[Statement<'_>],
    begin: bool,
    commit: bool,
) -> Result<Vec<Vec<Row>>, ApiError> {
    send(conn, stmts, begin, commit).await?.into_rows()
}

/// Ends whatever transaction a failed [`pipeline`] left open, so the connection goes back
/// to the pool clean. (`ROLLBACK` outside a transaction is only a warning.)
pub async fn rollback(conn: &Object) {
    if let Err(e) = conn.batch_execute("ROLLBACK").await {
        tracing::warn!(error = %e, "rollback after a failed batch");
    }
}
