//! `op-gateway`: the public edge. Configured by environment (deploy/CONFIG.md).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    op_gateway::run_from_env().await
}
