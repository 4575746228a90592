//! The system under test and the handles the scenarios hold on it: the stack the tool
//! starts (or an existing database), the fresh tenant, the set-up calls to its API, and the
//! measured requests — HTTP to the gateway, `Envelope`s to a worker.

use super::{http_load::Clients, BenchArgs};
use crate::{
    embedded_pg::EmbeddedPg,
    stack::{Mode, Stack, StackOptions},
};
use anyhow::Result;
use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use op_control::schema::Schema;
use op_proto::v1::{
    tenant_worker_client::TenantWorkerClient, Envelope, Principal, PrincipalKind, Surface, Tenant,
};
use serde_json::{json, Value};
use std::{path::PathBuf, sync::Arc, time::Duration};

/// The stack and the tenant the bench runs against.
pub(super) struct Target {
    pub(super) stack: Stack,
    pub(super) tenant_id: String,
    pub(super) slug: String,
    admin_key: String,
    /// The gateway's `OP_PLATFORM_KEY` (`/platform/*`: the tenants-scale scenario).
    pub(super) platform_key: Option<String>,
    /// The folder of the embedded PostgreSQL the tool started, removed after the run.
    pub(super) dir: Option<PathBuf>,
}

impl Target {
    /// A fresh tenant on a stack of its own: embedded PostgreSQL (or `--database-url`),
    /// migrations, `--workers` workers and the gateway.
    pub(super) async fn start(args: &BenchArgs) -> Result<Target> {
        let (database_url, pg, dir) = match &args.database_url {
            Some(url) => (url.clone(), None, None),
            None => {
                let dir =
                    std::env::temp_dir().join(format!("openpartner-bench-{}", std::process::id()));
                // Durable settings (fsync on): the numbers must mean "2xx = committed". Sized
                // as a server would be rather than PostgreSQL's minimal defaults (128 MB of
                // buffers, a checkpoint every 1 GB of WAL, which a write benchmark reaches
                // every ~20 s — PostgreSQL then logs "checkpoints are occurring too
                // frequently"). Both the product and the pgbench baseline run on this server.
                // The tenants-scale scenario writes ~1 MB of WAL per tenant it creates:
                // checkpoints every 2 GB keep 10,000 tenants from holding 8 GB of WAL on disk.
                let wal = if args.scenarios.contains("tenants-scale") {
                    "2GB"
                } else {
                    "8GB"
                };
                let settings = [
                    ("max_connections", "300"),
                    ("shared_buffers", "1GB"),
                    ("max_wal_size", wal),
                    ("checkpoint_timeout", "15min"),
                ];
                let pg = EmbeddedPg::start(&dir.join("pg"), &settings).await?;
                if let Some(pid) = std::fs::read_to_string(dir.join("pg").join("postmaster.pid"))
                    .ok()
                    .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
                {
                    super::cpu::own_postgres(pid);
                }
                (pg.database_url(), Some(pg), Some(dir))
            }
        };
        let mut client = crate::connect(&database_url).await?;
        op_control::migrations::migrate_all(&mut client).await?;
        let slug = format!(
            "bench-{}",
            &ulid::Ulid::new().to_string().to_lowercase()[16..]
        );
        let p = op_control::tenants::provision(&mut client, &slug, "Bench", None).await?;
        let platform_key = format!("opp_bench_{}", ulid::Ulid::new().to_string().to_lowercase());
        let opts = StackOptions {
            exe: std::env::current_exe()?,
            mode: Mode::Multi,
            port: 0,
            workers: args.workers,
            database_url,
            platform_key: Some(platform_key.clone()),
            admin_api_key: None,
            env: vec![
                ("RUST_LOG".into(), "warn".into()),
                ("OP_RATE_LIMIT_PER_MIN".into(), "0".into()),
                ("OP_CLICK_IP_CAP_PER_MIN".into(), "0".into()),
                ("OP_SECRETS_KEY".into(), "bench-secrets-key".into()),
                ("OP_WEBHOOK_ALLOW_PRIVATE".into(), "1".into()),
            ],
            quiet: true,
            worker_transport: args.worker_transport,
        };
        let stack = Stack::start(opts, pg).await?;
        Ok(Target {
            stack,
            tenant_id: p.tenant.id,
            slug,
            admin_key: p.admin_key,
            platform_key: Some(platform_key),
            dir,
        })
    }

