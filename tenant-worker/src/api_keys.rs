//! Admin and scoped API keys of a tenant. The rows live in the control plane
//! (`control.api_keys`) because the gateway authenticates against them; minting and
//! revocation happen here, and revocation reaches the gateway's cache before the reply does.

use crate::{
    access::{Principal, Scope},
    context::{Ctx, Reply, Timestamp},
    error::{ApiError, ErrorCode},
    openapi::Op,
    pagination::{rows_body, PageRequest},
};
use deadpool_postgres::GenericClient;
use op_control::{keys, CACHE_CHANNEL};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::borrow::Cow;
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

/// An API key as listed to its owners: never the plaintext nor its hash.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyView {
    id: String,
    /// The 8 characters after `op_`, to recognise the key by.
    prefix: String,
    label: Option<String>,
    /// `admin` (acts as an admin), `scoped` (only its `scopes`) or `partner` (acts as the
    /// partner `partnerId`).
    #[schemars(extend("enum" = ["admin", "scoped", "partner"]))]
    role: String,
    /// A scoped key's scopes, in minting order; empty for the other kinds.
    scopes: Vec<String>,
    /// The partner a partner key acts as; null for the other kinds.
    partner_id: Option<String>,
    created_at: Timestamp,
    /// Null while the key is live.
    revoked_at: Option<Timestamp>,
}

impl ApiKeyView {
    fn from_row(row: &Row) -> ApiKeyView {
        ApiKeyView {
            id: row.get("id"),
            prefix: row.get("prefix"),
            label: row.get("label"),
            role: row.get("kind"),
            scopes: row.get("scopes"),
            partner_id: row.get("partner_id"),
            created_at: Timestamp(row.get("created_at")),
            revoked_at: row.get::<_, Option<_>>("revoked_at").map(Timestamp),
        }
    }
}

fn to_json(row: &Row) -> Value {
    serde_json::to_value(ApiKeyView::from_row(row)).unwrap_or_default()
}

/// A new admin or scoped key: the only time its plaintext is shown.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct CreatedApiKey {
    id: String,
    /// The key itself (`op_` + 48 hex characters): shown this once, store it now.
    key: String,
    /// The same as `key` (the original's name).
    plaintext: String,
    /// The 8 characters after `op_`.
    prefix: String,
    label: Option<String>,
    /// `admin` without scopes, else `scoped`.
    #[schemars(extend("enum" = ["admin", "scoped"]))]
    role: &'static str,
    /// The scopes, de-duplicated in the order given; empty for an admin key.
    scopes: Vec<String>,
    created_at: Timestamp,
}

/// A new partner key: the only time its plaintext is shown.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct CreatedPartnerKey {
    id: String,
    /// The key itself (`op_` + 48 hex characters): shown this once, store it now.
    key: String,
    /// The same as `key` (the original's name).
    plaintext: String,
    /// The 8 characters after `op_`.
    prefix: String,
    label: Option<String>,
    /// Always `partner`.
    #[schemars(extend("enum" = ["partner"]))]
    role: &'static str,
    partner_id: String,
    /// Always empty: a partner key acts as its partner.
    #[schemars(length(max = 0))]
    scopes: Vec<String>,
    created_at: Timestamp,
}

/// `DELETE /api-keys/:id` answers the revoked key.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct RevokedApiKey {
    ok: bool,
    id: String,
    revoked_at: Option<Timestamp>,
    api_key: ApiKeyView,
}

/// Scopes: a list, or (the original's form) a comma-separated string.
#[derive(Deserialize)]
#[serde(untagged)]
enum ScopeList {
    List(Vec<String>),
    /// The original's `POST /api-keys/scoped` also takes `"a,b"`.
    Csv(String),
}

