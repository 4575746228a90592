//! Worker configuration, from environment variables (see deploy/CONFIG.md).

use std::net::SocketAddr;

#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`
    pub database_url: String,
    /// `OP_WORKER_LISTEN`, default `127.0.0.1:7001`
    pub listen: SocketAddr,
    /// `OP_WORKER_ID`, default `worker-<pid>`; reported by the health RPC.
    pub worker_id: String,
    /// `OP_DB_POOL_SIZE`, default 16
    pub pool_size: usize,
}

impl Config {
    pub fn from_env() -> Result<Config, String> {
        let database_url = std::env::var("DATABASE_URL")
            .map_err(|_| "DATABASE_URL is required (postgres://user@host:port/db)".to_string())?;
        let listen = env_or("OP_WORKER_LISTEN", "127.0.0.1:7001")
            .parse()
            .map_err(|e| format!("OP_WORKER_LISTEN: {e}"))?;
        let pool_size = env_or("OP_DB_POOL_SIZE", "16")
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or("OP_DB_POOL_SIZE must be a positive integer")?;
        Ok(Config {
            database_url,
            listen,
            worker_id: env_or("OP_WORKER_ID", &format!("worker-{}", std::process::id())),
            pool_size,
        })
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}
