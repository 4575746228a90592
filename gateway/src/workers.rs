//! The worker pool: the set of workers this gateway routes to, learnt at run time, one gRPC
//! channel per worker, health tracking, rendezvous hashing of the tenant id for cache
//! locality, and failover to the next worker when one is down.
//!
//! **Where the set comes from** (`OP_WORKERS`, comma-separated [`Entry`]s): static URLs; `dns:<name>:<port>`, every A/AAAA
//! record of the name (a Kubernetes headless Service), re-resolved every
//! `OP_WORKER_REFRESH_SECS`; `registry`, the workers registered in `control.workers` with a
//! heartbeat younger than 3 heartbeats (re-read every `OP_WORKER_REFRESH_SECS`, and at once
//! when a worker announces a change on [`WORKERS_CHANNEL`]). A worker that stays in the set
//! keeps its channel and health; rendezvous hashing over the set means that adding or
//! removing a worker moves only the tenants that hash to it.
//!
//! **Health**: every worker is probed every 500 ms (the `Health` RPC): `serving`,
//! `draining` (it got SIGTERM: no new requests, so a draining worker is out of rotation
//! within a second) or `down` (no answer). Only serving workers are ranked first; the others
//! are tried last, in case every worker looks down.
//!
//! Failover never duplicates an effect: a request is re-sent to another worker only if it
//! provably never reached the first (connection refused / not established), or if it is a
//! read (GET/HEAD). A write in flight on a worker that dies gets a 502 and must be retried
//! by the client (with an Idempotency-Key, safely).

use op_proto::v1::{tenant_worker_client::TenantWorkerClient, Envelope, HealthRequest, Reply};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering},
        Arc, Mutex, RwLock,
    },
    time::Duration,
};
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::{Channel, Endpoint};

pub use op_control::workers::WORKERS_CHANNEL;

/// How often every worker is probed.
const PROBE_EVERY: Duration = Duration::from_millis(500);

/// One `OP_WORKERS` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A gRPC URL (`http://host:port`, `unix:/path.sock`).
    Static(String),
    /// `dns:<name>:<port>`: every address of the name.
    Dns { name: String, port: u16 },
    /// `registry`: the workers registered in the control schema.
    Registry,
}

impl Entry {
    /// Parses `OP_WORKERS`.
    pub fn parse_list(s: &str) -> Result<Vec<Entry>, String> {
        let mut entries = Vec::new();
        for raw in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let entry = if raw == "registry" {
                Entry::Registry
            } else if let Some(rest) = raw.strip_prefix("dns:") {
                let (name, port) = rest
                    .rsplit_once(':')
                    .ok_or_else(|| format!("OP_WORKERS: `{raw}` must be dns:<name>:<port>"))?;
                let port = port
                    .parse()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("OP_WORKERS: `{raw}`: `{port}` is not a port"))?;
                if name.is_empty() {
                    return Err(format!("OP_WORKERS: `{raw}` names no host"));
                }
                Entry::Dns {
                    name: name.to_string(),
                    port,
                }
            } else {
                op_control::workers::check_url(raw)
                    .map_err(|e| format!("OP_WORKERS: {e}, dns:<name>:<port> or registry"))?;
                Endpoint::from_shared(raw.to_string())
                    .map_err(|e| format!("OP_WORKERS: worker URL `{raw}`: {e}"))?;
                Entry::Static(raw.to_string())
            };
            if !entries.contains(&entry) {
                entries.push(entry);
            }
        }
        if entries.is_empty() {
            return Err("OP_WORKERS lists no worker".into());
        }
        Ok(entries)
    }
}

/// Where a worker of the set was learnt from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Static,
    Dns,
    Registry,
}

/// What the last probe (or the registry) said.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Serving,
    Draining,
    Down,
}

