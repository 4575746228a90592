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
    admins::{self, AdminView},
    context::{Acknowledged, Ctx, Reply},
    error::{ApiError, ErrorCode},
    mail,
    openapi::Op,
    outbox,
    partners::{self, PartnerView},
    sessions,
    sql::Tx,
    App,
};
use chrono::{Duration, Utc};
use op_control::sessions as cookie;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_postgres::Row;

#[derive(Deserialize, JsonSchema)]
struct MagicLinkRequest {
    /// The address of an admin or partner of this tenant.
    #[schemars(email, length(max = 254))]
    email: String,
}

#[derive(Deserialize, JsonSchema)]
struct MagicLinkVerify {
    /// The `token` of the magic link (43 characters, base64url).
    #[schemars(regex(pattern = "^[A-Za-z0-9_-]{43}$"))]
    token: String,
}

/// `POST /auth/magic/verify` answers who signed in, under `principal` and under the role's
/// own key (as the original did).
#[derive(Serialize, JsonSchema)]
#[serde(tag = "role", rename_all = "lowercase")]
#[allow(clippy::large_enum_variant)] // built once per answer, then serialized
enum MagicVerified {
    Admin {
        ok: bool,
        principal: AdminView,
        admin: AdminView,
    },
    Partner {
        ok: bool,
        #[schemars(with = "PartnerView")]
        principal: Value,
        #[schemars(with = "PartnerView")]
        partner: Value,
    },
}

/// A bearer key, as `GET /auth/me` names it.
#[derive(Clone, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
enum KeyPrincipal {
    /// A key row (`POST /api-keys`, provisioning).
    ApiKey { id: String },
    /// The `ADMIN_API_KEY` of the server's environment.
    BootstrapKey,
}

/// An admin: a person (signed in with a session) or an admin key.
#[derive(Clone, Serialize, JsonSchema)]
#[serde(untagged)]
enum AdminPrincipal {
    Person(AdminView),
    Key(KeyPrincipal),
}

/// `GET /auth/me`: who this session or key is.
#[derive(Serialize, JsonSchema)]
#[serde(tag = "role", rename_all = "lowercase")]
enum WhoAmI {
    Admin {
        principal: AdminPrincipal,
        admin: AdminPrincipal,
    },
    Partner {
        #[schemars(with = "PartnerView")]
        principal: Value,
        #[schemars(with = "PartnerView")]
        partner: Value,
        #[serde(rename = "partnerId")]
        partner_id: String,
    },
    Scoped {
        /// The key's scopes, in minting order.
        scopes: Vec<String>,
        principal: KeyPrincipal,
    },
}

/// `GET /auth/introspect`: what this credential may do.
#[derive(Serialize, JsonSchema)]
#[serde(tag = "role", rename_all = "lowercase")]
enum Introspection {
    /// An admin key or session: every route of the tenant.
    Admin { unrestricted: bool },
    /// A scoped key: the routes of its scopes (in minting order).
    Scoped { scopes: Vec<String> },
    /// A partner key or session: the partner's own resources.
    Partner {
        #[serde(rename = "partnerId")]
        partner_id: String,
    },
}

#[derive(Serialize, JsonSchema)]
struct SignedOut {
    ok: bool,
    /// Whether a session ended (false for a bearer key, or a session already ended).
    revoked: bool,
}

pub fn magic_request_doc() -> Op {
    Op::new("Ask for a sign-in link")
        .describe("Mails a single-use sign-in link (valid 15 minutes) if the address is an admin or a non-revoked partner of this tenant. The answer is the same either way (no account enumeration).")
        .body::<MagicLinkRequest>()
        .ok::<Acknowledged>(200, "Done (whether or not a mail went out).")
        .errors(403, &[ErrorCode::TenantSuspended])
}

pub fn magic_verify_doc() -> Op {
    Op::new("Sign in with a magic link")
        .describe("Consumes the link's token (once; an invite activates its admin or partner) and opens a 30-day session: the `op_session` cookie.")
        .body::<MagicLinkVerify>()
        .ok::<MagicVerified>(200, "Signed in.")
        .header(
            "Set-Cookie",
            "`op_session=<JWT>; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax` (plus `Secure` unless configured off): the session.",
        )
        .errors(400, &[ErrorCode::InvalidToken])
        .errors(403, &[ErrorCode::TenantSuspended])
}

pub fn me_doc() -> Op {
    Op::new("Who am I")
        .describe(
            "The admin or partner of this session or key: a person's row, or which key it is.",
        )
        .ok::<WhoAmI>(200, "The caller.")
}

pub fn signout_doc() -> Op {
    Op::new("Sign out")
        .describe("Ends this session (nothing to end for a bearer key) and clears the cookie.")
        .ok::<SignedOut>(200, "Signed out.")
        .header(
            "Set-Cookie",
            "`op_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax` (plus `Secure` unless configured off): deletes the cookie.",
        )
}

