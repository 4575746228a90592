//! The tenant registry: slugs, status, and the schema each tenant lives in.

use crate::{keys, migrations, schema::Schema, ControlError, CACHE_CHANNEL};
use chrono::{DateTime, Utc};
use tokio_postgres::{Client, GenericClient, Row};

/// Slugs that would shadow a route or confuse people.
pub const RESERVED_SLUGS: &[&str] = &[
    "default", "api", "admin", "auth", "platform", "network", "www", "app", "static", "health",
    "ready", "metrics",
];

/// The tenant of single-tenant (self-host) mode. `default` is reserved, so it can never
/// collide with a hosted tenant.
pub const SINGLE_TENANT_SLUG: &str = "default";

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

impl Tenant {
    fn from_row(row: &Row) -> Tenant {
        Tenant {
            id: row.get("id"),
            slug: row.get("slug"),
            name: row.get("name"),
            status: row.get("status"),
            created_at: row.get("created_at"),
        }
    }

    pub fn is_active(&self) -> bool {
        self.status == "active"
    }
}

/// `^[a-z0-9][a-z0-9-]{1,39}$`
pub fn valid_slug(slug: &str) -> bool {
    let b = slug.as_bytes();
    (2..=40).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

const COLUMNS: &str = "id, slug, name, status, created_at";

pub async fn find_by_slug(
    client: &impl GenericClient,
    slug: &str,
) -> Result<Option<Tenant>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM control.tenants WHERE slug = $1"),
            &[&slug],
        )
        .await?;
    Ok(row.as_ref().map(Tenant::from_row))
}

/// A page of tenants, newest first, strictly after the `(created_at, id)` cursor position.
pub async fn list(
    client: &impl GenericClient,
    after: Option<(DateTime<Utc>, String)>,
    limit: i64,
) -> Result<Vec<Tenant>, tokio_postgres::Error> {
    let rows = match after {
        Some((ts, id)) => {
            client
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM control.tenants WHERE (created_at, id) < ($1, $2)
                         ORDER BY created_at DESC, id DESC LIMIT $3"
                    ),
                    &[&ts, &id, &limit],
                )
                .await?
        }
        None => {
            client
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM control.tenants ORDER BY created_at DESC, id DESC LIMIT $1"
                    ),
                    &[&limit],
                )
                .await?
        }
    };
    Ok(rows.iter().map(Tenant::from_row).collect())
}

/// Sets `status` and announces the change. Returns the tenant as it is now, or None if the slug is unknown.
pub async fn set_status(
    client: &mut Client,
    slug: &str,
    status: &str,
) -> Result<Option<Tenant>, ControlError> {
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            &format!(
                "UPDATE control.tenants SET status = $2, updated_at = now() WHERE slug = $1 RETURNING {COLUMNS}"
            ),
            &[&slug, &status],
        )
        .await?;
    if row.is_some() {
        notify_tenant(&tx, slug).await?;
    }
    tx.commit().await?;
    Ok(row.as_ref().map(Tenant::from_row))
}

pub async fn notify_tenant(
    client: &impl GenericClient,
    slug: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "SELECT pg_notify($1, $2)",
            &[&CACHE_CHANNEL, &format!("tenant:{slug}")],
        )
        .await?;
    Ok(())
}

/// A new tenant and the plaintext of its first admin key (shown once).
pub struct Provisioned {
    pub tenant: Tenant,
    pub admin_key: String,
}

/// Creates the tenant row, its schema with every tenant migration, and its first admin key,
/// all in one transaction: a tenant either exists completely or not at all.
pub async fn provision(
    client: &mut Client,
    slug: &str,
    name: &str,
    admin_email: Option<&str>,
) -> Result<Provisioned, ControlError> {
    let id = ulid::Ulid::new().to_string();
    let schema = Schema::of_tenant(&id).expect("a fresh ULID is a tenant id");
    let tx = client.transaction().await?;
    // Citus: the schema created in this transaction becomes a distributed schema (one
    // tenant, one node). Plain Postgres takes it as a harmless placeholder setting.
    // Pipelined with the tenant row (one round trip; `query_typed` needs no prepare).
    let insert = format!(
        "INSERT INTO control.tenants (id, slug, name, schema_name, admin_email)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (slug) DO NOTHING RETURNING {COLUMNS}"
    );
    let text = tokio_postgres::types::Type::TEXT;
    let (sharding, rows) = futures::future::join(
        tx.simple_query("SET LOCAL citus.enable_schema_based_sharding = on"),
        tx.query_typed(
            &insert,
            &[
                (&id, text.clone()),
                (&slug, text.clone()),
                (&name, text.clone()),
                (&schema.name(), text.clone()),
                (&admin_email, text.clone()),
            ],
        ),
    )
    .await;
    sharding?;
    let Some(row) = rows?.into_iter().next() else {
        return Err(ControlError::SlugTaken);
    };
    let tenant = Tenant::from_row(&row);
    // The schema and all its tables in one round trip (CREATE SCHEMA as its own query,
    // CITUS rule 7), then the first admin and key.
    let create = format!("CREATE SCHEMA {schema}");
    let (created, tables) = futures::future::join(
        tx.simple_query(&create),
        migrations::create_tenant_schema(&tx, &id, &schema),
    )
    .await;
    created?;
    tables?;
    if let Some(email) = admin_email {
        // The first human admin; signs in with a magic link (search_path is the new schema).
        tx.query_typed(
            "INSERT INTO admins (id, email, status) VALUES ($1, $2, 'invited')",
            &[
                (&ulid::Ulid::new().to_string(), text.clone()),
                (&email, text.clone()),
            ],
        )
        .await?;
    }
    let key = keys::NewKey::generate();
    keys::insert(&tx, &id, &key, &keys::KeyKind::Admin, Some("provisioning")).await?;
    // A negative cache entry for this slug may exist in some gateway.
    notify_tenant(&tx, slug).await?;
    tx.commit().await?;
    Ok(Provisioned {
        tenant,
        admin_key: key.plaintext,
    })
}

/// Single-tenant mode: the one tenant, created on first start.
pub async fn ensure_single_tenant(client: &mut Client) -> Result<Tenant, ControlError> {
    if let Some(t) = find_by_slug(&*client, SINGLE_TENANT_SLUG).await? {
        return Ok(t);
    }
    match provision(client, SINGLE_TENANT_SLUG, "Default", None).await {
        Ok(p) => Ok(p.tenant),
        // Another process won the race: fine, it is there now.
        Err(ControlError::SlugTaken) => Ok(find_by_slug(&*client, SINGLE_TENANT_SLUG)
            .await?
            .expect("tenant exists after slug conflict")),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_rules() {
        for ok in ["ab", "acme", "a1-b2", "0abc", &"a".repeat(40)] {
            assert!(valid_slug(ok), "{ok}");
        }
        for bad in [
            "a",
            "-ab",
            "Acme",
            "ac_me",
            "ac me",
            &"a".repeat(41),
            "",
            "é-a",
        ] {
            assert!(!valid_slug(bad), "{bad}");
        }
    }
}
