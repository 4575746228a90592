//! Connection pools. Every binary builds its pool here so sizing and timeouts are uniform.

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use std::time::Duration;

/// Most prepared statements one pooled connection keeps. Statements qualified with a
/// tenant's schema are one per tenant and shape, so across thousands of tenants the cache
/// (and the server backend's memory) would grow without end; past this many, it starts
/// over (dropping a statement closes it on the server).
const STATEMENTS_PER_CONNECTION: usize = 512;

/// `sql`, prepared once per connection: later uses skip the parse and plan, and a statement
/// already prepared costs no round trip of its own.
pub async fn prepare(
    conn: &Object,
    sql: &str,
) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
    if conn.statement_cache.size() >= STATEMENTS_PER_CONNECTION {
        conn.statement_cache.clear();
    }
    conn.prepare_cached(sql).await
}

/// Builds a pool for `database_url` (`postgres://user@host:port/db`, TLS as its `sslmode`
/// and `sslrootcert` say: [`crate::pg_tls`]).
pub fn pool(database_url: &str, max_size: usize) -> Result<Pool, String> {
    let (mut pg, tls) = crate::pg_tls::config(database_url)?;
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(Duration::from_secs(5));
    }
    pg.application_name("openpartner");
    // Our statements are prepared once per connection and are key lookups: a generic plan
    // is as good as a custom one, and re-planning on every execution was the largest CPU
    // cost of the hot paths (clicks, events) in profiles.
    pg.options("-c plan_cache_mode=force_generic_plan");
    let manager = Manager::from_config(
        pg,
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max_size)
        // The most recently used connection first: under light load a few warm backends
        // serve everything (their caches hot, fewer process switches) instead of every
        // request waking the least recently used one.
        .queue_mode(deadpool_postgres::QueueMode::Lifo)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|e| format!("cannot build database pool: {e}"))
}

/// An error with its causes, `outer: cause: …`. tokio-postgres says only "db error" or
/// "error performing TLS handshake" and keeps the reason (PostgreSQL's own message, the TLS
/// alert) in its source, which a plain `to_string()` drops.
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.ends_with(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    text
}

/// One client outside the pool (the CLI, the gateway's `LISTEN` connection is built the same
/// way), its connection driven by a task of its own.
pub async fn connect(database_url: &str) -> Result<tokio_postgres::Client, String> {
    let (mut pg, tls) = crate::pg_tls::config(database_url)?;
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(Duration::from_secs(5));
    }
    let (client, conn) = pg.connect(tls).await.map_err(|e| describe(&e))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::warn!(error = %e, "database connection closed");
        }
    });
    Ok(client)
}