pub fn introspect_doc() -> Op {
    Op::new("What this credential may do")
        .describe("Integrations check a key with it before storing it.")
        .ok::<Introspection>(200, "The credential's reach.")
}

/// `POST /auth/magic/request {email}` (alias `/auth/signin`): always `200 {"ok":true}`.
pub async fn magic_request(ctx: Ctx) -> Result<Reply, ApiError> {
    let body: MagicLinkRequest = ctx.json()?;
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
    Ok(Reply::typed(200, &Acknowledged { ok: true }))
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
    let body: MagicLinkVerify = ctx.json()?;
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
    let (table, columns) = match kind.as_str() {
        "partner" => ("partners", partners::COLUMNS),
        _ => ("admins", admins::COLUMNS),
    };
    let Some((row, activated)) = activate(&tx, table, &id, columns).await? else {
        // Revoked (or gone) since the link was sent: the token is spent, no session.
        tx.commit().await?;
        return Err(invalid_token());
    };
    let body = match kind.as_str() {
        "partner" => {
            let partner = partners::to_json(&row);
            if activated {
                outbox::emit(&tx, "partner.activated", json!({ "partner": partner })).await?;
            }
            MagicVerified::Partner {
                ok: true,
                principal: partner.clone(),
                partner,
            }
        }
        _ => {
            let admin = AdminView::from_row(&row);
            MagicVerified::Admin {
                ok: true,
                principal: admin.clone(),
                admin,
            }
        }
    };
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
    let mut reply = Reply::typed(200, &body);
    reply.headers.push((
        "set-cookie".into(),
        cookie::set_cookie(&jwt, ctx.app.config.cookie_secure),
    ));
    Ok(reply)
}

/// Locks the principal row; activates it if invited. Its row ([`partners::COLUMNS`] or
/// [`admins::COLUMNS`]) and whether it was activated; None if it is revoked or missing.
async fn activate(
    tx: &Tx,
    table: &str,
    id: &str,
    columns: &str,
) -> Result<Option<(Row, bool)>, ApiError> {
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
    Ok(Some((row, activated)))
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
            let row = load(&ctx, "admins", admins::COLUMNS, &s.admin_id).await?;
            let admin = AdminPrincipal::Person(AdminView::from_row(&row));
            WhoAmI::Admin {
                principal: admin.clone(),
                admin,
            }
        }
        Principal::Admin { key_id, .. } => {
            let key = AdminPrincipal::Key(match key_id {
                Some(id) => KeyPrincipal::ApiKey { id: id.clone() },
                None => KeyPrincipal::BootstrapKey,
            });
            WhoAmI::Admin {
                principal: key.clone(),
                admin: key,
            }
        }
        Principal::Partner { partner_id, .. } => {
            let row = load(&ctx, "partners", partners::COLUMNS, partner_id).await?;
            let partner = partners::to_json(&row);
            WhoAmI::Partner {
                principal: partner.clone(),
                partner,
                partner_id: partner_id.clone(),
            }
        }
        Principal::Scoped { key_id, scopes } => WhoAmI::Scoped {
            scopes: scopes.clone(),
            principal: KeyPrincipal::ApiKey { id: key_id.clone() },
        },
        Principal::Anonymous | Principal::Platform | Principal::System => {
            return Err(ApiError::unauthorized())
        }
    };
    Ok(Reply::typed(200, &body))
}

/// The row (`columns`) of the admin or partner a credential names; `401` if it is gone.
async fn load(ctx: &Ctx, table: &str, columns: &str, id: &str) -> Result<Row, ApiError> {
    ctx.read_one(
        &format!(
            "SELECT {columns} FROM {}.{table} WHERE id = $1",
            ctx.schema()?
        ),
        &[&id],
    )
    .await?
    .ok_or_else(ApiError::unauthorized)
}

/// `POST /auth/signout`: revokes the session (a no-op for bearer keys) and clears the cookie.
pub async fn signout(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut revoked = false;
    if let Some(sid) = ctx.principal.session_id() {
        let tx = ctx.tx().await?;
        revoked = sessions::sign_out(&tx, sid).await?;
        tx.commit().await?;
    }
    let mut reply = Reply::typed(200, &SignedOut { ok: true, revoked })
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
        Principal::Admin { .. } => Introspection::Admin { unrestricted: true },
        Principal::Scoped { scopes, .. } => Introspection::Scoped {
            scopes: scopes.clone(),
        },
        Principal::Partner { partner_id, .. } => Introspection::Partner {
            partner_id: partner_id.clone(),
        },
        Principal::Anonymous | Principal::Platform | Principal::System => {
            return Err(ApiError::unauthorized())
        }
    };
    Ok(Reply::typed(200, &body))
}
