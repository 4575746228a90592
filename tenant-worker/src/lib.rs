//! The tenant worker: the application behind the gateway.
//!
//! A worker is stateless and serves any tenant. It receives envelopes over gRPC
//! (`server`), routes them through the one route table ([`routes`]), checks the
//! principal against the route ([`access`]) and runs the domain module's handler with a
//! `context::Ctx`; the handler's SQL runs in the tenant's own schema (`sql::Tx`, or
//! statements qualified with the tenant's `sql::Schema`).
//!
//! - Request plumbing: `server`, [`routes`], [`access`], `context`, `error`,
//!   `idempotency`, `pagination`.
//! - Database plumbing: `sql` (transactions, pipelines, multi-row inserts) and
//!   `group_commit` (per-tenant lanes for the hot writes).
//! - People and keys: `partners`, `admins`, `api_keys`, `auth` (sign-in handlers)
//!   on top of `sessions` (tokens, invites, session rows), `platform` (tenants).
//! - The money path: `campaigns` (with `schedule`: the window and the end-of-campaign
//!   reminder, and `grants`: which partners reach which campaigns), `links`, `clicks` (the click router),
//!   `attribution` (events, refunds, identify, rederive), `commissions` (rules and the
//!   ledger), `auto_approve` (the sweep), `terms` (per-partner terms and which rule prices a
//!   touch), `money`, `payouts`.
//! - Outbound: `outbox` and `webhooks` (endpoints, delivery, signatures, SSRF),
//!   `mail`, [`secrets`] (sealing at rest).
//! - Moving a tenant's data: [`migration`] (the `rs-1` bundle: export, import).
//!
//! Only what other crates use is `pub` (the route table and access rules for the e2e
//! authorization matrix, the secrets key, the config, the tenant bundle for the operator CLI
//! and the entry point).

pub mod access;
pub(crate) mod admins;
pub(crate) mod api_keys;
pub(crate) mod attribution;
pub(crate) mod auth;
pub(crate) mod auto_approve;
pub(crate) mod campaigns;
pub(crate) mod clicks;
pub(crate) mod commissions;
pub mod config;
pub(crate) mod context;
pub(crate) mod drain;
pub mod enrichment;
pub(crate) mod error;
pub(crate) mod grants;
pub(crate) mod group_commit;
pub(crate) mod idempotency;
pub(crate) mod jobs;
pub(crate) mod links;
pub(crate) mod mail;
/// The tenant bundle (`rs-1`): export and import, for the operator CLI and the migration routes.
pub mod migration;
pub(crate) mod money;
pub mod openapi;
/// A user's attribution lock (programs.md), for a test that holds it as identify would.
pub use attribution::store::{user_lock_keys, LOCK_USERS};
pub(crate) mod outbox;
pub(crate) mod pagination;
pub(crate) mod partners;
pub(crate) mod payouts;
pub(crate) mod platform;
pub use platform::NewTenant;
pub(crate) mod reporting;
pub mod routes;
pub(crate) mod schedule;
pub mod secrets;
pub(crate) mod server;
pub(crate) mod sessions;
pub(crate) mod sql;
pub(crate) mod terms;
pub(crate) mod webhooks;

pub use config::Config;

/// Shared, immutable state of one worker process.
pub struct App {
    pub config: Config,
    pub pool: deadpool_postgres::Pool,
    pub routes: Vec<routes::Route>,
    pub mailer: mail::Mailer,
    /// Seals webhook secrets (`OP_SECRETS_KEY`); None: webhook endpoints cannot be created.
    pub secrets: Option<secrets::SecretsKey>,
    /// The outbound webhook client: SSRF-guarded resolver, no redirects, the 15 s
    /// `webhooks::delivery::SEND_TIMEOUT` (which the delivery lease outlasts).
    pub webhook_http: reqwest::Client,
    /// Per-IP, per-link click counts for the `velocity` flag (`OP_CLICK_VELOCITY_PER_MIN`).
    pub velocity: clicks::Velocity,
    /// Group commit of clicks, one lane per tenant.
    pub click_lane: clicks::Lane,
    /// Group commit of conversion events (not refunds), one lane per tenant.
    pub event_lane: attribution::events::Lane,
    /// Set on SIGTERM: health says `draining`, jobs stop taking work.
    pub drain: drain::Drain,
    /// The tenants each background job has to visit on this worker (`jobs`).
    pub jobs: jobs::Queues,
}

impl App {
    pub fn new(config: Config) -> anyhow::Result<App> {
        let pool = op_control::db::pool(&config.database_url, config.pool_size)
            .map_err(anyhow::Error::msg)?;
        let mailer = mail::Mailer::from_config(&config).map_err(anyhow::Error::msg)?;
        if config.session_secret.is_none() {
            tracing::warn!(
                "OP_SESSION_SECRET is unset: magic-link sign-in answers 503 sessions_disabled"
            );
        }
        let webhook_http = reqwest::Client::builder()
            .dns_resolver(std::sync::Arc::new(webhooks::ssrf::GuardedResolver {
                allow_private: config.webhook_allow_private,
            }))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(webhooks::delivery::SEND_TIMEOUT)
            .connect_timeout(std::time::Duration::from_secs(5))
            .pool_max_idle_per_host(4)
            .build()?;
        let secrets = config
            .secrets_key
            .as_deref()
            .map(secrets::SecretsKey::from_passphrase);
        if secrets.is_none() {
            tracing::warn!("OP_SECRETS_KEY is unset: webhook endpoints cannot be created");
        }
        Ok(App {
            secrets,
            webhook_http,
            velocity: clicks::Velocity::new(config.click_velocity_per_min),
            click_lane: clicks::lane(pool.clone()),
            event_lane: attribution::events::lane(pool.clone()),
            config,
            pool,
            routes: routes::table(),
            mailer,
            drain: Default::default(),
            jobs: Default::default(),
        })
    }
}

