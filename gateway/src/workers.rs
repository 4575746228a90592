//! The worker pool: one gRPC channel per worker, health tracking, rendezvous hashing of the
//! tenant id for cache locality, and failover to the next worker when one is down.
//!
//! Failover never duplicates an effect: a request is re-sent to another worker only if it
//! provably never reached the first (connection refused / not established), or if it is a
//! read (GET/HEAD). A write in flight on a worker that dies gets a 502 and must be retried
//! by the client (with an Idempotency-Key, safely).

use op_proto::v1::{tenant_worker_client::TenantWorkerClient, Envelope, HealthRequest, Reply};
use sha2::{Digest, Sha256};
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::{Channel, Endpoint};

pub struct Worker {
    pub url: String,
    client: TenantWorkerClient<Channel>,
    healthy: AtomicBool,
}

impl Worker {
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    fn set_healthy(&self, up: bool) {
        if self.healthy.swap(up, Ordering::Relaxed) != up {
            if up {
                tracing::info!(worker = %self.url, "worker is up");
            } else {
                tracing::warn!(worker = %self.url, "worker is down");
            }
        }
    }
}

pub struct WorkerPool {
    workers: Vec<Arc<Worker>>,
    /// `OP_WORKER_TOKEN`, sent in the metadata of every call (see `op_control::worker_token`).
    token: Option<AsciiMetadataValue>,
}

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("no worker reachable")]
    NoWorker,
    #[error("worker failed: {0}")]
    Failed(tonic::Status),
    #[error("worker timed out")]
    Timeout,
    /// The worker refused this gateway's `OP_WORKER_TOKEN` (or its absence): the request
    /// never ran.
    #[error("worker refused the gateway's token")]
    Refused,
}