impl Health {
    fn from_u8(v: u8) -> Health {
        match v {
            0 => Health::Serving,
            1 => Health::Draining,
            _ => Health::Down,
        }
    }
    fn as_u8(self) -> u8 {
        match self {
            Health::Serving => 0,
            Health::Draining => 1,
            Health::Down => 2,
        }
    }
}

pub struct Worker {
    pub url: String,
    pub source: Source,
    client: TenantWorkerClient<Channel>,
    health: AtomicU8,
    in_flight: AtomicU64,
    /// Unix ms of the last answered probe; 0 = never.
    last_seen_ms: AtomicI64,
    /// The worker's own id (`OP_WORKER_ID`) once it answered, else the registry's.
    id: Mutex<String>,
}

impl Worker {
    fn new(url: &str, source: Source, id: &str, health: Health) -> Result<Worker, String> {
        let endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| format!("worker URL `{url}`: {e}"))?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5));
        let client = TenantWorkerClient::new(endpoint.connect_lazy())
            .max_decoding_message_size(512 * 1024 * 1024)
            .max_encoding_message_size(512 * 1024 * 1024);
        Ok(Worker {
            url: url.to_string(),
            source,
            client,
            health: AtomicU8::new(health.as_u8()),
            in_flight: AtomicU64::new(0),
            last_seen_ms: AtomicI64::new(0),
            id: Mutex::new(id.to_string()),
        })
    }

    pub fn health(&self) -> Health {
        Health::from_u8(self.health.load(Ordering::Relaxed))
    }

    pub fn is_healthy(&self) -> bool {
        self.health() == Health::Serving
    }

    fn set_health(&self, now: Health) {
        let before = Health::from_u8(self.health.swap(now.as_u8(), Ordering::Relaxed));
        if before != now {
            match now {
                Health::Serving => tracing::info!(worker = %self.url, "worker is up"),
                Health::Draining => tracing::info!(worker = %self.url, "worker is draining"),
                Health::Down => tracing::warn!(worker = %self.url, "worker is down"),
            }
        }
    }

    /// What `GET /platform/workers` shows of this worker.
    pub fn view(&self) -> WorkerView {
        let ms = self.last_seen_ms.load(Ordering::Relaxed);
        WorkerView {
            id: self.id.lock().expect("id lock").clone(),
            url: self.url.clone(),
            source: self.source,
            health: self.health(),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            last_seen_at: (ms > 0)
                .then(|| chrono::DateTime::from_timestamp_millis(ms))
                .flatten()
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        }
    }
}

/// One worker in `GET /platform/workers`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerView {
    pub id: String,
    pub url: String,
    pub source: Source,
    pub health: Health,
    pub in_flight: u64,
    /// When it last answered a probe (RFC 3339, milliseconds, UTC); null if never.
    pub last_seen_at: Option<String>,
}

/// Counts a request as in flight on a worker for as long as it lives.
struct InFlight<'a>(&'a Worker);

