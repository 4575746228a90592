//! The tenant's human admins. They sign in with magic links; headless admins are API keys.
//! The provisioning `adminEmail` becomes the first one; admins invite the others.

use crate::{
    context::{Ctx, Reply, Timestamp},
    error::{ApiError, ErrorCode},
    mail,
    openapi::Op,
    pagination::newest_first,
    sessions,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_postgres::Row;

pub const COLUMNS: &str =
    "id, email, name, status, activated_at, revoked_at, created_at, updated_at";

/// An admin (a person; headless admins are API keys), as the API shows it.
#[derive(Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminView {
    id: String,
    email: String,
    name: Option<String>,
    /// `invited` (invite mailed, not signed in yet), `active` or `revoked`.
    #[schemars(extend("enum" = ["invited", "active", "revoked"]))]
    status: String,
    activated_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl AdminView {
    /// A row of [`COLUMNS`].
    pub fn from_row(row: &Row) -> AdminView {
        AdminView {
            id: row.get("id"),
            email: row.get("email"),
            name: row.get("name"),
            status: row.get("status"),
            activated_at: row.get::<_, Option<_>>("activated_at").map(Timestamp),
            revoked_at: row.get::<_, Option<_>>("revoked_at").map(Timestamp),
            created_at: Timestamp(row.get("created_at")),
            updated_at: Timestamp(row.get("updated_at")),
        }
    }
}

fn to_json(row: &Row) -> Value {
    serde_json::to_value(AdminView::from_row(row)).unwrap_or_default()
}

/// `POST /admins` answers the admin and whether an invite went out.
#[derive(Serialize, JsonSchema)]
struct CreatedAdmin {
    #[serde(flatten)]
    admin: AdminView,
    invited: bool,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct RevokedAdmin {
    ok: bool,
    revoked_at: Option<Timestamp>,
    admin: AdminView,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateAdmin {
    /// Unique per tenant (compared case-insensitively).
    #[schemars(email, length(max = 254))]
    email: String,
    /// At most 200 characters (trimmed; blank is none).
    #[schemars(length(max = 200))]
    name: Option<String>,
    /// Mail an invite link (default true).
    send_invite: Option<bool>,
}

pub fn create_doc() -> Op {
    Op::new("Invite an admin")
        .describe("Another person who administers the tenant; signs in with magic links. Starts `invited`, and `active` from the first sign-in.")
        .body::<CreateAdmin>()
        .ok::<CreatedAdmin>(201, "The new admin.")
        .errors(409, &[ErrorCode::EmailTaken])
}

pub fn list_doc() -> Op {
    Op::new("List admins").page::<AdminView>("admins")
}

pub fn revoke_doc() -> Op {
    Op::new("Revoke an admin")
        .describe("Ends the admin's sessions at once; their magic links stop working.")
        .ok::<RevokedAdmin>(200, "The revoked admin.")
        .errors(404, &[ErrorCode::NotFound])
        .errors(409, &[ErrorCode::AlreadyRevoked])
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
    Ok(Reply::typed(
        201,
        &CreatedAdmin {
            admin: AdminView::from_row(&row),
            invited: invite,
        },
    ))
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
    let admin = AdminView::from_row(&row);
    let reply = RevokedAdmin {
        ok: true,
        revoked_at: admin.revoked_at,
        admin,
    };
    Ok(Reply::typed(200, &reply).invalidate_sessions(ended))
}
