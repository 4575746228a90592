//! Operator endpoints (`/platform/...`, bearer `OP_PLATFORM_KEY`, multi-tenant mode):
//! provisioning, listing, suspending and resuming tenants.

use crate::{
    context::{Ctx, Reply, Timestamp},
    error::{ApiError, ErrorCode},
    openapi::Op,
    pagination::{page_body, PageRequest},
    sessions,
};
use op_control::{placement, schema::schema_name, tenants, ControlError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A tenant, as the operator sees it.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct TenantView {
    id: String,
    /// In the tenant's URLs: `/api/t/<slug>/...`, `/r/<slug>/<linkKey>`.
    slug: String,
    name: String,
    /// `active`, or `suspended` (its API and click router answer `403 tenant_suspended`).
    #[schemars(extend("enum" = ["active", "suspended"]))]
    status: String,
    created_at: Timestamp,
    /// On a Citus cluster, the node holding the tenant's schema (`host:port`, what
    /// `openpartner tenants move --to` takes); `null` on plain PostgreSQL.
    node: Option<String>,
}

impl TenantView {
    fn of(t: &tenants::Tenant, nodes: &HashMap<String, String>) -> TenantView {
        TenantView {
            id: t.id.clone(),
            slug: t.slug.clone(),
            name: t.name.clone(),
            status: t.status.clone(),
            created_at: Timestamp(t.created_at),
            node: nodes.get(&schema_name(&t.id)).cloned(),
        }
    }
}

/// The Citus node of each of `list` by schema name (empty on plain PostgreSQL).
async fn nodes(
    client: &impl tokio_postgres::GenericClient,
    list: &[&tenants::Tenant],
) -> Result<HashMap<String, String>, ApiError> {
    let schemas: Vec<String> = list.iter().map(|t| schema_name(&t.id)).collect();
    Ok(placement::nodes_of(client, &schemas).await?)
}

/// `POST /platform/tenants` answers the tenant and its first admin key.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct CreatedTenant {
    tenant: TenantView,
    /// The tenant's first admin key (`op_` + 48 hex characters): shown this once.
    admin_key: String,
}

#[derive(Serialize, JsonSchema)]
struct TenantChanged {
    ok: bool,
    tenant: TenantView,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateTenant {
    /// Lower-case letters, digits and `-`, 2 to 40 characters, not one of the reserved
    /// slugs (`default`, `api`, `admin`, `auth`, `platform`, `network`, `www`, `app`,
    /// `static`, `health`, `ready`, `metrics`).
    #[schemars(regex(pattern = "^[a-z0-9][a-z0-9-]{1,39}$"))]
    slug: String,
    /// At most 200 characters (trimmed; blank or missing is the slug).
    #[schemars(length(max = 200))]
    name: Option<String>,
    /// The first human admin, who signs in with a magic link (no mail is sent: they ask
    /// for a sign-in link).
    #[schemars(email, length(max = 254))]
    admin_email: Option<String>,
}

pub fn create_tenant_doc() -> Op {
    Op::new("Provision a tenant")
        .describe("Creates the tenant's schema with every migration and mints its first admin key, in one transaction.")
        .body::<CreateTenant>()
        .ok::<CreatedTenant>(201, "The new tenant and its first admin key.")
        .errors(400, &[ErrorCode::InvalidSlug, ErrorCode::SlugReserved])
        .errors(409, &[ErrorCode::SlugTaken])
}

pub fn list_tenants_doc() -> Op {
    Op::new("List tenants").page::<TenantView>("tenants")
}

pub fn suspend_doc() -> Op {
    Op::new("Suspend a tenant")
        .describe("Its API and click router answer `403 tenant_suspended` until it is resumed (at once on every gateway). Suspending a suspended tenant is no error.")
        .ok::<TenantChanged>(200, "The tenant, `suspended`.")
        .errors(404, &[ErrorCode::TenantNotFound])
}

pub fn resume_doc() -> Op {
    Op::new("Resume a suspended tenant")
        .describe("Resuming an active tenant is no error.")
        .ok::<TenantChanged>(200, "The tenant, `active`.")
        .errors(404, &[ErrorCode::TenantNotFound])
}

/// One worker of the set a gateway routes to (`GET /platform/workers`, answered by the
/// gateway itself: the set is its own; `op_gateway::workers::WorkerView` writes it).
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // the document's shape of the gateway's answer
struct WorkerView {
    /// The worker's `OP_WORKER_ID` once it answered a probe (before: its registry id, or its URL).
    id: String,
    /// The gRPC URL the gateway calls.
    url: String,
    /// Where the gateway learnt of it: `OP_WORKERS` (`static`), a `dns:` entry, the registry.
    #[schemars(extend("enum" = ["static", "dns", "registry"]))]
    source: String,
    /// `serving` (in rotation), `draining` (SIGTERM: no new requests), `down` (no answer).
    #[schemars(extend("enum" = ["serving", "draining", "down"]))]
    health: String,
    /// Requests this gateway has in flight on it now.
    in_flight: u64,
    /// When it last answered this gateway's health probe; null if never.
    last_seen_at: Option<Timestamp>,
}

#[derive(Serialize, JsonSchema)]
#[allow(dead_code)]
struct WorkerSet {
    workers: Vec<WorkerView>,
}

pub fn workers_doc() -> Op {
    Op::new("List the workers this gateway routes to")
        .describe("Answered by the gateway that receives the request, from its own view: the workers of its `OP_WORKERS` sources (static URLs, DNS names, the registry) with the health of its last probe and its requests in flight on each.")
        .ok::<WorkerSet>(200, "The gateway's worker set.")
}

/// `GET /platform/workers` reaching a worker: only a gateway knows its set (it answers the
/// route itself), so a worker called directly says so.
pub async fn workers(_: Ctx) -> Result<Reply, ApiError> {
    Err(ApiError::new(
        503,
        ErrorCode::Unavailable,
        "the worker set is answered by a gateway; ask a gateway",
    ))
}

/// A tenant to provision, checked: what `POST /platform/tenants` and `openpartner tenants
/// create` both accept, with the same error codes.
pub struct NewTenant {
    pub slug: String,
    /// Trimmed; the slug when none is given.
    pub name: String,
    /// Normalized (trimmed, lower case).
    pub admin_email: Option<String>,
}

impl NewTenant {
    pub fn check(
        slug: String,
        name: Option<String>,
        admin_email: Option<&str>,
    ) -> Result<NewTenant, ApiError> {
        if tenants::RESERVED_SLUGS.contains(&slug.as_str()) {
            return Err(ApiError::new(
                400,
                ErrorCode::SlugReserved,
                format!("`{slug}` is reserved"),
            ));
        }
        if !tenants::valid_slug(&slug) {
            return Err(ApiError::new(
                400,
                ErrorCode::InvalidSlug,
                "slug must match ^[a-z0-9][a-z0-9-]{1,39}$",
            ));
        }
        let name = name
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| slug.clone());
        if name.chars().count() > 200 {
            return Err(
                ApiError::invalid_body("name is longer than 200 characters").with("field", "name")
            );
        }
        let admin_email = admin_email.map(sessions::normalize_email).transpose()?;
        Ok(NewTenant {
            slug,
            name,
            admin_email,
        })
    }
}

