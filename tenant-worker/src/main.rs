//! `op-worker`: one tenant-worker process. Configured by environment (deploy/CONFIG.md).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    op_worker::run_from_env().await
}
