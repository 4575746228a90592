//! Sign-in for people: magic links and sessions.
//!
//! A magic link carries a single-use random token (only its SHA-256 is stored) that expires
//! in 15 minutes (invites: 7 days). Verifying it consumes it atomically (`UPDATE ... WHERE
//! used_at IS NULL RETURNING`: of two concurrent verifies one wins), activates an invited
//! principal, opens a 30-day session row and sets the `op_session` cookie, a JWT whose
//! signature the gateway checks without the database; the gateway also checks the row is
//! live (cached until sign-out or revocation announce its end, see `sessions`).

use crate::{
    access::Principal,
    admins,
    context::{Ctx, Reply},
    error::{ApiError, ErrorCode},
    mail, outbox, partners, sessions,
    sql::Tx,
    App,
};
use chrono::{Duration, Utc};
use op_control::sessions as cookie;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
struct MagicRequest {
    email: String,
}

/// `POST /auth/magic/request {email}` (alias `/auth/signin`): always `200 {"ok":true}`.
pub async fn magic_request(ctx: Ctx) -> Result<Reply, ApiError> {
    let body: MagicRequest = ctx.json()?;
    let email = sessions::normalize_email(&body.email)?;
    let tx = ctx.tx().await?;
    let admin = tx
        .query_opt(
            "SELECT id FROM admins WHERE email = $1 AND status <> 'revoked'",
            &[&email],
        )
        .await?;
    let found = match admin {
        Some(r) => Some(("admin", r.get::<_, String>(0))),
        None => tx
            .query_opt(
                "SELECT id FROM partners WHERE email = $1 AND status <> 'revoked'",
                &[&email],
            )
            .await?
            .map(|r| ("partner", r.get::<_, String>(0))),
    };
    let mut mails = Vec::new();
    if let Some((kind, id)) = found {
        let token = sessions::issue_token(&tx, kind, &id, "login", sessions::LOGIN_TTL).await?;
        let slug = &ctx.tenant()?.slug;
        mails.push(
            mail::queue(
                &tx,
                &ctx.app.mailer,
                &email,
                &format!("Your sign-in link for {slug}"),
                &format!(
                    "Sign in to {slug}: {}\n\nThe link works once and expires in 15 minutes. If you did not ask for it, ignore this mail.\n",
                    sessions::link(&ctx, &token)
                ),
                "magic_link",
                &[&token],
            )
            .await?,
        );
    }
    tx.commit().await?;
    mail::send_after_commit(&ctx.app, &ctx.tenant()?.schema, mails);
    // Same answer whether or not the address is known: no account enumeration.
    Ok(Reply::ok(json!({ "ok": true })))
}

#[derive(Deserialize)]
struct MagicVerify {
    token: String,
}

fn invalid_token() -> ApiError {
    ApiError::new(
        400,
        ErrorCode::InvalidToken,
        "the link is invalid, expired or already used; ask for a new one",
    )
}

/// `POST /auth/magic/verify {token}` → session cookie + the principal.
pub async fn magic_verify(ctx: Ctx) -> Result<Reply, ApiError> {
    let body: MagicVerify = ctx.json()?;
    let keys = session_keys(&ctx.app)?;
    let token = body.token.trim();
    if token.len() != sessions::TOKEN_LEN
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(invalid_token());
    }
    let tenant = ctx.tenant()?.clone();
    let tx = ctx.tx().await?;
    let Some(row) = tx
        .query_opt(
            "UPDATE magic_tokens SET used_at = now()
              WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
              RETURNING principal_kind, principal_id",
            &[&sessions::token_hash(token)],
        )
        .await?
    else {
        return Err(invalid_token());
    };
    let (kind, id): (String, String) = (row.get(0), row.get(1));
    let principal = match kind.as_str() {
        "partner" => activate(&tx, "partners", &id, partners::COLUMNS, partners::to_json).await?,
        _ => activate(&tx, "admins", &id, admins::COLUMNS, admins::to_json).await?,
    };
    let Some((principal, activated)) = principal else {
        // Revoked (or gone) since the link was sent: the token is spent, no session.
        tx.commit().await?;
        return Err(invalid_token());
    };
    if activated && kind == "partner" {
        outbox::emit(&tx, "partner.activated", json!({ "partner": principal })).await?;
    }
    let session_id = ulid::Ulid::new().to_string();
    let expires = Utc::now() + Duration::days(cookie::SESSION_DAYS);
    tx.execute(
        "INSERT INTO sessions (id, principal_kind, principal_id, expires_at) VALUES ($1, $2, $3, $4)",
        &[&session_id, &kind, &id, &expires],
    )
    .await?;
    tx.commit().await?;
    let jwt = keys.sign(&cookie::Claims {
        sid: session_id,
        tid: tenant.id,
        kind: kind.clone(),
        pid: id,
        iat: Utc::now().timestamp(),
        exp: expires.timestamp(),
    });
    let mut body = json!({ "ok": true, "role": kind, "principal": principal });
    body[kind.as_str()] = principal;
    let mut reply = Reply::ok(body);
    reply.headers.push((
        "set-cookie".into(),
        cookie::set_cookie(&jwt, ctx.app.config.cookie_secure),
    ));
    Ok(reply)
}

