//! The end-to-end harness: one throwaway PostgreSQL cluster and one running stack (2
//! workers + gateway, real processes, real gRPC, real HTTP) per test binary, and a fresh
//! tenant per test (tenants are schemas, so they are cheap). Tests that kill processes
//! start a private stack on the same cluster.
//!
//! With `OP_E2E_DATABASE_URL` set, the tests run against that database instead of a
//! throwaway cluster (`scripts/citus-smoke` points it at a Citus coordinator). It is
//! migrated first; every test works in tenants of its own, so the database may be reused.
//!
//! `fixtures` holds the set-up steps the tests share (campaigns, links, clicks, identities,
//! events, commissions, keys, webhook endpoints, sign-in); `receiver` is a local webhook
//! receiver; `procs` single processes for the operations tests. A test that waits for
//! something asynchronous waits through [`poll`] or [`wait_until`].

pub mod fixtures;
pub mod procs;
pub mod receiver;

pub use fixtures::*;

use openpartner::{
    embedded_pg::{EmbeddedPg, FAST_SETTINGS},
    stack::{Mode, Stack, StackOptions},
};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::{
    future::Future,
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        OnceLock,
    },
    time::{Duration, Instant},
};

pub const PLATFORM_KEY: &str = "opp_test_platform_key_0123456789";

pub struct Shared {
    pub database_url: String,
    pub stack: Stack,
}

/// Builds the shared cluster + stack once, on a runtime of its own (each test has its own).
pub fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        std::thread::spawn(|| {
            tokio::runtime::Runtime::new()
                .expect("runtime")
                .block_on(start_shared())
        })
        .join()
        .expect("harness start-up panicked")
    })
}