impl<'a> InFlight<'a> {
    fn start(w: &'a Worker) -> InFlight<'a> {
        w.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(w)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

pub struct WorkerPool {
    entries: Vec<Entry>,
    members: RwLock<Arc<Vec<Arc<Worker>>>>,
    /// `OP_WORKER_TOKEN`, sent in the metadata of every call (see `op_control::worker_token`).
    token: Option<AsciiMetadataValue>,
    /// `OP_WORKER_REFRESH_SECS`.
    refresh: Duration,
    /// Woken by a `NOTIFY` on [`WORKERS_CHANNEL`]: re-read the registry now.
    wake: tokio::sync::Notify,
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
    /// The pool with its static workers (optimistically healthy until the first probe);
    /// DNS and registry workers join at the first [`WorkerPool::discover`].
    pub fn new(
        entries: Vec<Entry>,
        token: Option<&str>,
        refresh: Duration,
    ) -> Result<WorkerPool, String> {
        let token = token
            .map(|t| {
                AsciiMetadataValue::try_from(t)
                    .map_err(|_| "OP_WORKER_TOKEN must be printable ASCII".to_string())
            })
            .transpose()?;
        let mut members = Vec::new();
        for e in &entries {
            if let Entry::Static(url) = e {
                members.push(Arc::new(Worker::new(
                    url,
                    Source::Static,
                    url,
                    Health::Serving,
                )?));
            }
        }
        Ok(WorkerPool {
            entries,
            members: RwLock::new(Arc::new(members)),
            token,
            refresh,
            wake: tokio::sync::Notify::new(),
        })
    }

    /// Whether `OP_WORKERS` names the registry (the gateway then listens on [`WORKERS_CHANNEL`]).
    pub fn follows_registry(&self) -> bool {
        self.entries.contains(&Entry::Registry)
    }

    /// The current set.
    pub fn members(&self) -> Arc<Vec<Arc<Worker>>> {
        self.members.read().expect("members lock").clone()
    }

    /// Re-read the registry now (a worker announced a change).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub fn healthy_count(&self) -> usize {
        self.members().iter().filter(|w| w.is_healthy()).count()
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

    /// Workers in the order to try for `affinity` (the tenant id): rendezvous (highest
    /// random weight) hashing, serving ones first. Adding or losing a worker moves only the
    /// tenants that hashed to it.
    pub fn order(&self, affinity: &str) -> Vec<Arc<Worker>> {
        let mut ranked: Vec<(bool, u64, Arc<Worker>)> = self
            .members()
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
            let result = {
                let _counted = InFlight::start(&worker);
                worker.client.clone().handle(req).await
            };
            match result {
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
                        worker.set_health(Health::Down);
                    }
                    if never_sent || replayable {
                        tracing::warn!(worker = %worker.url, error = %status.message(), "failing over to the next worker");
                        // A request never sent leaves the answer "no worker" (503); one a
                        // worker failed while serving makes it "worker failed" (502).
                        if !never_sent {
                            last = ForwardError::Failed(status);
                        }
                        continue;
                    }
                    return Err(ForwardError::Failed(status));
                }
            }
        }
        Err(last)
    }

    async fn probe(&self, w: &Worker) {
        let req = self.request(HealthRequest {}, Duration::from_secs(1));
        let health = match w.client.clone().health(req).await {
            Ok(r) => {
                let r = r.into_inner();
                w.last_seen_ms
                    .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
                if !r.worker_id.is_empty() {
                    *w.id.lock().expect("id lock") = r.worker_id;
                }
                match (r.draining, r.ok) {
                    (true, _) => Health::Draining,
                    (false, true) => Health::Serving,
                    (false, false) => Health::Down,
                }
            }
            Err(status) => {
                if status.code() == tonic::Code::Unauthenticated && w.health() != Health::Down {
                    tracing::error!(worker = %w.url, "the worker refused this gateway's OP_WORKER_TOKEN");
                }
                Health::Down
            }
        };
        w.set_health(health);
    }

