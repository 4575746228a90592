//! Authentication: turns the credentials of a request into a [`Principal`] for one tenant.
//!
//! Malformed credentials are refused without touching the database; well-formed keys are
//! looked up by prefix and compared by hash in constant time (op_control::keys) and then
//! cached by hash. A key of another tenant is refused exactly like an unknown key.
//!
//! Every failed attempt counts against the client's address (`refuse`), so guessing
//! credentials from one address turns into `429` quickly.

use crate::{edge_error::EdgeError, State};
use http::{header, HeaderMap};
use op_control::{
    keys::{self, secrets_equal, KeyKind, KeyRecord},
    sessions::{cookie_value, COOKIE_NAME},
    tenants::Tenant,
    Mode,
};
use op_proto::v1::{Principal, PrincipalKind};
use std::{
    collections::HashMap,
    net::IpAddr,
    sync::RwLock,
    time::{Duration, Instant},
};

/// Why a credential was refused (all become `401 unauthorized`; the reason is for logs).
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    Malformed,
    Unknown,
    OtherTenant,
}

/// Bounded staleness even if an invalidation were missed (e.g. LISTEN reconnecting).
const KEY_TTL: Duration = Duration::from_secs(60);
const MAX_KEYS: usize = 100_000;

#[derive(Default)]
pub struct KeyCache {
    by_hash: RwLock<HashMap<[u8; 32], (KeyRecord, Instant)>>,
}

impl KeyCache {
    fn get(&self, hash: &[u8; 32]) -> Option<KeyRecord> {
        let map = self.by_hash.read().expect("key cache lock");
        let (rec, at) = map.get(hash)?;
        (at.elapsed() < KEY_TTL).then(|| rec.clone())
    }

    fn put(&self, hash: [u8; 32], rec: KeyRecord) {
        let mut map = self.by_hash.write().expect("key cache lock");
        if map.len() >= MAX_KEYS {
            map.clear();
        }
        map.insert(hash, (rec, Instant::now()));
    }

    pub fn invalidate(&self, key_id: &str) {
        self.by_hash
            .write()
            .expect("key cache lock")
            .retain(|_, (rec, _)| rec.id != key_id);
    }

    pub fn clear(&self) {
        self.by_hash.write().expect("key cache lock").clear();
    }

    /// Finds the live key row for `plaintext`; the hash is only a cache key here, the
    /// authoritative comparison happens in `keys::lookup`.
    pub async fn find(
        &self,
        pool: &deadpool_postgres::Pool,
        plaintext: &str,
    ) -> Result<Option<KeyRecord>, crate::GatewayError> {
        if keys::lookup_prefix(plaintext).is_none() {
            return Ok(None);
        }
        let hash = keys::hash_key(plaintext);
        if let Some(rec) = self.get(&hash) {
            return Ok(Some(rec));
        }
        let conn = pool.get().await?;
        let found = keys::lookup(&**conn, plaintext).await?;
        if let Some(rec) = &found {
            self.put(hash, rec.clone());
        }
        Ok(found)
    }
}

/// Whether session rows are live, by session id: a signed cookie still needs its row (a
/// signed-out or revoked session keeps a valid signature until it expires). Entries are
/// dropped when a session ends (`session:<id>` on [`op_control::CACHE_CHANNEL`], and the
/// ending request's reply, before it is answered) and expire after [`KEY_TTL`] at most.
#[derive(Default)]
pub struct SessionCache {
    rows: RwLock<SessionRows>,
}

#[derive(Default)]
struct SessionRows {
    /// Live sessions and until when that answer may be reused.
    live: HashMap<String, Instant>,
    /// Sessions announced as ended, and when. A lookup that read the row just before the
    /// session ended may finish after the announcement: it must not cache it as live.
    ended: HashMap<String, Instant>,
}

impl SessionCache {
    fn hit(&self, sid: &str) -> bool {
        let rows = self.rows.read().expect("session cache lock");
        rows.live
            .get(sid)
            .is_some_and(|until| Instant::now() < *until)
    }

    fn put(&self, sid: &str, until: Instant) {
        let mut rows = self.rows.write().expect("session cache lock");
        if rows.ended.contains_key(sid) {
            return;
        }
        if rows.live.len() >= MAX_KEYS {
            rows.live.clear();
        }
        rows.live.insert(sid.to_string(), until);
    }

    pub fn invalidate(&self, sid: &str) {
        let mut rows = self.rows.write().expect("session cache lock");
        rows.live.remove(sid);
        // A lookup in flight finishes within the lookup's own time, far less than this.
        if rows.ended.len() >= MAX_KEYS {
            rows.ended.retain(|_, at| at.elapsed() < KEY_TTL);
        }
        rows.ended.insert(sid.to_string(), Instant::now());
    }

