//! The tenant's human admins. They sign in with magic links; headless admins are API keys.
//! The provisioning `adminEmail` becomes the first one; admins invite the others.

use crate::{
    context::{ts, ts_opt, Ctx, Reply},
    error::{ApiError, ErrorCode},
    mail,
    pagination::newest_first,
    sessions,
};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_postgres::Row;

pub const COLUMNS: &str =
    "id, email, name, status, activated_at, revoked_at, created_at, updated_at";

pub fn to_json(row: &Row) -> Value {
    json!({
        "id": row.get::<_, String>("id"),
        "email": row.get::<_, String>("email"),
        "name": row.get::<_, Option<String>>("name"),
        "status": row.get::<_, String>("status"),
        "activatedAt": ts_opt(row.get("activated_at")),
        "revokedAt": ts_opt(row.get("revoked_at")),
        "createdAt": ts(row.get("created_at")),
        "updatedAt": ts(row.get("updated_at")),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateAdmin {
    email: String,
    name: Option<String>,
    send_invite: Option<bool>,
}

/// `POST /admins {email, name?, sendInvite?=true}`: invites another admin.
pub async fn create(ctx: Ctx) -> Result<Reply, ApiError> {
    let body: CreateAdmin = ctx.json()?;
    let email = sessions::normalize_email(&body.email)?;
    let name = body
        .name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if name.as_ref().is_some_and(|n| n.chars().count() > 200) {
        return Err(
            ApiError::invalid_body("name is longer than 200 characters").with("field", "name")
        );
    }
    let id = ulid::Ulid::new().to_string();
    let tx = ctx.tx().await?;
    let row = tx
        .query_opt(
            &format!(
                "INSERT INTO admins (id, email, name, status) VALUES ($1, $2, $3, 'invited')
                 ON CONFLICT (email) DO NOTHING RETURNING {COLUMNS}"
            ),
            &[&id, &email, &name],
        )
        .await?
        .ok_or_else(|| {
            ApiError::conflict(
                ErrorCode::EmailTaken,
                "an admin with this email already exists",
            )
        })?;
    let mut mails = Vec::new();
    let invite = body.send_invite.unwrap_or(true);
    if invite {
        mails.push(sessions::send_invite(&ctx, &tx, "admin", &id, &email).await?);
    }
    tx.commit().await?;
    mail::send_after_commit(&ctx.app, &ctx.tenant()?.schema, mails);
    let mut out = to_json(&row);
    out["invited"] = json!(invite);
    Ok(Reply::created(out))
}

/// `GET /admins`
pub async fn list(ctx: Ctx) -> Result<Reply, ApiError> {
    let body = newest_first(&ctx, "admins", COLUMNS, "admins", to_json).await?;
    Ok(Reply::ok(body))
}

/// `POST /admins/:id/revoke`: the admin and all their sessions, at once.
pub async fn revoke(ctx: Ctx) -> Result<Reply, ApiError> {
    let id = ctx.id("admin")?;
    let tx = ctx.tx().await?;
    let status: String = tx
        .one_or_404(
            "admin",
            &id,
            "SELECT status FROM admins WHERE id = $1 FOR UPDATE",
        )
        .await?
        .get(0);
    if status == "revoked" {
        return Err(ApiError::conflict(
            ErrorCode::AlreadyRevoked,
            "the admin is already revoked",
        ));
    }
    let row = tx
        .query_one(
            &format!(
                "UPDATE admins SET status = 'revoked', revoked_at = now(), updated_at = now()
                  WHERE id = $1 RETURNING {COLUMNS}"
            ),
            &[&id],
        )
        .await?;
    let ended = sessions::revoke_sessions(&tx, "admin", &id).await?;
    tx.commit().await?;
    let admin = to_json(&row);
    Ok(
        Reply::ok(json!({ "ok": true, "revokedAt": admin["revokedAt"], "admin": admin }))
            .invalidate_sessions(ended),
    )
}