/// Entry point of `op-worker` and `openpartner worker`: reads the environment, binds,
/// serves until SIGTERM/SIGINT, then drains within `OP_DRAIN_SECS` (see [`drain`]).
pub async fn run_from_env() -> anyhow::Result<()> {
    op_control::process::init_tracing("op-worker").map_err(anyhow::Error::msg)?;
    let config = Config::from_env().map_err(anyhow::Error::msg)?;
    reporting::rollups::configure_from_env().map_err(anyhow::Error::msg)?;
    let listener = server::Listener::bind(&config.listen).await?;
    tracing::info!(listen = %config.listen, worker_id = %config.worker_id, "worker listening");
    if config.drain <= webhooks::delivery::SEND_TIMEOUT {
        // Not refused (a test or a dev box may want quick stops), but said: a send still in
        // flight at the bound is then left to its lease, and retried only when that expires.
        tracing::warn!(
            drain_secs = config.drain.as_secs(),
            send_timeout_secs = webhooks::delivery::SEND_TIMEOUT.as_secs(),
            "OP_DRAIN_SECS is not above the webhook send timeout: a webhook send in flight at the drain bound waits for its lease to expire before another worker retries it"
        );
    }
    let app = std::sync::Arc::new(App::new(config)?);
    let jobs = vec![
        jobs::spawn(app.clone()),
        webhooks::delivery::spawn(app.clone()),
        jobs::spawn_job(app.clone(), jobs::Job::IdempotencyCleanup, |app, tenant| {
            Box::pin(async move { idempotency::clean_tenant(&app, &tenant).await })
        }),
        jobs::spawn_job(app.clone(), jobs::Job::AutoApprove, |app, tenant| {
            Box::pin(async move { auto_approve::pass(&app, &tenant).await })
        }),
        jobs::spawn_job(app.clone(), jobs::Job::Reminders, |app, tenant| {
            Box::pin(async move { schedule::reminders_pass(&app, &tenant).await })
        }),
    ];
    if let Some(url) = app.config.advertise.clone() {
        drain::spawn_heartbeat(app.clone(), url);
    }
    let bound = app.config.drain;
    let (signalled_tx, mut signalled) = tokio::sync::watch::channel(None);
    let shutdown = {
        let app = app.clone();
        async move {
            op_control::process::shutdown_signal().await;
            let _ = signalled_tx.send(Some(tokio::time::Instant::now()));
            tracing::info!(drain_secs = bound.as_secs(), "SIGTERM: draining");
            app.drain.start();
            drain::announce(&app).await;
            tokio::time::sleep(drain::NOTICE.min(bound / 2)).await;
            tracing::info!("draining: listener closed, finishing the requests in flight");
        }
    };
    // The drain ends at the bound, whatever is still running (a little early, so the
    // process is gone within it).
    let signal_time = signalled.clone();
    let deadline = async move {
        let _ = signalled.wait_for(Option::is_some).await;
        let t0 = (*signalled.borrow()).expect("signalled");
        tokio::time::sleep_until(t0 + bound.mul_f64(0.9)).await;
    };
    tokio::select! {
        served = server::serve(app.clone(), listener, shutdown) => served?,
        _ = deadline => tracing::warn!("drain bound reached with requests in flight"),
    }
    // The server ends only after the signal (or with an error, returned above).
    let t0 = (*signal_time.borrow()).unwrap_or_else(tokio::time::Instant::now);
    let stop: Vec<_> = jobs.iter().map(|j| j.abort_handle()).collect();
    let jobs_done = futures::future::join_all(jobs);
    tokio::pin!(jobs_done);
    tokio::select! {
        _ = &mut jobs_done => {}
        _ = tokio::time::sleep_until(t0 + bound.mul_f64(0.9)) => {
            tracing::warn!("drain bound reached with background work in flight");
            // Stopped where they are: a pass cut off keeps its claim until the lease ends,
            // and the tenants a job took but did not start go back into its queue.
            stop.iter().for_each(|j| j.abort());
            let _ = tokio::time::timeout(std::time::Duration::from_millis(100), jobs_done).await;
        }
    }
    // Nothing queues work any more: what is queued goes to the other workers. Then leave
    // the registry and flush the traces — all of it inside the bound (each has a bound of
    // its own too: 1 s, 2 s), so the process is gone before a kill grace of OP_DRAIN_SECS.
    if tokio::time::timeout_at(t0 + bound.mul_f64(0.94), jobs::hand_back(&app))
        .await
        .is_err()
    {
        tracing::warn!("drain bound reached while handing back the queued work");
    }
    let _ = tokio::time::timeout_at(t0 + bound.mul_f64(0.97), drain::leave(&app)).await;
    tracing::info!("drained; exiting");
    let _ = tokio::time::timeout_at(t0 + bound.mul_f64(0.99), op_control::traces::flush()).await;
    Ok(())
}