    /// Probes every worker every [`PROBE_EVERY`], all at once: a failed probe takes the
    /// worker out of rotation, a good one brings it back, a draining one leaves it.
    pub fn spawn_health_checks(self: &Arc<Self>) {
        let pool = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROBE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let members = pool.members();
                futures::future::join_all(members.iter().map(|w| pool.probe(w))).await;
            }
        });
    }

    /// The set as the entries say now: DNS names resolved, the registry read (`db` is the
    /// gateway's control-plane pool). A source that fails keeps its previous workers.
    pub async fn discover(&self, db: &deadpool_postgres::Pool) {
        self.discover_with(db, |name, port| {
            Box::pin(async move {
                tokio::net::lookup_host((name.as_str(), port))
                    .await
                    .map(|addrs| addrs.collect())
            })
        })
        .await
    }

    /// [`WorkerPool::discover`] with the DNS lookup given (tests).
    async fn discover_with(
        &self,
        db: &deadpool_postgres::Pool,
        resolve: impl Fn(String, u16) -> Resolution,
    ) {
        let before = self.members();
        let mut found: Vec<(String, Source, String, Health)> = Vec::new();
        for e in &self.entries {
            match e {
                Entry::Static(url) => {
                    found.push((url.clone(), Source::Static, url.clone(), Health::Serving))
                }
                Entry::Dns { name, port } => {
                    match resolve(name.clone(), *port).await {
                        Ok(addrs) => {
                            for a in addrs {
                                let url = format!("http://{a}");
                                found.push((url.clone(), Source::Dns, url, Health::Down));
                            }
                        }
                        Err(err) => {
                            tracing::warn!(name = %name, error = %err, "worker DNS name does not resolve; keeping the workers it had");
                            found.extend(before.iter().filter(|w| w.source == Source::Dns).map(
                                |w| (w.url.clone(), Source::Dns, w.url.clone(), Health::Down),
                            ));
                        }
                    }
                }
                Entry::Registry => match op_control::workers::live(db).await {
                    Ok(live) => {
                        for r in live {
                            let health = if r.draining {
                                Health::Draining
                            } else {
                                Health::Down
                            };
                            found.push((r.url, Source::Registry, r.id, health));
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "worker registry unreadable; keeping the workers it had");
                        found.extend(before.iter().filter(|w| w.source == Source::Registry).map(
                            |w| (w.url.clone(), Source::Registry, w.url.clone(), Health::Down),
                        ));
                    }
                },
            }
        }
        let old: HashMap<&str, &Arc<Worker>> = before.iter().map(|w| (w.url.as_str(), w)).collect();
        let mut next: Vec<Arc<Worker>> = Vec::new();
        let mut fresh: Vec<Arc<Worker>> = Vec::new();
        for (url, source, id, health) in found {
            if next.iter().any(|w| w.url == url) {
                continue;
            }
            match old.get(url.as_str()) {
                Some(w) => {
                    // The registry's draining flag is news before the next probe.
                    if health == Health::Draining {
                        w.set_health(Health::Draining);
                    }
                    next.push((*w).clone());
                }
                None => match Worker::new(&url, source, &id, health) {
                    Ok(w) => {
                        let w = Arc::new(w);
                        tracing::info!(worker = %url, source = ?source, "worker joined the set");
                        fresh.push(w.clone());
                        next.push(w);
                    }
                    Err(err) => tracing::warn!(error = %err, "worker left out"),
                },
            }
        }
        for w in before
            .iter()
            .filter(|w| !next.iter().any(|n| n.url == w.url))
        {
            tracing::info!(worker = %w.url, "worker left the set");
        }
        *self.members.write().expect("members lock") = Arc::new(next);
        // Newcomers are probed at once (they start out of rotation).
        futures::future::join_all(fresh.iter().map(|w| self.probe(w))).await;
    }

    /// Re-discovers every `OP_WORKER_REFRESH_SECS`, and at once when woken. Nothing to do
    /// for a purely static list.
    pub fn spawn_discovery(self: &Arc<Self>, db: deadpool_postgres::Pool) {
        if self.entries.iter().all(|e| matches!(e, Entry::Static(_))) {
            return;
        }
        let pool = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(pool.refresh) => {}
                    _ = pool.wake.notified() => {}
                }
                pool.discover(&db).await;
            }
        });
    }
}

/// The addresses a DNS name resolves to.
type Resolution = std::pin::Pin<
    Box<dyn std::future::Future<Output = std::io::Result<Vec<std::net::SocketAddr>>> + Send>,
