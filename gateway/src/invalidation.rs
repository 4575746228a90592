//! Keeps this gateway's caches honest when another process changes a tenant or a key:
//! `LISTEN op_cache` on a dedicated connection. If the connection drops, notifications may
//! have been missed, so every cache is cleared before listening again. A gateway following
//! the worker registry also listens on `op_workers` and re-reads the registry when told.

use crate::State;
use futures::{stream, StreamExt};
use op_control::{workers::WORKERS_CHANNEL, CACHE_CHANNEL};
use std::{sync::Arc, time::Duration};
use tokio_postgres::AsyncMessage;

pub fn spawn(state: Arc<State>) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = listen(&state).await {
                tracing::warn!(error = %e, "cache invalidation listener lost; clearing caches");
            }
            state.tenants.clear();
            state.keys.clear();
            state.session_rows.clear();
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
}

async fn listen(state: &State) -> anyhow::Result<()> {
    // The URL was parsed when the pool was built: it does not fail here.
    let (pg, tls) =
        op_control::pg_tls::config(&state.config.database_url).map_err(anyhow::Error::msg)?;
    let (client, mut connection) = pg.connect(tls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    // The connection object yields notifications only while it is polled.
    let driver = tokio::spawn(async move {
        let mut messages = stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(msg) = messages.next().await {
            if let AsyncMessage::Notification(n) = msg? {
                let _ = tx.send(format!("{}\n{}", n.channel(), n.payload()));
            }
        }
        Ok::<(), tokio_postgres::Error>(())
    });
    client
        .batch_execute(&format!("LISTEN {CACHE_CHANNEL}"))
        .await?;
    if state.workers.follows_registry() {
        client
            .batch_execute(&format!("LISTEN {WORKERS_CHANNEL}"))
            .await?;
        // A change may have been missed while the connection was down.
        state.workers.wake();
    }
    // Anything cached before LISTEN took effect may be stale.
    state.tenants.clear();
    state.keys.clear();
    state.session_rows.clear();
    while let Some(message) = rx.recv().await {
        match message.split_once('\n') {
            Some((WORKERS_CHANNEL, _)) => state.workers.wake(),
            Some((_, payload)) => apply(state, payload),
            None => {}
        }
    }
    drop(client);
    Ok(driver.await.unwrap_or(Ok(()))?)
}

fn apply(state: &State, payload: &str) {
    match payload.split_once(':') {
        Some(("tenant", slug)) => state.tenants.invalidate(slug),
        Some(("key", id)) => state.keys.invalidate(id),
        Some(("session", id)) => state.session_rows.invalidate(id),
        _ => tracing::debug!(payload, "unknown cache notification"),
    }
}