impl JsonSchema for ScopeList {
    fn schema_name() -> Cow<'static, str> {
        "ScopeList".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
        let one = names.join("|");
        json_schema!({
            "description": "At least one scope (duplicates are dropped), as a list or as a comma-separated string.",
            "anyOf": [
                {"type": "array", "minItems": 1, "items": {"type": "string", "enum": names}},
                {"type": "string", "pattern": format!("^ *({one})( *, *({one}))* *$")},
            ],
        })
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateApiKey {
    /// A name for people, at most 100 characters (trimmed; blank is none).
    #[schemars(length(max = 100))]
    label: Option<String>,
    /// The scopes of a scoped key; without them (or null) the key is an admin key.
    scopes: Option<ScopeList>,
}

/// The body of `POST /api-keys/scoped`: `scopes` are required.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateScopedApiKey {
    /// A name for people, at most 100 characters (trimmed; blank is none).
    #[schemars(length(max = 100))]
    label: Option<String>,
    /// Required here (missing or null is `400 invalid_scope`).
    #[schemars(required, with = "ScopeList")]
    scopes: Option<ScopeList>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreatePartnerApiKey {
    /// A name for people, at most 100 characters (trimmed; blank is none).
    #[schemars(length(max = 100))]
    label: Option<String>,
}

pub fn create_doc() -> Op {
    Op::new("Create an admin or scoped API key")
        .describe("Without `scopes` the key is an admin key; with them, a scoped key that may call only the routes of its scopes. The plaintext is in this answer only.")
        .optional_body::<CreateApiKey>()
        .ok::<CreatedApiKey>(201, "The new key, with its plaintext.")
        .errors(400, &[ErrorCode::InvalidScope])
}

pub fn create_scoped_doc() -> Op {
    Op::new("Create a scoped API key")
        .describe("The original's route: `POST /api-keys` with `scopes` required (a comma-separated string is accepted too).")
        .body::<CreateScopedApiKey>()
        .ok::<CreatedApiKey>(201, "The new key, with its plaintext.")
        .errors(400, &[ErrorCode::InvalidScope])
}

pub fn list_doc() -> Op {
    Op::new("List the live admin and scoped API keys")
        .query(
            "scope",
            "Only the scoped keys that hold this scope.",
            json!({"type": "string", "enum": Scope::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()}),
        )
        .page::<ApiKeyView>("apiKeys")
}

pub fn revoke_doc() -> Op {
    Op::new("Revoke an API key")
        .describe("Effective on the very next request. An admin may revoke any key of the tenant; a partner only its own partner keys (any other key is `404`).")
        .ok::<RevokedApiKey>(200, "The revoked key.")
        .errors(404, &[ErrorCode::NotFound])
}

pub fn create_for_partner_doc() -> Op {
    Op::new("Create a partner API key")
        .describe("A key that acts as the partner (admin, or that partner itself). The plaintext is in this answer only.")
        .optional_body::<CreatePartnerApiKey>()
        .ok::<CreatedPartnerKey>(201, "The new key, with its plaintext.")
        .errors(404, &[ErrorCode::NotFound])
        .errors(409, &[ErrorCode::PartnerRevoked])
}

pub fn list_for_partner_doc() -> Op {
    Op::new("List a partner's live API keys")
        .page::<ApiKeyView>("apiKeys")
        .errors(404, &[ErrorCode::NotFound])
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
    let body: CreateApiKey = ctx.json()?;
    mint(ctx, body).await
}

/// `POST /api-keys/scoped {label?, scopes}` (the original's route): scopes are required and
/// may be a comma-separated string.
pub async fn create_scoped(ctx: Ctx) -> Result<Reply, ApiError> {
    let body: CreateScopedApiKey = ctx.json()?;
    if body.scopes.is_none() {
        return Err(ApiError::new(
            400,
            ErrorCode::InvalidScope,
            "scopes are required on this route",
        ));
    }
    let body = CreateApiKey {
        label: body.label,
        scopes: body.scopes,
    };
    mint(ctx, body).await
}

async fn mint(ctx: Ctx, body: CreateApiKey) -> Result<Reply, ApiError> {
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
    Ok(Reply::typed(
        201,
        &CreatedApiKey {
            id: info.id,
            key: key.plaintext.clone(),
            plaintext: key.plaintext,
            prefix: info.prefix,
            label: info.label,
            role: kind.as_str(),
            scopes,
            created_at: Timestamp(info.created_at),
        },
    ))
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
    let key = ApiKeyView::from_row(&row);
    let reply = RevokedApiKey {
        ok: true,
        id: id.clone(),
        revoked_at: key.revoked_at,
        api_key: key,
    };
    Ok(Reply::typed(200, &reply).invalidate_keys([id]))
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
    let body: CreatePartnerApiKey = ctx.json()?;
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
    Ok(Reply::typed(
        201,
        &CreatedPartnerKey {
            id: info.id,
            key: key.plaintext.clone(),
            plaintext: key.plaintext,
            prefix: info.prefix,
            label: info.label,
            role: "partner",
            partner_id,
            scopes: vec![],
            created_at: Timestamp(info.created_at),
        },
    ))
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
