//! The edge gateway: the only public listener.
//!
//! For each request it assigns a request id ([`request_id`]), classifies the path and
//! resolves the tenant ([`tenancy`]), authenticates the caller ([`auth`]), enforces the body
//! limit, and forwards an envelope over gRPC to a worker ([`workers`]). It owns no business
//! logic and no per-endpoint code: [`server`] composes these concerns in one place, one
//! function per surface, and every answer it gives without a worker is an
//! [`edge_error::EdgeError`].

pub mod auth;
pub mod config;
pub mod edge_error;
pub mod invalidation;
pub mod limits;
pub mod metrics;
pub mod origin;
pub mod portal;
pub mod request_id;
pub mod server;
pub mod tenancy;
pub mod traces;
pub mod workers;

pub use config::{Config, Mode};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("control plane: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("control plane pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
}

/// Everything a request needs, shared by all connections.
pub struct State {
    pub config: Config,
    pub pool: deadpool_postgres::Pool,
    pub tenants: tenancy::TenantCache,
    pub keys: auth::KeyCache,
    /// Session rows known to be live (a cookie's signature says who, its row says still).
    pub session_rows: auth::SessionCache,
    pub workers: Arc<workers::WorkerPool>,
    /// Single-tenant mode: the one tenant, resolved at start-up.
    pub single_tenant: Option<op_control::tenants::Tenant>,
    /// `op_session` verification keys; None when `OP_SESSION_SECRET` is unset (cookies refused).
    pub sessions: Option<op_control::sessions::SessionKeys>,
    pub limits: Arc<limits::Limits>,
    pub metrics: metrics::Metrics,
}

impl State {
    pub async fn new(config: Config) -> anyhow::Result<State> {
        let pool = op_control::db::pool(&config.database_url, config.pool_size)
            .map_err(anyhow::Error::msg)?;
        let single_tenant = match config.mode {
            Mode::Multi => None,
            Mode::Single => {
                let mut conn = pool.get().await?;
                Some(op_control::tenants::ensure_single_tenant(&mut conn).await?)
            }
        };
        let workers = Arc::new(
            workers::WorkerPool::new(
                config.workers.clone(),
                config.worker_token.as_deref(),
                config.worker_refresh,
            )
            .map_err(anyhow::Error::msg)?,
        );
        // The first look at DNS and the registry, so the gateway starts with its set.
        workers.discover(&pool).await;
        let sessions = op_control::sessions::SessionKeys::from_env();
        if sessions.is_none() {
            tracing::warn!("OP_SESSION_SECRET is unset: op_session cookies are refused");
        }
        let limits = Arc::new(limits::Limits::new(
            config.rate_limit_per_min,
            config.click_ip_cap_per_min,
            config.trusted_proxies.clone(),
        ));
        Ok(State {
            sessions,
            limits,
            metrics: Default::default(),
            config,
            pool,
            tenants: Default::default(),
            keys: Default::default(),
            session_rows: Default::default(),
            workers,
            single_tenant,
        })
    }
}

/// Entry point of `op-gateway` and `openpartner gateway`.
pub async fn run_from_env() -> anyhow::Result<()> {
    op_control::process::init_tracing("op-gateway").map_err(anyhow::Error::msg)?;
    let config = Config::from_env().map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    tracing::info!(listen = %config.listen, mode = config.mode.as_str(), workers = ?config.workers, "gateway listening");
    let state = Arc::new(State::new(config).await?);
    let served = server::serve(state, listener, op_control::process::shutdown_signal()).await;
    op_control::traces::flush().await;
    served
}