/// Locks the principal row; activates it if invited. None if it is revoked or missing.
async fn activate(
    tx: &Tx,
    table: &str,
    id: &str,
    columns: &str,
    to_json: fn(&tokio_postgres::Row) -> Value,
) -> Result<Option<(Value, bool)>, ApiError> {
    let Some(row) = tx
        .query_opt(
            &format!("SELECT status FROM {table} WHERE id = $1 FOR UPDATE"),
            &[&id],
        )
        .await?
    else {
        return Ok(None);
    };
    let status: String = row.get(0);
    if status == "revoked" {
        return Ok(None);
    }
    let activated = status == "invited";
    // The time is bound, not `now()`: Citus refuses (or crashes on) a non-immutable
    // function inside COALESCE in an UPDATE (CITUS.md rule 16).
    let now = Utc::now();
    let row = tx
        .query_one(
            &format!(
                "UPDATE {table} SET status = 'active', activated_at = COALESCE(activated_at, $2), updated_at = $2
                  WHERE id = $1 RETURNING {columns}"
            ),
            &[&id, &now],
        )
        .await?;
    Ok(Some((to_json(&row), activated)))
}

fn session_keys(app: &App) -> Result<cookie::SessionKeys, ApiError> {
    let (current, previous) = app.config.session_secret.as_ref().ok_or_else(|| {
        ApiError::new(
            503,
            ErrorCode::SessionsDisabled,
            "sign-in is not configured on this server (OP_SESSION_SECRET)",
        )
    })?;
    Ok(cookie::SessionKeys::new(current, previous.as_deref()))
}

/// `GET /auth/me` (alias `/auth/whoami`): who this session or key is.
pub async fn me(ctx: Ctx) -> Result<Reply, ApiError> {
    let body = match &ctx.principal {
        Principal::Admin {
            session: Some(s), ..
        } => {
            let admin = load(
                &ctx,
                "admins",
                admins::COLUMNS,
                &s.admin_id,
                admins::to_json,
            )
            .await?;
            json!({ "role": "admin", "principal": admin, "admin": admin })
        }
        Principal::Admin { key_id, .. } => {
            let p = match key_id {
                Some(id) => json!({ "type": "api_key", "id": id }),
                None => json!({ "type": "bootstrap_key" }),
            };
            json!({ "role": "admin", "principal": p, "admin": p })
        }
        Principal::Partner { partner_id, .. } => {
            let partner = load(
                &ctx,
                "partners",
                partners::COLUMNS,
                partner_id,
                partners::to_json,
            )
            .await?;
            json!({ "role": "partner", "principal": partner, "partner": partner, "partnerId": partner_id })
        }
        Principal::Scoped { key_id, scopes } => {
            json!({ "role": "scoped", "scopes": scopes, "principal": { "type": "api_key", "id": key_id } })
        }
        Principal::Anonymous | Principal::Platform => return Err(ApiError::unauthorized()),
    };
    Ok(Reply::ok(body))
}

async fn load(
    ctx: &Ctx,
    table: &str,
    columns: &str,
    id: &str,
    to_json: fn(&tokio_postgres::Row) -> Value,
) -> Result<Value, ApiError> {
    let row = ctx
        .read_one(
            &format!(
                "SELECT {columns} FROM {}.{table} WHERE id = $1",
                ctx.schema()?
            ),
            &[&id],
        )
        .await?;
    row.as_ref().map(to_json).ok_or_else(ApiError::unauthorized)
}

/// `POST /auth/signout`: revokes the session (a no-op for bearer keys) and clears the cookie.
pub async fn signout(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut revoked = false;
    if let Some(sid) = ctx.principal.session_id() {
        let tx = ctx.tx().await?;
        revoked = sessions::sign_out(&tx, sid).await?;
        tx.commit().await?;
    }
    let mut reply = Reply::ok(json!({ "ok": true, "revoked": revoked }))
        .invalidate_sessions(ctx.principal.session_id().map(str::to_string));
    reply.headers.push((
        "set-cookie".into(),
        cookie::clear_cookie(ctx.app.config.cookie_secure),
    ));
    Ok(reply)
}

/// `GET /auth/introspect`: what this credential may do (integrations check keys with it).
pub async fn introspect(ctx: Ctx) -> Result<Reply, ApiError> {
    let body = match &ctx.principal {
        Principal::Admin { .. } => json!({ "role": "admin", "unrestricted": true }),
        Principal::Scoped { scopes, .. } => json!({ "role": "scoped", "scopes": scopes }),
        Principal::Partner { partner_id, .. } => {
            json!({ "role": "partner", "partnerId": partner_id })
        }
        Principal::Anonymous | Principal::Platform => return Err(ApiError::unauthorized()),
    };
    Ok(Reply::ok(body))
}