    /// Forgets every live answer (the notifications may have been missed). What is known
    /// to have ended stays known.
    pub fn clear(&self) {
        self.rows.write().expect("session cache lock").live.clear();
    }

    /// Whether the row of the (signature-checked) session `claims` is live. Only live
    /// answers are cached: an ended session never comes back.
    pub async fn is_live(
        &self,
        pool: &deadpool_postgres::Pool,
        tenant: &Tenant,
        claims: &op_control::sessions::Claims,
    ) -> Result<bool, crate::GatewayError> {
        if self.hit(&claims.sid) {
            return Ok(true);
        }
        let Some(schema) = op_control::schema::Schema::of_tenant(&tenant.id) else {
            tracing::error!(tenant_id = %tenant.id, "a tenant id that names no schema");
            return Ok(false);
        };
        let conn = pool.get().await?;
        let live = op_control::sessions::is_live(&conn, &schema, &claims.sid).await?;
        if live {
            // Never past the cookie's own expiry (the row expires with it).
            let left = u64::try_from(claims.exp.saturating_sub(chrono::Utc::now().timestamp()))
                .unwrap_or(0);
            let until = Instant::now() + KEY_TTL.min(Duration::from_secs(left));
            self.put(&claims.sid, until);
        }
        Ok(live)
    }
}

/// Extracts the token of `Authorization: Bearer <token>`. `Some(Err)` = present but malformed.
pub fn bearer(header: Option<&[u8]>) -> Option<Result<&str, Refused>> {
    let raw = header?;
    let Ok(text) = std::str::from_utf8(raw) else {
        return Some(Err(Refused::Malformed));
    };
    let mut parts = text.trim().splitn(2, ' ');
    let scheme = parts.next().unwrap_or("");
    let token = parts.next().map(str::trim).unwrap_or("");
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.len() > 512 {
        return Some(Err(Refused::Malformed));
    }
    Some(Ok(token))
}

/// The principal a key row stands for, if it belongs to `tenant_id`.
pub fn principal_for(rec: &KeyRecord, tenant_id: &str) -> Result<Principal, Refused> {
    if rec.tenant_id != tenant_id {
        return Err(Refused::OtherTenant);
    }
    let mut p = Principal {
        key_id: rec.id.clone(),
        ..Default::default()
    };
    match &rec.kind {
        KeyKind::Admin => p.set_kind(PrincipalKind::PrincipalAdmin),
        KeyKind::Scoped(scopes) => {
            p.set_kind(PrincipalKind::PrincipalScoped);
            p.scopes = scopes.clone();
        }
        KeyKind::Partner(partner_id) => {
            p.set_kind(PrincipalKind::PrincipalPartner);
            p.partner_id = partner_id.clone();
        }
    }
    Ok(p)
}

pub fn admin_principal() -> Principal {
    let mut p = Principal::default();
    p.set_kind(PrincipalKind::PrincipalAdmin);
    p
}

/// The principal an `op_session` claim set stands for.
pub fn session_principal(claims: &op_control::sessions::Claims) -> Principal {
    let mut p = Principal {
        session_id: claims.sid.clone(),
        ..Default::default()
    };
    if claims.kind == "admin" {
        p.set_kind(PrincipalKind::PrincipalAdmin);
        p.admin_id = claims.pid.clone();
    } else {
        p.set_kind(PrincipalKind::PrincipalPartner);
        p.partner_id = claims.pid.clone();
    }
    p
}

pub fn platform_principal() -> Principal {
    let mut p = Principal::default();
    p.set_kind(PrincipalKind::PrincipalPlatform);
    p
}

