//! `op-worker`: one tenant-worker process. Configured by environment (deploy/CONFIG.md).

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc; // as `openpartner` (src/main.rs)

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    op_worker::run_from_env().await
}