impl WorkerPool {
    pub fn new(urls: &[String], token: Option<&str>) -> Result<WorkerPool, String> {
        let token = token
            .map(|t| {
                AsciiMetadataValue::try_from(t)
                    .map_err(|_| "OP_WORKER_TOKEN must be printable ASCII".to_string())
            })
            .transpose()?;
        let mut workers = Vec::new();
        for url in urls {
            let endpoint = Endpoint::from_shared(url.clone())
                .map_err(|e| format!("worker URL `{url}`: {e}"))?
                .connect_timeout(Duration::from_millis(500))
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(10))
                .keep_alive_timeout(Duration::from_secs(5));
            let client = TenantWorkerClient::new(endpoint.connect_lazy())
                .max_decoding_message_size(512 * 1024 * 1024)
                .max_encoding_message_size(512 * 1024 * 1024);
            workers.push(Arc::new(Worker {
                url: url.clone(),
                client,
                // Optimistic until the first probe: the first request may be the probe.
                healthy: AtomicBool::new(true),
            }));
        }
        Ok(WorkerPool { workers, token })
    }

    /// A request carrying this gateway's token, if it has one.
    fn request<T>(&self, message: T, timeout: Duration) -> tonic::Request<T> {
        let mut req = tonic::Request::new(message);
        req.set_timeout(timeout);
        if let Some(t) = &self.token {
            req.metadata_mut()
                .insert(op_control::worker_token::METADATA, t.clone());
        }
        req
    }

    pub fn healthy_count(&self) -> usize {
        self.workers.iter().filter(|w| w.is_healthy()).count()
    }

    /// Workers in the order to try for `affinity` (the tenant id): rendezvous (highest
    /// random weight) hashing, healthy ones first. Adding or losing a worker moves only the
    /// tenants that hashed to it.
    pub fn order(&self, affinity: &str) -> Vec<Arc<Worker>> {
        let mut ranked: Vec<(bool, u64, Arc<Worker>)> = self
            .workers
            .iter()
            .map(|w| {
                (
                    w.is_healthy(),
                    rendezvous_score(affinity, &w.url),
                    w.clone(),
                )
            })
            .collect();
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
        ranked.into_iter().map(|(_, _, w)| w).collect()
    }

    /// Sends `env` to the first worker that takes it.
    pub async fn forward(
        &self,
        affinity: &str,
        env: Envelope,
        timeout: Duration,
    ) -> Result<Reply, ForwardError> {
        let replayable = matches!(env.method.as_str(), "GET" | "HEAD");
        let mut last = ForwardError::NoWorker;
        for worker in self.order(affinity) {
            let req = self.request(env.clone(), timeout);
            match worker.client.clone().handle(req).await {
                Ok(reply) => return Ok(reply.into_inner()),
                Err(status) => {
                    if status.code() == tonic::Code::DeadlineExceeded {
                        return Err(ForwardError::Timeout);
                    }
                    if status.code() == tonic::Code::Unauthenticated {
                        tracing::error!(worker = %worker.url, "the worker refused this gateway's OP_WORKER_TOKEN");
                        last = ForwardError::Refused;
                        continue;
                    }
                    // `Handle` never answers with a gRPC error of its own (application
                    // errors are HTTP statuses in the Reply), so any error here is the
                    // transport: the worker is gone or going.
                    let never_sent = is_connect_error(&status);
                    if never_sent || is_transport_error(&status) {
                        worker.set_healthy(false);
                    }
                    if never_sent || replayable {
                        tracing::warn!(worker = %worker.url, error = %status.message(), "failing over to the next worker");
                        last = ForwardError::Failed(status);
                        continue;
                    }
                    return Err(ForwardError::Failed(status));
                }
            }
        }
        Err(last)
    }

    /// Probes every worker once a second; a failed probe takes the worker out of rotation,
    /// a good one brings it back.
    pub fn spawn_health_checks(self: &Arc<Self>) {
        let pool = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                for w in &pool.workers {
                    let req = pool.request(HealthRequest {}, Duration::from_secs(1));
                    let up = match w.client.clone().health(req).await {
                        Ok(r) => r.get_ref().ok,
                        Err(status) => {
                            if status.code() == tonic::Code::Unauthenticated && w.is_healthy() {
                                tracing::error!(worker = %w.url, "the worker refused this gateway's OP_WORKER_TOKEN");
                            }
                            false
                        }
                    };
                    w.set_healthy(up);
                }
            }
        });
    }
}

fn rendezvous_score(affinity: &str, worker: &str) -> u64 {
    let d = Sha256::new()
        .chain_update(affinity.as_bytes())
        .chain_update([0u8])
        .chain_update(worker.as_bytes())
        .finalize();
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

fn error_chain(status: &tonic::Status) -> String {
    let mut text = status.message().to_ascii_lowercase();
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(e) = src {
        text.push_str(" | ");
        text.push_str(&e.to_string().to_ascii_lowercase());
        src = e.source();
    }
    text
}

/// The request never left this gateway: the connection could not be made.
fn is_connect_error(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unavailable && {
        let t = error_chain(status);
        t.contains("connect") || t.contains("connection refused")
    }
}

/// The connection broke (worker died or restarted); the request may or may not have run.
fn is_transport_error(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Internal
    ) && {
        let t = error_chain(status);
        t.contains("transport")
            || t.contains("connection")
            || t.contains("broken pipe")
            || t.contains("h2")
            || t.contains("reset")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_is_stable_and_spreads() {
        let urls: Vec<String> = (0..4)
            .map(|i| format!("http://127.0.0.1:70{i:02}"))
            .collect();
        let first = |t: &str| {
            urls.iter()
                .max_by_key(|u| rendezvous_score(t, u))
                .unwrap()
                .clone()
        };
        assert_eq!(first("tenant-a"), first("tenant-a"));
        let distinct: std::collections::HashSet<_> =
            (0..64).map(|i| first(&format!("tenant-{i}"))).collect();
        assert!(
            distinct.len() >= 3,
            "64 tenants should land on most of 4 workers"
        );
    }
}