    /// The tenant's schema, for the baselines' SQL.
    pub(super) fn schema(&self) -> Schema {
        Schema::of_tenant(&self.tenant_id).expect("tenant id")
    }

    /// An admin `Envelope` for `method path` (tenant-relative) with an empty body.
    pub(super) fn envelope(&self, method: &str, path: &str) -> Envelope {
        let mut principal = Principal::default();
        principal.set_kind(PrincipalKind::PrincipalAdmin);
        Envelope {
            request_id: ulid::Ulid::new().to_string(),
            surface: Surface::Api as i32,
            tenant: Some(Tenant {
                id: self.tenant_id.clone(),
                slug: self.slug.clone(),
            }),
            principal: Some(principal),
            method: method.into(),
            path: path.into(),
            ..Default::default()
        }
    }
}

/// The measured requests to the tenant API: `/api/t/<slug>…` with the admin key and a JSON
/// body, sent one connection per client. Cloned into each load task once.
#[derive(Clone)]
pub(super) struct AdminRequests {
    pub(super) load: Arc<Clients>,
    /// `/api/t/<slug>`: the tenant API's path prefix.
    prefix: String,
    auth: String,
}

impl AdminRequests {
    /// `method path` (tenant-relative) with a JSON body (none for `Value::Null`).
    pub(super) fn request(
        &self,
        method: Method,
        path: &str,
        body: &Value,
    ) -> http::Request<Full<Bytes>> {
        let body = match body {
            Value::Null => Bytes::new(),
            v => Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
        };
        self.load
            .request(method, &format!("{}{path}", self.prefix))
            .header(http::header::AUTHORIZATION, &self.auth)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .expect("a valid request")
    }
}

/// Concurrent readers of the reporting scenario (specs/reporting.md: 16).
pub(super) const READERS: usize = 16;

/// What every scenario needs: the stack, clients and the run's knobs.
pub(super) struct Bench {
    pub(super) target: Target,
    /// Set-up calls (not measured).
    http: reqwest::Client,
    /// Does not follow redirects (the click router answers 302).
    pub(super) http_noredirect: reqwest::Client,
    /// The tenant API's URL, for set-up calls.
    base: String,
    /// The measured HTTP load: one connection per client.
    pub(super) admin: AdminRequests,
    pub(super) worker: TenantWorkerClient<tonic::transport::Channel>,
    pub(super) run_id: String,
    pub(super) pairs: usize,
    /// Clients of the current runs (one of `--concurrency`, set by the run).
    pub(super) concurrency: usize,
    pub(super) duration: Duration,
}

impl Bench {
    /// Sized for the largest of `--concurrency`; `concurrency` starts at the first.
    pub(super) async fn new(args: &BenchArgs, target: Target) -> Result<Bench> {
        // The reporting scenario's readers have connections of their own too.
        let most = args
            .concurrency
            .iter()
            .copied()
            .max()
            .unwrap_or(1)
            .max(READERS);
        Ok(Bench {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(most)
                .build()?,
            http_noredirect: reqwest::Client::builder()
                .pool_max_idle_per_host(most)
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            base: format!("{}/api/t/{}", target.stack.base_url, target.slug),
            admin: AdminRequests {
                load: Arc::new(Clients::new(&target.stack.base_url, most)?),
                prefix: format!("/api/t/{}", target.slug),
                auth: format!("Bearer {}", target.admin_key),
            },
            worker: TenantWorkerClient::connect(target.stack.workers[0].url.clone()).await?,
            run_id: ulid::Ulid::new().to_string().to_lowercase(),
            pairs: args.pairs,
            concurrency: args.concurrency.first().copied().unwrap_or(1),
            duration: Duration::from_secs(args.seconds),
            target,
        })
    }

    /// A set-up call to the tenant API as its admin; the JSON reply.
    pub(super) async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> Result<Value> {
        let r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("authorization", &self.admin.auth)
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or_default();
        anyhow::ensure!(status.is_success(), "{path}: {status} {v}");
        Ok(v)
    }

    /// Creates a partner (no invitation e-mail); the API's reply.
    pub(super) async fn partner(&self, email: String, name: &str) -> Result<Value> {
        self.api(
            reqwest::Method::POST,
            "/partners",
            json!({"email": email, "name": name, "sendInvite": false}),
        )
        .await
    }
}
