//! The `openpartner` operator CLI as a library: the pieces `openpartner dev`, the load tool
//! and the end-to-end test harness share.
//!
//! - [`embedded_pg`]: a private PostgreSQL cluster from the system's server binaries.
//! - [`stack`]: workers + gateway as child processes, waited on until ready.
//! - [`children`]: child processes that die with us.
//! - [`dev`]: the `openpartner dev` command; [`portal_build`]: its build of the portal (npm).
//! - [`bench`]: the load tool (`openpartner bench`).
//! - [`operator`]: `tenants`, `workers`, `migrate --status` for operators.

pub mod bench;
pub mod children;
pub mod dev;
pub mod embedded_pg;
pub mod operator;
pub mod portal_build;
pub mod stack;

/// Connects one client (CLI commands, migrations), with TLS as `DATABASE_URL` says.
pub async fn connect(database_url: &str) -> anyhow::Result<tokio_postgres::Client> {
    op_control::db::connect(database_url)
        .await
        .map_err(anyhow::Error::msg)
}
