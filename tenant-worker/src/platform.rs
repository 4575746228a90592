//! Operator endpoints (`/platform/...`, bearer `OP_PLATFORM_KEY`, multi-tenant mode):
//! provisioning, listing, suspending and resuming tenants.

use crate::{
    context::{ts, Ctx, Reply},
    error::{ApiError, ErrorCode},
    pagination::{page_body, PageRequest},
    sessions,
};
use op_control::{tenants, ControlError};
use serde::Deserialize;
use serde_json::{json, Value};

fn to_json(t: &tenants::Tenant) -> Value {
    json!({
        "id": t.id,
        "slug": t.slug,
        "name": t.name,
        "status": t.status,
        "createdAt": ts(t.created_at),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateTenant {
    slug: String,
    name: Option<String>,
    admin_email: Option<String>,
}

/// `POST /platform/tenants {slug, name, adminEmail?}`
pub async fn create_tenant(ctx: Ctx) -> Result<Reply, ApiError> {
    let body: CreateTenant = ctx.json()?;
    let slug = body.slug;
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
    let name = body
        .name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| slug.clone());
    if name.chars().count() > 200 {
        return Err(
            ApiError::invalid_body("name is longer than 200 characters").with("field", "name")
        );
    }
    let admin_email = body
        .admin_email
        .as_deref()
        .map(sessions::normalize_email)
        .transpose()?;
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
    tracing::info!(tenant_id = %provisioned.tenant.id, slug = %slug, "tenant provisioned");
    Ok(Reply::created(json!({
        "tenant": to_json(&provisioned.tenant),
        "adminKey": provisioned.admin_key,
    }))
    .invalidate_tenant(&slug))
}

/// `GET /platform/tenants`
pub async fn list_tenants(ctx: Ctx) -> Result<Reply, ApiError> {
    let page = PageRequest::from_ctx(&ctx)?;
    let conn = ctx.conn().await?;
    let list = tenants::list(&**conn, page.after.clone(), page.fetch()).await?;
    let items = list
        .iter()
        .map(|t| (t.created_at, t.id.clone(), to_json(t)))
        .collect();
    Ok(Reply::ok(page_body(&page, "tenants", items)))
}

async fn set_status(ctx: Ctx, status: &str) -> Result<Reply, ApiError> {
    let slug = ctx.param("slug").to_string();
    let mut conn = ctx.conn().await?;
    let tenant = tenants::set_status(&mut conn, &slug, status)
        .await?
        .ok_or_else(|| ApiError::new(404, ErrorCode::TenantNotFound, "no tenant with this slug"))?;
    Ok(Reply::ok(json!({ "ok": true, "tenant": to_json(&tenant) })).invalidate_tenant(&slug))
}

/// `POST /platform/tenants/:slug/suspend`
pub async fn suspend(ctx: Ctx) -> Result<Reply, ApiError> {
    set_status(ctx, "suspended").await
}

/// `POST /platform/tenants/:slug/resume`
pub async fn resume(ctx: Ctx) -> Result<Reply, ApiError> {
    set_status(ctx, "active").await
}
