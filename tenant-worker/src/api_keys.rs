//! Admin and scoped API keys of a tenant. The rows live in the control plane
//! (`control.api_keys`) because the gateway authenticates against them; minting and
//! revocation happen here, and revocation reaches the gateway's cache before the reply does.

use crate::{
    access::{Principal, Scope},
    context::{ts, ts_opt, Ctx, Reply},
    error::{ApiError, ErrorCode},
    pagination::{rows_body, PageRequest},
};
use deadpool_postgres::GenericClient;
use op_control::{keys, CACHE_CHANNEL};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_postgres::Row;

/// Tells every gateway (LISTEN op_cache) to forget `key_id`; sent at commit.
pub async fn notify_key(client: &impl GenericClient, key_id: &str) -> Result<(), ApiError> {
    client
        .execute(
            "SELECT pg_notify($1, $2)",
            &[&CACHE_CHANNEL, &format!("key:{key_id}")],
        )
        .await?;
    Ok(())
}

fn to_json(row: &Row) -> Value {
    let kind: String = row.get("kind");
    json!({
        "id": row.get::<_, String>("id"),
        "prefix": row.get::<_, String>("prefix"),
        "label": row.get::<_, Option<String>>("label"),
        "role": kind,
        "scopes": row.get::<_, Vec<String>>("scopes"),
        "partnerId": row.get::<_, Option<String>>("partner_id"),
        "createdAt": ts(row.get("created_at")),
        "revokedAt": ts_opt(row.get("revoked_at")),
    })
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ScopeList {
    List(Vec<String>),
    /// The original's `POST /api-keys/scoped` also takes `"a,b"`.
    Csv(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    label: Option<String>,
    scopes: Option<ScopeList>,
}

/// Validates and de-duplicates scopes, keeping the minting order.
fn parse_scopes(raw: ScopeList) -> Result<Vec<String>, ApiError> {
    let list: Vec<String> = match raw {
        ScopeList::List(l) => l,
        ScopeList::Csv(s) => s
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
    };
    if list.is_empty() {
        return Err(ApiError::new(
            400,
            ErrorCode::InvalidScope,
            "scopes must name at least one scope",
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for s in list {
        if Scope::parse(&s).is_none() {
            return Err(ApiError::new(
                400,
                ErrorCode::InvalidScope,
                format!("unknown scope `{}`", crate::context::truncate(&s, 64)),
            )
            .with("scope", s));
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

/// `POST /api-keys {label?, scopes?}`: no scopes mints an admin key.
pub async fn create(ctx: Ctx) -> Result<Reply, ApiError> {
    let body: CreateKey = ctx.json()?;
    mint(ctx, body).await
}

/// `POST /api-keys/scoped {label?, scopes}` (the original's route): scopes are required and
/// may be a comma-separated string.
pub async fn create_scoped(ctx: Ctx) -> Result<Reply, ApiError> {
    let body: CreateKey = ctx.json()?;
    if body.scopes.is_none() {
        return Err(ApiError::new(
            400,
            ErrorCode::InvalidScope,
            "scopes are required on this route",
        ));
    }
    mint(ctx, body).await
}

async fn mint(ctx: Ctx, body: CreateKey) -> Result<Reply, ApiError> {
    let label = validate_label(body.label)?;
    let kind = match body.scopes {
        None => keys::KeyKind::Admin,
        Some(raw) => keys::KeyKind::Scoped(parse_scopes(raw)?),
    };
    let tenant = ctx.tenant()?;
    let key = keys::NewKey::generate();
    let conn = ctx.conn().await?;
    let info = keys::insert(&**conn, &tenant.id, &key, &kind, label.as_deref()).await?;
    let scopes = match &kind {
        keys::KeyKind::Scoped(s) => s.clone(),
        _ => vec![],
    };
    Ok(Reply::created(json!({
        "id": info.id,
        "key": key.plaintext,
        "plaintext": key.plaintext,
        "prefix": info.prefix,
        "label": info.label,
        "role": kind.as_str(),
        "scopes": scopes,
        "createdAt": ts(info.created_at),
    })))
}

/// `GET /api-keys?scope=` lists the tenant's live admin and scoped keys.
pub async fn list(ctx: Ctx) -> Result<Reply, ApiError> {
    let page = PageRequest::from_ctx(&ctx)?;
    let scope = ctx.query_value("scope");
    if let Some(s) = &scope {
        if Scope::parse(s).is_none() {
            return Err(ApiError::invalid_query(format!(
                "unknown scope `{}`",
                crate::context::truncate(s, 64)
            )));
        }
    }
    live_keys(
        &ctx,
        &page,
        "kind IN ('admin', 'scoped') AND ($2::text IS NULL OR (kind = 'scoped' AND $2 = ANY (scopes)))",
        scope.as_deref(),
    )
    .await
}

/// One page of the tenant's live keys, newest first. `which` is the caller's fixed
/// condition on the kind of key, with `arg` as its `$2`.
async fn live_keys(
    ctx: &Ctx,
    page: &PageRequest,
    which: &'static str,
    arg: Option<&str>,
) -> Result<Reply, ApiError> {
    let tenant = ctx.tenant()?;
    let (after_t, after_id) = page.after.clone().unzip();
    let rows = ctx
        .conn()
        .await?
        .query(
            &format!(
                "SELECT id, prefix, label, kind, scopes, partner_id, created_at, revoked_at
                   FROM control.api_keys
                  WHERE tenant_id = $1 AND revoked_at IS NULL AND {which}
                    AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::text))
                  ORDER BY created_at DESC, id DESC LIMIT $5"
            ),
            &[&tenant.id, &arg, &after_t, &after_id, &page.fetch()],
        )
        .await?;
    Ok(Reply::ok(rows_body(page, "apiKeys", &rows, to_json)))
}

/// `DELETE /api-keys/:id` (admin: any key of the tenant; partner: its own partner keys):
/// effective on the very next request through any gateway.
pub async fn revoke(ctx: Ctx) -> Result<Reply, ApiError> {
    let id = ctx.id("api key")?;
    let tenant = ctx.tenant()?;
    let owner: Option<&str> = match &ctx.principal {
        Principal::Partner { partner_id, .. } => Some(partner_id),
        _ => None,
    };
    let mut conn = ctx.conn().await?;
    let tx = conn.transaction().await?;
    let row = tx
        .query_opt(
            "UPDATE control.api_keys SET revoked_at = now()
              WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL
                AND ($3::text IS NULL OR (kind = 'partner' AND partner_id = $3))
              RETURNING id, prefix, label, kind, scopes, partner_id, created_at, revoked_at",
            &[&id, &tenant.id, &owner],
        )
        .await?
        .ok_or_else(|| ApiError::no_such("live api key", &id))?;
    notify_key(&tx, &id).await?;
    tx.commit().await?;
    let key = to_json(&row);
    Ok(
        Reply::ok(json!({ "ok": true, "id": id, "revokedAt": key["revokedAt"], "apiKey": key }))
            .invalidate_keys([id]),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatePartnerKey {
    label: Option<String>,
}

fn validate_label(label: Option<String>) -> Result<Option<String>, ApiError> {
    let label = label
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty());
    if label.as_ref().is_some_and(|l| l.chars().count() > 100) {
        return Err(
            ApiError::invalid_body("label is longer than 100 characters").with("field", "label"),
        );
    }
    Ok(label)
}

/// `POST /partners/:id/api-keys {label?}` (admin or that partner): a key that acts as the partner.
pub async fn create_for_partner(ctx: Ctx) -> Result<Reply, ApiError> {
    let partner_id = ctx.id("partner")?;
    let body: CreatePartnerKey = ctx.json()?;
    let label = validate_label(body.label)?;
    let tenant = ctx.tenant()?;
    let key = keys::NewKey::generate();
    let kind = keys::KeyKind::Partner(partner_id.clone());
    let tx = ctx.tx().await?;
    // Lock the partner so a concurrent revoke cannot miss this key.
    let status: String = tx
        .one_or_404(
            "partner",
            &partner_id,
            "SELECT status FROM partners WHERE id = $1 FOR SHARE",
        )
        .await?
        .get(0);
    if status == "revoked" {
        return Err(ApiError::conflict(
            ErrorCode::PartnerRevoked,
            "a revoked partner cannot hold keys",
        ));
    }
    let info = keys::insert(tx.client(), &tenant.id, &key, &kind, label.as_deref()).await?;
    tx.commit().await?;
    Ok(Reply::created(json!({
        "id": info.id,
        "key": key.plaintext,
        "plaintext": key.plaintext,
        "prefix": info.prefix,
        "label": info.label,
        "role": "partner",
        "partnerId": partner_id,
        "scopes": [],
        "createdAt": ts(info.created_at),
    })))
}

/// `GET /partners/:id/api-keys` (admin or that partner): the partner's live keys.
pub async fn list_for_partner(ctx: Ctx) -> Result<Reply, ApiError> {
    let partner_id = ctx.id("partner")?;
    let page = PageRequest::from_ctx(&ctx)?;
    live_keys(
        &ctx,
        &page,
        "kind = 'partner' AND partner_id = $2",
        Some(&partner_id),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_validated_and_deduplicated_in_order() {
        let s = parse_scopes(ScopeList::List(vec![
            "partners:read".into(),
            "events:write".into(),
            "partners:read".into(),
        ]))
        .unwrap();
        assert_eq!(s, vec!["partners:read", "events:write"]);
        assert_eq!(
            parse_scopes(ScopeList::Csv("links:write, clicks:write".into())).unwrap(),
            vec!["links:write", "clicks:write"]
        );
        assert_eq!(
            parse_scopes(ScopeList::List(vec!["nope".into()]))
                .unwrap_err()
                .code,
            ErrorCode::InvalidScope
        );
        assert_eq!(
            parse_scopes(ScopeList::List(vec![])).unwrap_err().code,
            ErrorCode::InvalidScope
        );
    }
}
