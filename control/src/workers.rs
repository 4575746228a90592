//! The worker registry (`control.workers`): workers started with `OP_WORKER_ADVERTISE`
//! register, heartbeat every [`HEARTBEAT`] and say when they drain; gateways with
//! `OP_WORKERS=registry` read the [`live`] ones and are woken by a `NOTIFY` on
//! [`WORKERS_CHANNEL`]. A worker silent for [`SILENT_AFTER`] heartbeats is out of the set
//! (and its row is deleted by the next heartbeat of any worker).
//!
//! Times are computed here and bound (never `now()` in the statements), so the SQL stays
//! portable to Citus.

use chrono::{DateTime, Utc};
use std::time::Duration;

/// `LISTEN`/`NOTIFY` channel announcing a change of the registry (payload: the worker id).
pub const WORKERS_CHANNEL: &str = "op_workers";

/// How often a registered worker heartbeats.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// Heartbeats a worker may miss before it leaves the set.
pub const SILENT_AFTER: u32 = 3;

/// A live registry row.
#[derive(Clone, Debug)]
pub struct Registered {
    pub id: String,
    pub url: String,
    pub started_at: DateTime<Utc>,
    pub last_heartbeat_at: DateTime<Utc>,
    pub draining: bool,
}

/// Whether `url` is a worker address a gateway can dial: plain gRPC over TCP
/// (`http://host:port`) or a Unix socket (`unix:/path`). The hop is plain on purpose
/// (operate.md: a private network or a socket, the worker token authenticates the gateway),
/// so `https://` is refused where it is given — `OP_WORKERS` and `OP_WORKER_ADVERTISE` alike —
/// rather than failing every request later. `Err` says what is wrong, for the setting named.
pub fn check_url(url: &str) -> Result<(), String> {
    let usable = match url.split_once(':') {
        Some(("http", rest)) => rest.strip_prefix("//").is_some_and(|h| !h.is_empty()),
        Some(("unix", path)) => path.starts_with('/') && path.len() > 1,
        _ => false,
    };
    match usable {
        true => Ok(()),
        false => Err(format!(
            "`{url}` is not a worker address: use http://<host>:<port> or unix:/<path>"
        )),
    }
}

fn oldest_live() -> DateTime<Utc> {
    Utc::now() - chrono::Duration::from_std(HEARTBEAT * SILENT_AFTER).expect("small")
}

/// The workers whose last heartbeat is younger than [`SILENT_AFTER`] heartbeats.
pub async fn live(db: &deadpool_postgres::Pool) -> Result<Vec<Registered>, crate::ControlError> {
    let conn = db.get().await?;
    let rows = conn
        .query(
            "SELECT id, url, started_at, last_heartbeat_at, draining FROM control.workers
              WHERE last_heartbeat_at > $1 ORDER BY id",
            &[&oldest_live()],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Registered {
            id: r.get(0),
            url: r.get(1),
            started_at: r.get(2),
            last_heartbeat_at: r.get(3),
            draining: r.get(4),
        })
        .collect())
}

/// Registers (or takes over) `id` at `url`, started now, and announces it.
pub async fn register(
    db: &deadpool_postgres::Pool,
    id: &str,
    url: &str,
) -> Result<(), crate::ControlError> {
    let now = Utc::now();
    let conn = db.get().await?;
    conn.execute(
        "INSERT INTO control.workers (id, url, started_at, last_heartbeat_at, draining)
         VALUES ($1, $2, $3, $3, false)
         ON CONFLICT (id) DO UPDATE SET url = EXCLUDED.url, started_at = EXCLUDED.started_at,
             last_heartbeat_at = EXCLUDED.last_heartbeat_at, draining = false",
        &[&id, &url, &now],
    )
    .await?;
    notify(&conn, id).await
}

/// One heartbeat of `id` (re-inserting its row if it was dropped while it was silent), and
/// the rows of silent workers deleted.
pub async fn heartbeat(
    db: &deadpool_postgres::Pool,
    id: &str,
    url: &str,
    started_at: DateTime<Utc>,
    draining: bool,
) -> Result<(), crate::ControlError> {
    let now = Utc::now();
    let conn = db.get().await?;
    let n = conn
        .execute(
            "UPDATE control.workers SET last_heartbeat_at = $2, draining = $3 WHERE id = $1",
            &[&id, &now, &draining],
        )
        .await?;
    if n == 0 {
        conn.execute(
            "INSERT INTO control.workers (id, url, started_at, last_heartbeat_at, draining)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
            &[&id, &url, &started_at, &now, &draining],
        )
        .await?;
        notify(&conn, id).await?;
    }
    let dropped = conn
        .execute(
            "DELETE FROM control.workers WHERE last_heartbeat_at <= $1",
            &[&oldest_live()],
        )
        .await?;
    if dropped > 0 {
        notify(&conn, "silent").await?;
    }
    Ok(())
}

/// Flags `id` draining and announces it: gateways take it out of rotation at once.
pub async fn set_draining(
    db: &deadpool_postgres::Pool,
    id: &str,
) -> Result<(), crate::ControlError> {
    let conn = db.get().await?;
    conn.execute(
        "UPDATE control.workers SET draining = true WHERE id = $1",
        &[&id],
    )
    .await?;
    notify(&conn, id).await
}

/// Removes `id` (a worker that finished draining) and announces it.
pub async fn deregister(db: &deadpool_postgres::Pool, id: &str) -> Result<(), crate::ControlError> {
    let conn = db.get().await?;
    conn.execute("DELETE FROM control.workers WHERE id = $1", &[&id])
        .await?;
    notify(&conn, id).await
}

async fn notify(conn: &deadpool_postgres::Object, id: &str) -> Result<(), crate::ControlError> {
    conn.execute("SELECT pg_notify($1, $2)", &[&WORKERS_CHANNEL, &id])
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn worker_urls_are_plain_grpc_or_a_socket() {
        for ok in [
            "http://10.0.0.1:7001",
            "http://worker-a:7001",
            "unix:/run/op/w.sock",
        ] {
            assert_eq!(check_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "https://w:7001",
            "http://",
            "unix:",
            "unix:rel.sock",
            "w:7001",
            "grpc://w:1",
            "",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