/// `POST /platform/tenants {slug, name, adminEmail?}`
pub async fn create_tenant(ctx: Ctx) -> Result<Reply, ApiError> {
    let body: CreateTenant = ctx.json()?;
    let NewTenant {
        slug,
        name,
        admin_email,
    } = NewTenant::check(body.slug, body.name, body.admin_email.as_deref())?;
    let mut conn = ctx.conn().await?;
    let provisioned =
        match tenants::provision(&mut conn, &slug, &name, admin_email.as_deref()).await {
            Ok(p) => p,
            Err(ControlError::SlugTaken) => {
                return Err(ApiError::conflict(
                    ErrorCode::SlugTaken,
                    format!("`{slug}` is taken"),
                ))
            }
            Err(e) => return Err(e.into()),
        };
    let nodes = nodes(&**conn, &[&provisioned.tenant]).await?;
    // The backend that created a schema keeps cache entries for its ~100 new relations;
    // kept in the pool, a connection would carry them (hundreds of MB after thousands of
    // tenants) into every request it serves. Closed instead; the pool opens a fresh one.
    drop(deadpool_postgres::Object::take(conn));
    tracing::info!(tenant_id = %provisioned.tenant.id, slug = %slug, "tenant provisioned");
    let created = CreatedTenant {
        tenant: TenantView::of(&provisioned.tenant, &nodes),
        admin_key: provisioned.admin_key,
    };
    Ok(Reply::typed(201, &created).invalidate_tenant(&slug))
}

/// `GET /platform/tenants`
pub async fn list_tenants(ctx: Ctx) -> Result<Reply, ApiError> {
    let page = PageRequest::from_ctx(&ctx)?;
    let conn = ctx.conn().await?;
    let list = tenants::list(&**conn, page.after.clone(), page.fetch()).await?;
    let nodes = nodes(&**conn, &list.iter().collect::<Vec<_>>()).await?;
    let items = list
        .iter()
        .map(|t| {
            let v = serde_json::to_value(TenantView::of(t, &nodes)).unwrap_or_default();
            (t.created_at, t.id.clone(), v)
        })
        .collect();
    Ok(Reply::ok(page_body(&page, "tenants", items)))
}

async fn set_status(ctx: Ctx, status: &str) -> Result<Reply, ApiError> {
    let slug = ctx.param("slug").to_string();
    let mut conn = ctx.conn().await?;
    let tenant = tenants::set_status(&mut conn, &slug, status)
        .await?
        .ok_or_else(|| ApiError::new(404, ErrorCode::TenantNotFound, "no tenant with this slug"))?;
    let nodes = nodes(&**conn, &[&tenant]).await?;
    let changed = TenantChanged {
        ok: true,
        tenant: TenantView::of(&tenant, &nodes),
    };
    Ok(Reply::typed(200, &changed).invalidate_tenant(&slug))
}

/// `POST /platform/tenants/:slug/suspend`
pub async fn suspend(ctx: Ctx) -> Result<Reply, ApiError> {
    set_status(ctx, "suspended").await
}

/// `POST /platform/tenants/:slug/resume`
pub async fn resume(ctx: Ctx) -> Result<Reply, ApiError> {
    set_status(ctx, "active").await
}
