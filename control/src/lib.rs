//! The control plane shared by the gateway, the workers and the operator CLI.
//!
//! It owns everything that is not inside one tenant's schema: connection pools, the
//! migration runner (control schema and every tenant schema), the tenant registry and the
//! API key store. The gateway reads it to resolve and authenticate; the workers write it
//! (provisioning, key minting and revocation) and announce changes on [`CACHE_CHANNEL`].
//! It also holds the configuration rules every binary shares: [`env`](mod@env) and the [`Mode`].

pub mod db;
pub mod env;
pub mod error_code;
pub mod keys;
pub mod logs;
pub mod migrations;
pub mod mode;
pub mod pending_work;
pub mod pg_tls;
pub mod placement;
pub mod process;
pub mod schema;
pub mod sessions;
pub mod tenants;
pub mod traces;
pub mod worker_token;
pub mod workers;

pub use error_code::ErrorCode;
pub use mode::Mode;

/// `LISTEN`/`NOTIFY` channel on which writers announce stale gateway cache entries.
/// Payloads are `tenant:<slug>`, `key:<key id>` or `session:<session id>`.
pub const CACHE_CHANNEL: &str = "op_cache";

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("`{0}` is not a tenant id")]
    InvalidTenantId(String),
    #[error("slug already taken")]
    SlugTaken,
    #[error("migration {name}: {source}")]
    Migration {
        name: String,
        source: tokio_postgres::Error,
    },
    /// A connection could not be opened ([`db::connect`]'s description).
    #[error("{0}")]
    Connect(String),
}
