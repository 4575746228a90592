//! Graceful drain (SIGTERM) and the worker registry heartbeat.
//!
//! On SIGTERM the worker reports itself draining — the `Health` RPC answers `draining`
//! (`ok: false`) and, when it registered (`OP_WORKER_ADVERTISE`), its registry row is flagged
//! and a `NOTIFY op_workers` wakes the gateways — so every gateway takes it out of rotation
//! within a second (they probe every 500 ms). It keeps serving what still reaches it for
//! [`NOTICE`], then stops accepting and finishes the requests in flight; the background jobs
//! stop taking work and finish what they hold (a webhook send in flight records its attempt,
//! which releases its lease; sweeps end their transaction, which releases their advisory
//! locks). Once the server and the jobs have ended, what the job queues still hold (woken by
//! the last requests, claimed but never started) is handed to the pending-work set, due now
//! (`jobs::hand_back`): another worker runs it within a second. Everything is bounded by
//! `OP_DRAIN_SECS` (jobs still running at the bound are stopped where they are; a pass cut
//! off keeps its claim until the lease ends); then the worker leaves the registry and exits 0.

use crate::App;
use std::{sync::Arc, time::Duration};
use tokio::sync::watch;

/// How long a draining worker keeps accepting calls, so that every gateway's probe has seen
/// `draining` before the listener closes (probes run every 500 ms).
pub const NOTICE: Duration = Duration::from_millis(1500);

/// The drain flag, watched by the health RPC, the registry heartbeat and the jobs.
pub struct Drain {
    tx: watch::Sender<bool>,
}

impl Default for Drain {
    fn default() -> Drain {
        Drain {
            tx: watch::channel(false).0,
        }
    }
}

impl Drain {
    pub fn start(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_draining(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once the drain started.
    pub async fn started(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|d| *d).await;
    }
}

/// Registers this worker at `url` and heartbeats until the process ends (draining flag
/// included). Registration failures are retried at the next heartbeat.
pub fn spawn_heartbeat(app: Arc<App>, url: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let id = app.config.worker_id.clone();
        let started = chrono::Utc::now();
        if let Err(e) = op_control::workers::register(&app.pool, &id, &url).await {
            tracing::warn!(error = %e, "worker registry: cannot register yet");
        } else {
            tracing::info!(url = %url, "registered in the worker registry");
        }
        loop {
            tokio::time::sleep(op_control::workers::HEARTBEAT).await;
            let draining = app.drain.is_draining();
            if let Err(e) =
                op_control::workers::heartbeat(&app.pool, &id, &url, started, draining).await
            {
                tracing::warn!(error = %e, "worker registry: heartbeat failed");
            }
        }
    })
}

/// The registry's side of the drain: flag this worker and wake the gateways.
pub async fn announce(app: &App) {
    if app.config.advertise.is_none() {
        return;
    }
    let flagged = tokio::time::timeout(
        Duration::from_secs(1),
        op_control::workers::set_draining(&app.pool, &app.config.worker_id),
    )
    .await;
    if !matches!(flagged, Ok(Ok(()))) {
        tracing::warn!("worker registry: could not flag this worker draining");
    }
}

/// Leaves the registry at the end of the drain.
pub async fn leave(app: &App) {
    if app.config.advertise.is_none() {
        return;
    }
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        op_control::workers::deregister(&app.pool, &app.config.worker_id),
    )
    .await;
}