fn test_root() -> PathBuf {
    let root = std::env::temp_dir().join("openpartner-e2e");
    let _ = std::fs::create_dir_all(&root);
    // Clusters of earlier runs whose process is gone.
    if let Ok(entries) = std::fs::read_dir(&root) {
        for e in entries.flatten() {
            let pid: Option<i32> = e
                .file_name()
                .to_str()
                .and_then(|n| n.split('-').next()?.parse().ok());
            if let Some(pid) = pid {
                if unsafe { libc::kill(pid, 0) } != 0 {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
    root.join(format!("{}-{}", std::process::id(), ulid::Ulid::new()))
}

/// The environment variable naming an external database for the tests.
pub const EXTERNAL_DATABASE: &str = "OP_E2E_DATABASE_URL";

async fn start_shared() -> Shared {
    let (pg, database_url) = match std::env::var(EXTERNAL_DATABASE) {
        Ok(url) if !url.is_empty() => (None, url),
        _ => {
            let pg = EmbeddedPg::start(&test_root().join("pg"), FAST_SETTINGS)
                .await
                .expect("start the throwaway postgres");
            let url = pg.database_url();
            (Some(pg), url)
        }
    };
    let mut client = openpartner::connect(&database_url).await.expect("connect");
    op_control::migrations::migrate_all(&mut client)
        .await
        .expect("migrate");
    let stack = Stack::start(options(&database_url, Mode::Multi, 2), pg)
        .await
        .expect("start the stack");
    Shared {
        database_url,
        stack,
    }
}

/// A connection to the shared cluster, for what the API does not show (stored rows, clocks
/// moved back).
pub async fn db() -> tokio_postgres::Client {
    openpartner::connect(&shared().database_url)
        .await
        .expect("connect")
}

/// The first column of every row `sql` answers on `db`.
pub async fn column<T>(
    db: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Vec<T>
where
    T: for<'a> tokio_postgres::types::FromSql<'a>,
{
    let rows = db.query(sql, params).await.expect("the query runs");
    rows.iter().map(|r| r.get(0)).collect()
}

/// Now, in milliseconds since the Unix epoch (the unit of the API's `ts` fields).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

/// Calls `probe` every `every` until it answers `Ok`, and returns that; fails the test after
/// `secs` seconds with what the last `Err` said (what was seen instead).
pub async fn poll<T, F, Fut>(secs: u64, every: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        let seen = match probe().await {
            Ok(done) => return done,
            Err(seen) => seen,
        };
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "not within {secs} s: {seen}"
        );
        tokio::time::sleep(every).await;
    }
}

/// Polls `check` every 20 ms until it holds (fails the test after `secs` seconds, naming
/// `what`); how long it took.
pub async fn wait_until<F, Fut>(what: &str, secs: u64, check: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    poll(secs, Duration::from_millis(20), || async {
        if check().await {
            Ok(())
        } else {
            Err(format!("timed out waiting until {what}"))
        }
    })
    .await;
    start.elapsed()
}

pub fn options(database_url: &str, mode: Mode, workers: usize) -> StackOptions {
    StackOptions {
        exe: PathBuf::from(env!("CARGO_BIN_EXE_openpartner")),
        mode,
        port: 0,
        workers,
        database_url: database_url.to_string(),
        platform_key: Some(PLATFORM_KEY.to_string()),
        admin_api_key: None,
        env: TEST_ENV
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        quiet: true,
        worker_transport: Default::default(),
    }
}

/// A private stack (one worker + gateway) on the shared cluster with `env` set over
/// [`TEST_ENV`], for a test of settings the shared stack does not have.
pub async fn private_stack(env: &[(&str, &str)]) -> Stack {
    let mut opts = options(&shared().database_url, Mode::Multi, 1);
    for (k, v) in env {
        opts.env.retain(|(key, _)| key != k);
        opts.env.push((k.to_string(), v.to_string()));
    }
    Stack::start(opts, None).await.expect("private stack")
}

/// A private single-tenant (self-host) stack on the shared cluster, administered by
/// `admin_key`; its API is at `<base_url>/api`.
pub async fn single_tenant_stack(admin_key: &str) -> Stack {
    single_tenant_stack_with(admin_key, &[]).await
}

/// [`single_tenant_stack`] with `env` set over [`TEST_ENV`].
pub async fn single_tenant_stack_with(admin_key: &str, env: &[(&str, &str)]) -> Stack {
    let mut opts = options(&shared().database_url, Mode::Single, 1);
    opts.admin_api_key = Some(admin_key.to_string());
    for (k, v) in env {
        opts.env.retain(|(key, _)| key != k);
        opts.env.push((k.to_string(), v.to_string()));
    }
    Stack::start(opts, None).await.expect("single-mode stack")
}

/// Settings every test stack runs with (tests that need others start their own stack).
pub const TEST_ENV: &[(&str, &str)] = &[
    ("OP_SESSION_SECRET", "test-session-secret-0123456789abcdef"),
    ("OP_DEV_MAILBOX", "1"),
    ("OP_COOKIE_SECURE", "0"),
    ("OP_PORTAL_URL", "http://portal.test"),
    ("OP_SECRETS_KEY", "test-secrets-key"),
    // The tests' webhook receivers listen on 127.0.0.1, and minutes of retry schedule
    // become milliseconds.
    ("OP_WEBHOOK_ALLOW_PRIVATE", "1"),
    ("OP_WEBHOOK_RETRY_SCALE", "0.001"),
    // The shared stack serves every test from one address; the limiter has its own test.
    ("OP_RATE_LIMIT_PER_MIN", "1000000"),
];

/// A unique, valid slug for this test.
pub fn unique_slug(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        &ulid::Ulid::new().to_string().to_lowercase()[20..],
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A tiny HTTP client for the API as customers call it.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    /// e.g. `http://127.0.0.1:1234/api/t/acme`
    pub base: String,
    pub key: Option<String>,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn code(&self) -> u16 {
        self.status.as_u16()
    }

    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Resp {
        assert_eq!(
            self.code(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        self
    }

    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) -> Resp {
        assert_eq!(
            (self.code(), self.error()),
            (status, code),
            "body: {}",
            self.body
        );
        assert!(
            self.body["detail"].is_string(),
            "errors carry a detail: {}",
            self.body
        );
        self
    }
}

impl Api {
    pub fn new(base: impl Into<String>, key: Option<&str>) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: base.into(),
            key: key.map(str::to_string),
        }
    }

    pub fn with_key(&self, key: Option<&str>) -> Api {
        Api {
            key: key.map(str::to_string),
            ..self.clone()
        }
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let r = req.send().await.expect("request reaches the gateway");
        let status = r.status();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.get_with(path, &[]).await
    }

    /// `GET path`, answered `200`: the body.
    pub async fn get_ok(&self, path: &str) -> Value {
        self.get(path).await.expect(200).body
    }

    /// `GET path` with `headers` added.
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.raw(Method::GET, path, None, headers).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.raw(Method::POST, path, Some(body.to_string().into_bytes()), &[])
            .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.raw(
            Method::PATCH,
            path,
            Some(body.to_string().into_bytes()),
            &[],
        )
        .await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.raw(Method::PUT, path, Some(body.to_string().into_bytes()), &[])
            .await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.raw(Method::DELETE, path, None, &[]).await
    }
}

/// A fresh tenant provisioned through the platform API, with its admin key.
pub struct Tenant {
    pub slug: String,
    pub id: String,
    pub admin_key: String,
    pub api: Api,
}

impl Tenant {
    pub async fn new() -> Tenant {
        Tenant::on(&shared().stack.base_url).await
    }

    pub async fn on(gateway: &str) -> Tenant {
        Tenant::provision(gateway, serde_json::json!({})).await
    }

    /// A fresh tenant whose first admin is `email` (invited by the provisioning call).
    pub async fn with_admin(email: &str) -> Tenant {
        Tenant::provision(
            &shared().stack.base_url,
            serde_json::json!({ "adminEmail": email }),
        )
        .await
    }

    /// `POST /platform/tenants` under a fresh slug, with `fields` added to the body.
    async fn provision(gateway: &str, fields: Value) -> Tenant {
        let slug = unique_slug("t");
        let mut body = serde_json::json!({"slug": slug, "name": "Test tenant"});
        for (k, v) in fields.as_object().expect("tenant fields are an object") {
            body[k] = v.clone();
        }
        let r = platform(gateway)
            .post("/platform/tenants", body)
            .await
            .expect(201);
        let admin_key = r.body["adminKey"].as_str().expect("adminKey").to_string();
        Tenant {
            id: r.body["tenant"]["id"].as_str().expect("id").to_string(),
            api: Api::new(format!("{gateway}/api/t/{slug}"), Some(&admin_key)),
            slug,
            admin_key,
        }
    }
}

pub fn platform(gateway: &str) -> Api {
    Api::new(gateway.to_string(), Some(PLATFORM_KEY))
}

pub fn gateway() -> Api {
    Api::new(shared().stack.base_url.clone(), None)
}

impl Api {
    /// The same API, authenticated by a session cookie instead of a bearer key.
    pub async fn with_cookie(
        &self,
        method: Method,
        path: &str,
        cookie: &str,
        body: Option<Value>,
    ) -> Resp {
        let no_key = self.with_key(None);
        let bytes = body.map(|b| b.to_string().into_bytes());
        no_key.raw(method, path, bytes, &[("cookie", cookie)]).await
    }

    /// `GET path` authenticated by the session `cookie` (no bearer key).
    pub async fn get_with_cookie(&self, path: &str, cookie: &str) -> Resp {
        self.with_key(None)
            .get_with(path, &[("cookie", cookie)])
            .await
    }
}
