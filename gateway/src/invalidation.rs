//! Keeps this gateway's caches honest when another process changes a tenant or a key:
//! `LISTEN op_cache` on a dedicated connection. If the connection drops, notifications may
//! have been missed, so every cache is cleared before listening again.

use crate::State;
use futures::{stream, StreamExt};
use op_control::CACHE_CHANNEL;
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
                let _ = tx.send(n.payload().to_string());
            }
        }
        Ok::<(), tokio_postgres::Error>(())
    });
    client
        .batch_execute(&format!("LISTEN {CACHE_CHANNEL}"))
        .await?;
    // Anything cached before LISTEN took effect may be stale.
    state.tenants.clear();
    state.keys.clear();
    state.session_rows.clear();
    while let Some(payload) = rx.recv().await {
        apply(state, &payload);
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
