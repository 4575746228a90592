//! Where tenants live on a Citus cluster, and moving one.
//!
//! With schema-based sharding (shared CITUS.md) each tenant schema is a colocation group of
//! its own, placed whole on one node; the coordinator routes every statement of a tenant
//! there. Moving a tenant is `citus_schema_move`, which copies the schema by logical
//! replication while it keeps serving and blocks writes only for the final catch-up. On
//! plain PostgreSQL there is one node: no tenant has a placement and nothing moves.

use crate::schema::Schema;
use std::collections::HashMap;
use tokio_postgres::GenericClient;

/// Whether the database is a Citus coordinator (the extension is installed).
pub async fn is_citus(client: &impl GenericClient) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'citus'", &[])
        .await?
        .is_some())
}

/// The node (`host:port`) holding each of `schemas` that is a distributed schema. Empty on
/// plain PostgreSQL; a schema missing from the map has no placement (not distributed).
pub async fn nodes_of(
    client: &impl GenericClient,
    schemas: &[String],
) -> Result<HashMap<String, String>, tokio_postgres::Error> {
    if schemas.is_empty() || !is_citus(client).await? {
        return Ok(HashMap::new());
    }
    // The catalogs, not the `citus_shards` view: that one measures every shard's size on
    // every node, a round of connections per call.
    let rows = client
        .query(
            "SELECT n.nspname::text, node.nodename, node.nodeport
               FROM pg_dist_schema ds
               JOIN pg_namespace n ON n.oid = ds.schemaid
               JOIN LATERAL (SELECT pl.groupid
                               FROM pg_dist_partition dp
                               JOIN pg_dist_shard sh ON sh.logicalrelid = dp.logicalrelid
                               JOIN pg_dist_placement pl ON pl.shardid = sh.shardid
                              WHERE dp.colocationid = ds.colocationid
                              LIMIT 1) g ON true
               JOIN pg_dist_node node ON node.groupid = g.groupid AND node.noderole = 'primary'
              WHERE n.nspname = ANY($1)",
            &[&schemas],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let (host, port): (String, i32) = (r.get(1), r.get(2));
            (r.get(0), format!("{host}:{port}"))
        })
        .collect())
}

/// The active primary nodes that can hold tenants (`host:port`), in the cluster's order.
pub async fn nodes(client: &impl GenericClient) -> Result<Vec<String>, tokio_postgres::Error> {
    if !is_citus(client).await? {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            "SELECT nodename, nodeport FROM pg_dist_node
              WHERE noderole = 'primary' AND isactive AND shouldhaveshards ORDER BY nodeid",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| format!("{}:{}", r.get::<_, String>(0), r.get::<_, i32>(1)))
        .collect())
}

/// Why a tenant cannot be moved where asked.
#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("the database is not a Citus cluster: there is nowhere to move a tenant")]
    NotCitus,
    #[error("`{0}` is not host:port")]
    BadTarget(String),
    #[error("no active node `{target}` that holds tenants (nodes: {known})")]
    UnknownNode { target: String, known: String },
    #[error("the tenant's schema is not distributed (created before Citus?)")]
    NotDistributed,
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
}

impl MoveError {
    /// The code the operator CLI prints before the reason (`<code>: <detail>`).
    pub fn code(&self) -> &'static str {
        match self {
            MoveError::NotCitus => "not_citus",
            MoveError::BadTarget(_) => "invalid_target",
            MoveError::UnknownNode { .. } => "node_not_found",
            MoveError::NotDistributed => "not_distributed",
            MoveError::Db(_) => "database_error",
        }
    }
}

/// Where a move started and ended.
pub struct Moved {
    pub from: String,
    pub to: String,
    /// `false` when the tenant already was on the target node (nothing was copied).
    pub moved: bool,
}

/// Moves the tenant's schema to the node `target` (`host:port`) while it serves:
/// `citus_schema_move` with the default transfer mode, logical replication for tables with a
/// replica identity (every tenant table has a primary key), so writes are blocked only while
/// the last changes are applied. Not inside a transaction (Citus refuses that for a move).
pub async fn move_schema(
    client: &impl GenericClient,
    schema: &Schema,
    target: &str,
) -> Result<Moved, MoveError> {
    if !is_citus(client).await? {
        return Err(MoveError::NotCitus);
    }
    let (host, port) = target
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<i32>().ok()?)))
        .filter(|(h, _)| !h.is_empty())
        .ok_or_else(|| MoveError::BadTarget(target.to_string()))?;
    let known = nodes(client).await?;
    let target = format!("{host}:{port}");
    if !known.contains(&target) {
        return Err(MoveError::UnknownNode {
            target,
            known: known.join(", "),
        });
    }
    let from = nodes_of(client, &[schema.name().to_string()])
        .await?
        .remove(schema.name())
        .ok_or(MoveError::NotDistributed)?;
    if from == target {
        return Ok(Moved {
            from,
            to: target,
            moved: false,
        });
    }
    client
        .execute(
            "SELECT citus_schema_move($1::text::regnamespace, $2::text, $3::int)",
            &[&schema.name(), &host, &port],
        )
        .await?;
    Ok(Moved {
        from,
        to: target,
        moved: true,
    })
}
