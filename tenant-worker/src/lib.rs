//! The tenant worker: the application behind the gateway.
//!
//! A worker is stateless and serves any tenant. It receives envelopes over gRPC
//! ([`server`]), routes them through the one route table ([`routes`]), checks the
//! principal against the route ([`access`]) and runs the domain module's handler, whose SQL
//! runs inside the tenant's own schema ([`context::Ctx::begin`]).
//!
//! Domain modules: [`partners`], [`api_keys`], [`admins`], [`auth`] (magic links, sessions),
//! [`platform`] (tenants), [`campaigns`], [`links`], [`clicks`] (the click router); shared
//! plumbing: [`pagination`], [`outbox`], [`mail`], [`error`].

pub mod access;
pub mod admins;
pub mod api_keys;
pub mod attribution;
pub mod auth;
pub mod campaigns;
pub mod clicks;
pub mod commissions;
pub mod config;
pub mod context;
pub mod error;
pub mod group_commit;
pub mod idempotency;
pub mod links;
pub mod mail;
pub mod money;
pub mod outbox;
pub mod pagination;
pub mod partners;
pub mod payouts;
pub mod platform;
pub mod routes;
pub mod secrets;
pub mod server;
pub mod sql;
pub mod webhooks;

pub use config::Config;

/// Shared, immutable state of one worker process.
pub struct App {
    pub config: Config,
    pub pool: deadpool_postgres::Pool,
    pub routes: Vec<routes::Route>,
    pub mailer: mail::Mailer,
    /// Seals webhook secrets (`OP_SECRETS_KEY`); None: webhook endpoints cannot be created.
    pub secrets: Option<secrets::SecretsKey>,
    /// The outbound webhook client: SSRF-guarded resolver, no redirects, 15 s timeout.
    pub webhook_http: reqwest::Client,
    /// Per-IP, per-link click counts for the `velocity` flag (`OP_CLICK_VELOCITY_PER_MIN`).
    pub velocity: clicks::Velocity,
    /// Group commit of clicks, one lane per tenant.
    pub click_lane: clicks::Lane,
    /// Group commit of conversion events (not refunds), one lane per tenant.
    pub event_lane: attribution::events::Lane,
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
            .timeout(std::time::Duration::from_secs(15))
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
        })
    }
}

/// Entry point of `op-worker` and `openpartner worker`: reads the environment, binds,
/// serves until SIGTERM/SIGINT.
pub async fn run_from_env() -> anyhow::Result<()> {
    op_control::process::init_tracing();
    let config = Config::from_env().map_err(anyhow::Error::msg)?;
    let listener = server::Listener::bind(&config.listen).await?;
    tracing::info!(listen = %config.listen, worker_id = %config.worker_id, "worker listening");
    let app = std::sync::Arc::new(App::new(config)?);
    webhooks::delivery::spawn(app.clone());
    idempotency::spawn_sweeper(app.clone());
    server::serve(app, listener, op_control::process::shutdown_signal()).await
}