>;

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

    #[test]
    fn adding_a_worker_moves_only_the_tenants_it_wins() {
        let four: Vec<String> = (0..4).map(|i| format!("http://10.0.0.{i}:7001")).collect();
        let mut five = four.clone();
        five.push("http://10.0.0.9:7001".into());
        let first = |set: &[String], t: &str| {
            set.iter()
                .max_by_key(|u| rendezvous_score(t, u))
                .unwrap()
                .clone()
        };
        for i in 0..500 {
            let t = format!("tenant-{i}");
            let (before, after) = (first(&four, &t), first(&five, &t));
            assert!(
                before == after || after == five[4],
                "{t} moved between old workers"
            );
        }
    }

    /// Re-resolution: workers that stay keep their channel and health, new ones join, gone
    /// ones leave, and a failed lookup keeps what the name had.
    #[tokio::test]
    async fn dns_workers_follow_the_records() {
        use std::sync::Mutex as StdMutex;
        let db = op_control::db::pool("postgres://nobody@127.0.0.1:1/none", 1).unwrap();
        let pool = WorkerPool::new(
            Entry::parse_list("http://127.0.0.1:1,dns:workers.test:7001").unwrap(),
            None,
            Duration::from_secs(5),
        )
        .unwrap();
        let records: Arc<StdMutex<std::io::Result<Vec<std::net::SocketAddr>>>> =
            Arc::new(StdMutex::new(Ok(vec!["127.0.0.2:7001".parse().unwrap()])));
        let lookup = |records: Arc<StdMutex<std::io::Result<Vec<std::net::SocketAddr>>>>| {
            move |name: String, port: u16| -> Resolution {
                assert_eq!((name.as_str(), port), ("workers.test", 7001));
                let answer = match &*records.lock().unwrap() {
                    Ok(a) => Ok(a.clone()),
                    Err(_) => Err(std::io::Error::other("no such host")),
                };
                Box::pin(async move { answer })
            }
        };
        let urls = |pool: &WorkerPool| -> Vec<String> {
            pool.members().iter().map(|w| w.url.clone()).collect()
        };
        pool.discover_with(&db, lookup(records.clone())).await;
        assert_eq!(urls(&pool), ["http://127.0.0.1:1", "http://127.0.0.2:7001"]);
        let kept = pool.members()[1].clone();
        assert_eq!(kept.source, Source::Dns);

        *records.lock().unwrap() = Ok(vec![
            "127.0.0.2:7001".parse().unwrap(),
            "[::1]:7001".parse().unwrap(),
        ]);
        pool.discover_with(&db, lookup(records.clone())).await;
        assert_eq!(
            urls(&pool),
            [
                "http://127.0.0.1:1",
                "http://127.0.0.2:7001",
                "http://[::1]:7001"
            ]
        );
        assert!(
            Arc::ptr_eq(&kept, &pool.members()[1]),
            "a staying worker is kept"
        );

        *records.lock().unwrap() = Err(std::io::Error::other("down"));
        pool.discover_with(&db, lookup(records.clone())).await;
        assert_eq!(urls(&pool).len(), 3, "a failed lookup keeps the workers");

        *records.lock().unwrap() = Ok(vec!["[::1]:7001".parse().unwrap()]);
        pool.discover_with(&db, lookup(records.clone())).await;
        assert_eq!(urls(&pool), ["http://127.0.0.1:1", "http://[::1]:7001"]);
    }

    #[test]
    fn entries_parse() {
        assert_eq!(
            Entry::parse_list("http://a:7001, dns:op-worker:7001,registry").unwrap(),
            vec![
                Entry::Static("http://a:7001".into()),
                Entry::Dns {
                    name: "op-worker".into(),
                    port: 7001
                },
                Entry::Registry
            ]
        );
        assert!(Entry::parse_list("dns:op-worker").is_err());
        assert!(Entry::parse_list("dns::7001").is_err());
        assert!(Entry::parse_list("dns:x:0").is_err());
        assert!(Entry::parse_list(" , ").is_err());
        assert!(Entry::parse_list("unix:/run/op/w1.sock").is_ok());
        for bad in ["ftp://x", "https://a:7001", "a:7001", "http://", "unix:"] {
            let e = Entry::parse_list(bad).unwrap_err();
            assert!(e.starts_with("OP_WORKERS"), "{bad}: {e}");
        }
    }
}