/// Who is calling: `(principal, credential id for rate limiting)`. Bearer wins over cookie.
/// Malformed, forged, expired and foreign-tenant credentials are refused here, without a
/// worker call and (except for well-formed unknown keys) without a database hit; a
/// well-signed cookie also needs its session row live (cached, [`SessionCache`]).
pub async fn authenticate(
    state: &State,
    headers: &HeaderMap,
    tenant: &Tenant,
    ip: IpAddr,
) -> Result<(Principal, Option<String>), EdgeError> {
    let bearer = bearer(authorization(headers));
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| cookie_value(h, COOKIE_NAME).map(str::to_string));
    if bearer.is_none() && cookie.is_none() {
        return Ok((Principal::default(), None));
    }
    if let Some(retry_after_secs) = state.limits.blocked_for(ip) {
        return Err(EdgeError::Blocked { retry_after_secs });
    }
    let token = match bearer {
        Some(Ok(t)) => t,
        Some(Err(_)) => return Err(refuse(state, ip)),
        None => {
            let claims = state
                .sessions
                .as_ref()
                .and_then(|k| k.verify(cookie.as_deref().unwrap_or_default()))
                .filter(|c| c.tid == tenant.id);
            let Some(c) = claims else {
                return Err(refuse(state, ip));
            };
            return match state.session_rows.is_live(&state.pool, tenant, &c).await {
                Ok(true) => Ok((session_principal(&c), Some(format!("session:{}", c.sid)))),
                // A signed cookie whose session ended is not a guess at a credential: a
                // plain 401, not counted against the address (as before the cache).
                Ok(false) => Err(EdgeError::Unauthorized),
                Err(e) => {
                    tracing::error!(error = %e, "session lookup failed");
                    Err(EdgeError::ControlPlaneUnavailable)
                }
            };
        }
    };
    if state.config.mode == Mode::Single {
        if let Some(admin) = &state.config.admin_api_key {
            if secrets_equal(admin, token) {
                return Ok((admin_principal(), Some("admin-api-key".to_string())));
            }
        }
    }
    match state.keys.find(&state.pool, token).await {
        Ok(Some(rec)) => match principal_for(&rec, &tenant.id) {
            Ok(p) => Ok((p, Some(format!("key:{}", rec.id)))),
            Err(_) => Err(refuse(state, ip)),
        },
        Ok(None) => Err(refuse(state, ip)),
        Err(e) => {
            tracing::error!(error = %e, "key lookup failed");
            Err(EdgeError::ControlPlaneUnavailable)
        }
    }
}

/// The platform operator (`/platform/*`): bearer `OP_PLATFORM_KEY`; unset, nobody.
pub fn authenticate_platform(
    state: &State,
    headers: &HeaderMap,
    ip: IpAddr,
) -> Result<Principal, EdgeError> {
    let ok = match (&state.config.platform_key, bearer(authorization(headers))) {
        (Some(want), Some(Ok(got))) => secrets_equal(want, got),
        _ => false,
    };
    if !ok {
        return Err(refuse(state, ip));
    }
    Ok(platform_principal())
}

/// `GET /metrics` is open unless `METRICS_TOKEN` is set; then it takes that bearer.
pub fn may_scrape(state: &State, headers: &HeaderMap) -> bool {
    match &state.config.metrics_token {
        None => true,
        Some(want) => {
            matches!(bearer(authorization(headers)), Some(Ok(got)) if secrets_equal(want, got))
        }
    }
}

/// A failed authentication: `401`, or `429` once this address has failed too often.
fn refuse(state: &State, ip: IpAddr) -> EdgeError {
    match state.limits.check_ip(ip) {
        Some(d) if !d.allowed => EdgeError::RateLimited(d),
        _ => EdgeError::Unauthorized,
    }
}

fn authorization(headers: &HeaderMap) -> Option<&[u8]> {
    headers.get(header::AUTHORIZATION).map(|v| v.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_announced_as_ended_is_never_cached_as_live() {
        let cache = SessionCache::default();
        let later = Instant::now() + Duration::from_secs(30);
        cache.put("s1", later);
        assert!(cache.hit("s1"));
        cache.invalidate("s1");
        assert!(!cache.hit("s1"));
        // A lookup that read the row before the session ended finishes afterwards.
        cache.put("s1", later);
        assert!(!cache.hit("s1"), "an ended session came back");
        cache.clear();
        cache.put("s1", later);
        assert!(
            !cache.hit("s1"),
            "clearing forgets live answers, not ended sessions"
        );
        cache.put("s2", later);
        assert!(cache.hit("s2"));
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer(None), None);
        assert_eq!(bearer(Some(b"Bearer abc")), Some(Ok("abc")));
        assert_eq!(bearer(Some(b"bearer   abc ")), Some(Ok("abc")));
        assert_eq!(bearer(Some(b"Basic abc")), Some(Err(Refused::Malformed)));
        assert_eq!(bearer(Some(b"Bearer")), Some(Err(Refused::Malformed)));
        assert_eq!(bearer(Some(&[0xff, 0xfe])), Some(Err(Refused::Malformed)));
    }

    #[test]
    fn keys_only_work_for_their_tenant() {
        let rec = KeyRecord {
            id: "k1".into(),
            tenant_id: "A".into(),
            kind: KeyKind::Scoped(vec!["partners:read".into()]),
        };
        let p = principal_for(&rec, "A").unwrap();
        assert_eq!(p.kind(), PrincipalKind::PrincipalScoped);
        assert_eq!(p.scopes, vec!["partners:read"]);
        assert_eq!(principal_for(&rec, "B"), Err(Refused::OtherTenant));
    }
}
