//! Load tool (filled in below).
#[derive(Debug, clap::Args)]
pub struct BenchArgs {}
pub async fn run(_: BenchArgs) -> anyhow::Result<()> {
    Ok(())
}
