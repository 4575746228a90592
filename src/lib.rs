//! The `openpartner` operator CLI as a library: the pieces `openpartner dev`, the load tool
//! and the end-to-end test harness share.
//!
//! - [`embedded_pg`]: a private PostgreSQL cluster from the system's server binaries.
//! - [`stack`]: workers + gateway as child processes, waited on until ready.
//! - [`children`]: child processes that die with us.
//! - [`dev`]: the `openpartner dev` command; [`portal_build`]: its build of the portal (npm).
//! - [`bench`]: the load tool (`openpartner bench`).

pub mod bench;
pub mod children;
pub mod dev;
pub mod embedded_pg;
pub mod portal_build;
pub mod stack;

/// Connects one plain client (CLI commands, migrations).
pub async fn connect(database_url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(database_url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::warn!(error = %e, "database connection closed");
        }
    });
    Ok(client)
}
