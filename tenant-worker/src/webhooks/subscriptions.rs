//! Whether anyone listens: lets the hot event path skip outbox rows no endpoint would
//! receive, without ever losing one that an endpoint should.
//!
//! The rule kept: an endpoint receives every event committed after the endpoint (or the
//! change that subscribed it) committed. A writer that skips rows knows from a cache that
//! no active endpoint subscribes to its event types — and proves it in its own
//! transaction: it takes the tenant's subscription lock shared and asserts, in SQL, that
//! still no active endpoint subscribes ([`fence`]); if one does, the assertion fails the
//! transaction and the writer writes again with the rows. A change that can subscribe an
//! endpoint takes the same lock exclusively first ([`lock_for_change`]): it waits for the
//! skipping writers in flight, and every writer after it sees the endpoint. The cache only
//! decides when to try; it is never trusted.
//!
//! The lock is an advisory lock, taken in a statement of its own (CITUS rule 11: on Citus
//! it is taken on the coordinator, by both sides alike).

use crate::error::ApiError;
use crate::sql::{Schema, Tx};
use sha2::{Digest, Sha256};
use std::{
    collections::HashMap,
    sync::{LazyLock, Mutex},
    time::{Duration, Instant},
};
use tokio_postgres::types::ToSql;

/// How long a "nobody listens" answer is reused before it is read again.
const TTL: Duration = Duration::from_secs(5);

/// Per tenant schema: whether an active endpoint subscribed to the event lane's types, and
/// when that was read. One per process: the event lane's writers have no `App`.
static CACHE: LazyLock<Mutex<HashMap<Schema, (bool, Instant)>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The advisory lock key of `schema`'s subscriptions (from the quoted name, as ever).
pub fn lock_key(schema: &Schema) -> i64 {
    let d = Sha256::digest(format!("webhook-subscriptions:{schema}").as_bytes());
    i64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// Takes the subscription lock exclusively, in `tx`: before a change that can subscribe an
/// endpoint (create, update).
pub async fn lock_for_change(tx: &Tx, schema: &Schema) -> Result<(), ApiError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key(schema)])
        .await?;
    Ok(())
}

/// SQL: whether an active endpoint of `schema` subscribes to any of `$1` (which lists `*`
/// too, the subscription to everything).
fn exists_sql(schema: &Schema) -> String {
    format!(
        "EXISTS (SELECT 1 FROM {schema}.webhook_endpoints WHERE active AND events && $1::text[])"
    )
}

/// Whether an active endpoint of `schema` may want events of `types` (cached for [`TTL`]).
pub async fn anyone_listens(
    client: &impl deadpool_postgres::GenericClient,
    schema: &Schema,
    types: &[&str],
) -> Result<bool, ApiError> {
    if let Some((listens, at)) = CACHE.lock().unwrap_or_else(|e| e.into_inner()).get(schema) {
        if at.elapsed() < TTL {
            return Ok(*listens);
        }
    }
    let sql = format!("SELECT {}", exists_sql(schema));
    let stmt = client.prepare_cached(&sql).await?;
    let listens: bool = client.query_one(&stmt, &[&types]).await?.get(0);
    remember(schema, listens);
    Ok(listens)
}

/// A writer learned that someone listens (its [`fence`] failed).
pub fn remember(schema: &Schema, listens: bool) {
    CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(schema.clone(), (listens, Instant::now()));
}

/// The two statements a writer that skips the outbox rows of `types` puts at the start of
/// its transaction: the shared lock, then an assertion that fails with `22012`
/// ([`is_fence_error`]) if an active endpoint subscribes now.
/// `key` is [`lock_key`] of `schema`, `types` a `text[]` of the event types and `*`.
pub fn fence<'a>(
    schema: &Schema,
    key: &'a i64,
    types: &'a (dyn ToSql + Sync),
) -> [(String, Vec<&'a (dyn ToSql + Sync)>); 2] {
    [
        (
            "SELECT pg_advisory_xact_lock_shared($1)".to_string(),
            vec![key as &(dyn ToSql + Sync)],
        ),
        (
            format!("SELECT 1 / (NOT {})::int", exists_sql(schema)),
            vec![types],
        ),
    ]
}

/// Whether `e` is a failed [`fence`] assertion.
pub fn is_fence_error(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::DIVISION_BY_ZERO)
}
