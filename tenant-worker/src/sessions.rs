//! The people side of sign-in that other modules build on: single-use tokens and the
//! invite mail that carries one, the session rows behind `op_session` cookies, and the
//! e-mail address rules. Handlers (`auth`, `partners`, `admins`) call down into this
//! module; it calls nothing above it.
//!
//! Tokens are 32 random bytes; only their SHA-256 is stored, the plaintext exists only in
//! the mail. Ending a session ([`sign_out`], [`revoke_sessions`]) announces it to the
//! gateways, which check the row of every cookie (caching a live answer until such an
//! announcement), and the reply names it, so the gateway that answers drops it before the
//! caller's next request.

use crate::{
    context::Ctx,
    error::ApiError,
    mail,
    sql::{val, Stmt, Tx, Writer},
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{Duration, Utc};
use op_control::sessions as cookie;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const LOGIN_TTL: Duration = Duration::minutes(15);
pub const INVITE_TTL: Duration = Duration::days(7);
pub const TOKEN_LEN: usize = 43; // 32 bytes, base64url without padding

pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Stores a new single-use token for `(kind, id)` and returns its plaintext (for the mail only).
pub async fn issue_token(
    w: &impl Writer,
    kind: &str,
    principal_id: &str,
    purpose: &str,
    ttl: Duration,
) -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let sql = format!(
        "INSERT INTO {}.magic_tokens (id, token_hash, principal_kind, principal_id, purpose, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        w.schema()
    );
    w.write(Stmt::new(
        sql,
        vec![
            val(ulid::Ulid::new().to_string()),
            val(token_hash(&token)),
            val(kind.to_string()),
            val(principal_id.to_string()),
            val(purpose.to_string()),
            val(Utc::now() + ttl),
        ],
    ))
    .await?;
    Ok(token)
}

/// The portal URL that signs the holder of `token` in: `OP_PORTAL_URL` when set, else the
/// portal on the origin the request came to (`x-op-portal`, from the gateway: `<origin>/t/
/// <slug>` hosted, `<origin>` self-hosted), else a relative link.
pub fn link(ctx: &Ctx, token: &str) -> String {
    let slug = ctx.tenant.as_ref().map_or("", |t| t.slug.as_str());
    let portal = ctx
        .app
        .config
        .portal_url
        .as_deref()
        .or_else(|| ctx.header("x-op-portal"))
        .unwrap_or("");
    format!("{portal}/login?token={token}&tenant={slug}")
}

/// Issues an invite token for a partner or admin and queues the mail carrying it.
pub async fn send_invite(
    ctx: &Ctx,
    w: &impl Writer,
    kind: &str,
    principal_id: &str,
    email: &str,
) -> Result<mail::Outgoing, ApiError> {
    let token = issue_token(w, kind, principal_id, "invite", INVITE_TTL).await?;
    let slug = &ctx.tenant()?.slug;
    let role = if kind == "admin" {
        "an admin"
    } else {
        "a partner"
    };
    mail::queue(
        w,
        &ctx.app.mailer,
        email,
        &format!("You're invited to {slug} on OpenPartner"),
        &format!(
            "You have been invited to the {slug} partner program as {role}.\n\nAccept the invitation: {}\n\nThe link works once and expires in 7 days.\n",
            link(ctx, &token)
        ),
        &format!("{kind}_invite"),
        &[&token],
    )
    .await
}

/// Revokes every live session of a principal, in the caller's transaction, and announces
/// each to the gateways (on commit). Returns their ids, for the reply to name
/// ([`crate::context::Reply::invalidate_sessions`]).
pub async fn revoke_sessions(tx: &Tx, kind: &str, id: &str) -> Result<Vec<String>, ApiError> {
    let ids: Vec<String> = tx
        .query(
            "UPDATE sessions SET revoked_at = now()
              WHERE principal_kind = $1 AND principal_id = $2 AND revoked_at IS NULL
          RETURNING id",
            &[&kind, &id],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for sid in &ids {
        cookie::notify_ended(tx.client(), sid).await?;
    }
    Ok(ids)
}

/// Signs session `sid` out, in the caller's transaction, announcing it to the gateways.
/// False if it had already ended.
pub async fn sign_out(tx: &Tx, sid: &str) -> Result<bool, ApiError> {
    let ended = tx
        .execute(
            "UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
            &[&sid],
        )
        .await?
        > 0;
    if ended {
        cookie::notify_ended(tx.client(), sid).await?;
    }
    Ok(ended)
}

/// Lower-cased, trimmed, and plausibly an address (one `@`, no spaces, a dot in the domain).
pub fn normalize_email(raw: &str) -> Result<String, ApiError> {
    let e = raw.trim().to_lowercase();
    let valid = e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && match e.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    if valid {
        Ok(e)
    } else {
        Err(ApiError::invalid_body("email is not a valid address").with("field", "email"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(
            normalize_email("  Ann@Example.COM ").unwrap(),
            "ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "a b@example.com",
            "ann@example",
            "a@b@c.com",
            "ann@.com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }
}
