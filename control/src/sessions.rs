//! The `op_session` cookie: an HS256 JWT naming a server-side session row.
//!
//! The gateway verifies signature, expiry and tenant without a database hit (so forged or
//! foreign-tenant cookies cost nothing), then that the row is live ([`is_live`], cached by
//! the gateway until the session is signed out or revoked: whoever ends a session announces
//! it, [`notify_ended`], and names it in its reply so the answering gateway drops it first).
//! Rotation: tokens are signed with `OP_SESSION_SECRET` and accepted if they verify with it
//! or with `OP_SESSION_SECRET_PREVIOUS`.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

pub const COOKIE_NAME: &str = "op_session";

/// Whether the session row `sid` of the tenant `schema` is neither revoked nor expired.
pub async fn is_live(
    conn: &deadpool_postgres::Object,
    schema: &crate::schema::Schema,
    sid: &str,
) -> Result<bool, tokio_postgres::Error> {
    let sql = format!(
        "SELECT 1 FROM {schema}.sessions WHERE id = $1 AND revoked_at IS NULL AND expires_at > now()"
    );
    let stmt = crate::db::prepare(conn, &sql).await?;
    Ok(conn.query_opt(&stmt, &[&sid]).await?.is_some())
}

/// Tells every gateway, on commit of `client`'s transaction, that session `sid` ended.
pub async fn notify_ended(
    client: &impl tokio_postgres::GenericClient,
    sid: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "SELECT pg_notify($1, $2)",
            &[&crate::CACHE_CHANNEL, &format!("session:{sid}")],
        )
        .await?;
    Ok(())
}
/// Sessions live 30 days.
pub const SESSION_DAYS: i64 = 30;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// Session row id.
    pub sid: String,
    /// Tenant id.
    pub tid: String,
    /// `admin` or `partner`.
    pub kind: String,
    /// Admin or partner id.
    pub pid: String,
    pub iat: i64,
    pub exp: i64,
}

pub struct SessionKeys {
    encoding: EncodingKey,
    decoding: Vec<DecodingKey>,
}

impl SessionKeys {
    pub fn new(current: &str, previous: Option<&str>) -> SessionKeys {
        let mut decoding = vec![DecodingKey::from_secret(current.as_bytes())];
        if let Some(p) = previous.filter(|p| !p.is_empty()) {
            decoding.push(DecodingKey::from_secret(p.as_bytes()));
        }
        SessionKeys {
            encoding: EncodingKey::from_secret(current.as_bytes()),
            decoding,
        }
    }

    /// From `OP_SESSION_SECRET` / `OP_SESSION_SECRET_PREVIOUS`; None if sessions are not configured.
    pub fn from_env() -> Option<SessionKeys> {
        let current = crate::env::var("OP_SESSION_SECRET")?;
        let previous = crate::env::var("OP_SESSION_SECRET_PREVIOUS");
        Some(SessionKeys::new(&current, previous.as_deref()))
    }

    pub fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// Signature (current or previous secret), algorithm and expiry; None otherwise.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        if token.len() > 4096 {
            return None;
        }
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 0;
        v.set_required_spec_claims(&["exp"]);
        self.decoding
            .iter()
            .find_map(|k| jsonwebtoken::decode::<Claims>(token, k, &v).ok())
            .map(|d| d.claims)
            .filter(|c| c.kind == "admin" || c.kind == "partner")
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v.trim().trim_matches('"'))
    })
}

/// `Set-Cookie` for a new session.
pub fn set_cookie(token: &str, secure: bool) -> String {
    format!(
        "{COOKIE_NAME}={token}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{}",
        SESSION_DAYS * 86_400,
        if secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` that deletes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE_NAME}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp_in: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sid: "s".into(),
            tid: "t".into(),
            kind: "partner".into(),
            pid: "p".into(),
            iat: now,
            exp: now + exp_in,
        }
    }

    #[test]
    fn signs_verifies_and_rotates() {
        let old = SessionKeys::new("old-secret", None);
        let c = claims(60);
        let token = old.sign(&c);
        assert_eq!(old.verify(&token), Some(c));
        let rotated = SessionKeys::new("new-secret", Some("old-secret"));
        assert!(
            rotated.verify(&token).is_some(),
            "previous secret still accepted"
        );
        let after = SessionKeys::new("new-secret", None);
        assert!(
            after.verify(&token).is_none(),
            "dropped secret no longer accepted"
        );
        assert!(rotated.verify(&rotated.sign(&claims(60))).is_some());
    }

    #[test]
    fn rejects_expired_forged_and_garbage() {
        let k = SessionKeys::new("secret", None);
        assert!(k.verify(&k.sign(&claims(-5))).is_none());
        let other = SessionKeys::new("attacker", None);
        assert!(k.verify(&other.sign(&claims(60))).is_none());
        assert!(k.verify("not.a.jwt").is_none());
        let mut bad_kind = claims(60);
        bad_kind.kind = "platform".into();
        assert!(k.verify(&k.sign(&bad_kind)).is_none());
    }

    #[test]
    fn cookie_parsing() {
        assert_eq!(
            cookie_value("a=1; op_session=xyz; b=2", "op_session"),
            Some("xyz")
        );
        assert_eq!(cookie_value("op_sessionx=1", "op_session"), None);
        assert!(set_cookie("t", true).contains("; Secure"));
        assert!(!set_cookie("t", false).contains("Secure"));
        assert!(set_cookie("t", false).contains("HttpOnly; SameSite=Lax"));
    }
}
