//! Stripe-style `Idempotency-Key` for every POST of the tenant API, applied once, around the
//! handler, by `routes::dispatch` (after routing and authorization, so 401/403/404
//! are never stored).
//!
//! - The key (1–255 printable ASCII characters, else `400 invalid_idempotency_key`) is
//!   claimed in a short transaction of its own *before* the handler runs:
//!   `INSERT ... ON CONFLICT (key) DO NOTHING RETURNING`. Zero rows means someone holds it:
//!   - a different request (method, path, query, body or caller) → `409
//!     idempotency_key_reused`;
//!   - the same request, still in progress → `409 idempotency_key_in_progress`, unless the
//!     claim is older than [`STALE_CLAIM`] (a crashed worker): then it is taken over;
//!   - the same request, finished → its stored reply (status, headers, body) with
//!     `Idempotent-Replayed: true`.
//! - Rows older than [`RETENTION`] count as absent and are overwritten.
//! - After the handler: a reply below 500 is stored; a 5xx (or a panic, or a cancelled
//!   request) releases the claim, so the client may retry.
//!
//! Stored replies can carry secrets (a new API key's plaintext, a session cookie), which
//! must not sit in the database in the clear. So the row is keyed by SHA-256 of the
//! Idempotency-Key, and the reply (headers and body, in `body`; `headers` stays NULL) is
//! sealed with ChaCha20-Poly1305 under a key derived (HKDF-SHA256) from the Idempotency-Key
//! itself and the request fingerprint: only a client presenting the same key and the same
//! request can open it. (As strong as the client's key: use random keys, e.g. UUIDs.) The
//! caller is part of the fingerprint, so a reply is only ever replayed to its principal.
//!
//! Not applied to other methods nor to the platform surface (it has no tenant schema).
//! Queries name the tenant's table schema-qualified (the schema name is generated from the
//! tenant id, never user input), because the claim and the reply are written outside the
//! handler's `Ctx`.

use crate::{
    access::Principal,
    context::{Ctx, Handler, Reply},
    error::{ApiError, ErrorCode},
    App,
};
use chrono::{DateTime, Utc};
use ring::{aead, hkdf, rand::SecureRandom};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The request header (as the gateway forwards it: lower case).
pub const HEADER: &str = "idempotency-key";
/// Added to a replayed reply.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
pub const MAX_KEY_LEN: usize = 255;
/// How long a reply is replayed; older rows are treated as absent.
pub(crate) const RETENTION: &str = "24 hours";
/// A claim in progress for longer than this may be taken over by the same request.
const STALE_CLAIM: &str = "60 seconds";

/// Runs `handler` for `ctx`, under the `Idempotency-Key` rules when they apply.
pub async fn run(ctx: Ctx, handler: Handler) -> Reply {
    let store = match (&ctx.tenant, ctx.header(HEADER)) {
        (Some(tenant), Some(raw)) if ctx.method.eq_ignore_ascii_case("POST") => {
            match validate_key(raw) {
                Ok(key) => Store {
                    app: ctx.app.clone(),
                    table: tenant.schema.table("idempotency_keys"),
                    row_key: row_key(key),
                    sealer: Sealer::new(key, &request_hash(&ctx)),
                },
                Err(e) => return e.into(),
            }
        }
        _ => return call(handler, ctx).await,
    };
    let claim = match store.claim().await {
        Ok(Claimed::Run(claim)) => claim,
        Ok(Claimed::Replay(reply)) => return reply,
        Err(e) => return e.into(),
    };
    let reply = call(handler, ctx).await;
    claim.settle(&reply).await;
    reply
}

async fn call(handler: Handler, ctx: Ctx) -> Reply {
    handler(ctx).await.unwrap_or_else(Reply::from)
}

pub fn validate_key(raw: &str) -> Result<&str, ApiError> {
    if (1..=MAX_KEY_LEN).contains(&raw.len()) && raw.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        Ok(raw)
    } else {
        Err(ApiError::new(
            400,
            ErrorCode::InvalidIdempotencyKey,
            format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} printable ASCII characters"),
        ))
    }
}

/// What the `key` column holds: hex SHA-256 of the Idempotency-Key, never the key itself.
pub fn row_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// SHA-256 over method, path, query, caller and body, each length-prefixed so no two
/// different requests concatenate to the same input.
pub fn request_hash(ctx: &Ctx) -> Vec<u8> {
    let method = ctx.method.to_ascii_uppercase();
    let caller = caller(&ctx.principal);
    let mut h = Sha256::new();
    for part in [
        method.as_bytes(),
        ctx.path.as_bytes(),
        ctx.query.as_bytes(),
        caller.as_bytes(),
        &ctx.body,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finalize().to_vec()
}

/// Who the reply belongs to: the key, or the person behind a session.
fn caller(p: &Principal) -> String {
    match p {
        Principal::Anonymous => "anonymous".into(),
        Principal::Platform => "platform".into(),
        Principal::System => "system".into(),
        Principal::Admin {
            key_id: Some(k), ..
        } => format!("key:{k}"),
        Principal::Admin {
            session: Some(s), ..
        } => format!("admin:{}", s.admin_id),
        Principal::Admin { .. } => "admin".into(),
        Principal::Scoped { key_id, .. } => format!("key:{key_id}"),
        Principal::Partner {
            key_id: Some(k), ..
        } => format!("key:{k}"),
        Principal::Partner { partner_id, .. } => format!("partner:{partner_id}"),
    }
}

/// Seals and opens stored replies under a key only the same key + request can derive.
#[derive(Clone)]
struct Sealer {
    request_hash: Vec<u8>,
    key: Arc<aead::LessSafeKey>,
}

const SEAL_INFO: &[u8] = b"openpartner idempotency reply v1";
const NONCE_LEN: usize = 12;

impl Sealer {
    fn new(idempotency_key: &str, request_hash: &[u8]) -> Sealer {
        let prk =
            hkdf::Salt::new(hkdf::HKDF_SHA256, request_hash).extract(idempotency_key.as_bytes());
        let okm = prk
            .expand(&[SEAL_INFO], &aead::CHACHA20_POLY1305)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Sealer {
            request_hash: request_hash.to_vec(),
            key: Arc::new(aead::LessSafeKey::new(aead::UnboundKey::from(okm))),
        }
    }

    /// `nonce ‖ ChaCha20-Poly1305(len(headers) ‖ headers JSON ‖ body)`; the status is
    /// authenticated as associated data.
    fn seal(&self, reply: &Reply) -> Result<Vec<u8>, ApiError> {
        let headers = serde_json::to_vec(&reply.headers).map_err(|_| ApiError::internal())?;
        let mut plain = Vec::with_capacity(4 + headers.len() + reply.body.len() + 16);
        plain.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        plain.extend_from_slice(&headers);
        plain.extend_from_slice(&reply.body);
        let mut nonce = [0u8; NONCE_LEN];
        ring::rand::SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| ApiError::internal())?;
        self.key
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(reply.status.to_be_bytes()),
                &mut plain,
            )
            .map_err(|_| ApiError::internal())?;
        let mut out = nonce.to_vec();
        out.append(&mut plain);
        Ok(out)
    }

    /// The stored reply, plus `Idempotent-Replayed: true`.
    fn open(&self, status: i32, sealed: &[u8]) -> Result<Reply, ApiError> {
        let failed = || {
            tracing::error!("a stored idempotent reply does not open");
            ApiError::internal()
        };
        let status = u16::try_from(status).map_err(|_| failed())?;
        if sealed.len() < NONCE_LEN {
            return Err(failed());
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let mut buf = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(
                aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| failed())?,
                aead::Aad::from(status.to_be_bytes()),
                &mut buf,
            )
            .map_err(|_| failed())?;
        let (len, rest) = plain.split_at_checked(4).ok_or_else(failed)?;
        let len = u32::from_be_bytes(len.try_into().map_err(|_| failed())?) as usize;
        let (headers, body) = rest.split_at_checked(len).ok_or_else(failed)?;
        let mut headers: Vec<(String, String)> =
            serde_json::from_slice(headers).map_err(|_| failed())?;
        headers.push((REPLAYED_HEADER.into(), "true".into()));
        Ok(Reply {
            status,
            headers,
            body: body.to_vec(),
            ..Default::default()
        })
    }
}

#[derive(Clone)]
struct Store {
    app: Arc<App>,
    /// `"t_…".idempotency_keys`
    table: String,
    row_key: String,
    sealer: Sealer,
}

enum Claimed {
    /// The key is ours: run the handler, then settle the claim.
    Run(Claim),
    /// A finished request with this key: answer with its reply.
    Replay(Reply),
}

fn in_progress() -> ApiError {
    ApiError::conflict(
        ErrorCode::IdempotencyKeyInProgress,
        "a request with this Idempotency-Key is still in progress; retry later",
    )
    .with("retryable", true)
}

impl Store {
    async fn claim(self) -> Result<Claimed, ApiError> {
        let table = &self.table;
        let hash = &self.sealer.request_hash;
        let mut conn = self.app.pool.get().await?;
        // A row can vanish between the INSERT and the SELECT (its 5xx released it): retry.
        for _ in 0..3 {
            let tx = conn.transaction().await?;
            let inserted = tx
                .query_opt(
                    &format!(
                        "INSERT INTO {table} (key, request_hash) VALUES ($1, $2)
                         ON CONFLICT (key) DO NOTHING RETURNING created_at"
                    ),
                    &[&self.row_key, hash],
                )
                .await?;
            if let Some(row) = inserted {
                tx.commit().await?;
                return Ok(Claimed::Run(Claim::new(self, row.get(0))));
            }
            let Some(row) = tx
                .query_opt(
                    &format!(
                        "SELECT request_hash, status, body,
                                created_at < now() - interval '{RETENTION}' AS expired,
                                created_at < now() - interval '{STALE_CLAIM}' AS stale
                           FROM {table} WHERE key = $1 FOR UPDATE"
                    ),
                    &[&self.row_key],
                )
                .await?
            else {
                tx.rollback().await?;
                continue;
            };
            let same = row.get::<_, &[u8]>("request_hash") == hash.as_slice();
            let status: Option<i32> = row.get("status");
            let expired: bool = row.get("expired");
            let stale: bool = row.get("stale");
            if expired || (same && status.is_none() && stale) {
                let row = tx
                    .query_one(
                        &format!(
                            "UPDATE {table}
                                SET request_hash = $2, status = NULL, headers = NULL, body = NULL,
                                    created_at = now(), completed_at = NULL
                              WHERE key = $1 RETURNING created_at"
                        ),
                        &[&self.row_key, hash],
                    )
                    .await?;
                tx.commit().await?;
                if !expired {
                    tracing::warn!("took over an abandoned idempotency claim");
                }
                return Ok(Claimed::Run(Claim::new(self, row.get(0))));
            }
            let outcome = match status {
                _ if !same => Err(ApiError::conflict(
                    ErrorCode::IdempotencyKeyReused,
                    "this Idempotency-Key was used for a different request (method, path, query, \
                     body or caller) in the last 24 hours; use a new key",
                )),
                None => Err(in_progress()),
                Some(status) => self
                    .sealer
                    .open(
                        status,
                        row.get::<_, Option<&[u8]>>("body").unwrap_or_default(),
                    )
                    .map(Claimed::Replay),
            };
            tx.rollback().await?;
            return outcome;
        }
        Err(in_progress())
    }

    /// Stores `reply` for the claim made at `claimed_at` (unless someone took it over).
    async fn save(&self, claimed_at: DateTime<Utc>, reply: &Reply) -> Result<(), ApiError> {
        let sealed = self.sealer.seal(reply)?;
        let conn = self.app.pool.get().await?;
        let n = conn
            .execute(
                &format!(
                    "UPDATE {} SET status = $3, body = $4, completed_at = now()
                      WHERE key = $1 AND created_at = $2 AND status IS NULL",
                    self.table
                ),
                &[
                    &self.row_key,
                    &claimed_at,
                    &i32::from(reply.status),
                    &sealed,
                ],
            )
            .await?;
        if n == 0 {
            tracing::warn!("idempotency claim was taken over; reply not stored");
        }
        Ok(())
    }

    /// Frees the claim made at `claimed_at` so the client can retry.
    async fn release(&self, claimed_at: DateTime<Utc>) -> Result<(), ApiError> {
        let conn = self.app.pool.get().await?;
        conn.execute(
            &format!(
                "DELETE FROM {} WHERE key = $1 AND created_at = $2 AND status IS NULL",
                self.table
            ),
            &[&self.row_key, &claimed_at],
        )
        .await?;
        Ok(())
    }
}

/// A key claimed by this request. Settling stores the reply (or releases the key on a
/// 5xx); a claim dropped unsettled (the handler panicked, the task was cancelled) is
/// released in the background.
struct Claim {
    store: Store,
    /// Identifies this claim: a takeover sets a new `created_at`.
    claimed_at: DateTime<Utc>,
    settled: bool,
}

impl Claim {
    fn new(store: Store, claimed_at: DateTime<Utc>) -> Claim {
        Claim {
            store,
            claimed_at,
            settled: false,
        }
    }

    async fn settle(mut self, reply: &Reply) {
        let result = if reply.status < 500 {
            self.store.save(self.claimed_at, reply).await
        } else {
            self.store.release(self.claimed_at).await
        };
        // If storing failed, the handler's effect may have committed: the claim stays in
        // progress (409 to retries) until it can be taken over after STALE_CLAIM.
        self.settled = true;
        if let Err(e) = result {
            tracing::error!(status = e.status, "could not settle an idempotency claim");
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (store, claimed_at) = (self.store.clone(), self.claimed_at);
        rt.spawn(async move {
            if let Err(e) = store.release(claimed_at).await {
                tracing::error!(status = e.status, "could not release an idempotency claim");
            }
        });
    }
}

/// Deletes one tenant's stored replies past their 24 hours, in bounded batches (any worker
/// may do it; two at once only race to delete the same rows). Returns when the oldest reply
/// left expires: the `jobs` module schedules the next pass then, and its safety sweep finds
/// tenants with expired replies that nothing scheduled.
pub async fn clean_tenant(
    app: &crate::App,
    tenant_id: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    let schema = op_control::schema::Schema::of_tenant(tenant_id).ok_or_else(ApiError::internal)?;
    let conn = app.pool.get().await?;
    let sql = format!(
        "DELETE FROM {schema}.idempotency_keys WHERE key IN (
             SELECT key FROM {schema}.idempotency_keys
              WHERE created_at < now() - interval '{RETENTION}' LIMIT 1000)"
    );
    while conn.execute(sql.as_str(), &[]).await? == 1000 {}
    let next: Option<chrono::DateTime<chrono::Utc>> = conn
        .query_one(
            format!(
                "SELECT min(created_at) + interval '{RETENTION}' FROM {schema}.idempotency_keys"
            )
            .as_str(),
            &[],
        )
        .await?
        .get(0);
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_1_to_255_printable_ascii() {
        assert!(validate_key("a").is_ok());
        assert!(validate_key("order 42/retry-1 ~!").is_ok());
        assert!(validate_key(&"k".repeat(255)).is_ok());
        for bad in [
            String::new(),
            "k".repeat(256),
            "tab\there".into(),
            "new\nline".into(),
            "café".into(),
            "del\x7f".into(),
        ] {
            let e = validate_key(&bad).unwrap_err();
            assert_eq!((e.status, e.code), (400, ErrorCode::InvalidIdempotencyKey));
        }
    }

    fn reply() -> Reply {
        Reply {
            status: 201,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("set-cookie".into(), "a=1".into()),
                ("set-cookie".into(), "b=2".into()),
            ],
            body: br#"{"key":"opk_secret"}"#.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn a_sealed_reply_opens_with_the_same_key_and_request_only() {
        let hash = [7u8; 32];
        let sealed = Sealer::new("k1", &hash).seal(&reply()).unwrap();
        assert!(
            !sealed.windows(10).any(|w| w == b"opk_secret")
                && !sealed.windows(3).any(|w| w == b"a=1"),
            "nothing in the clear"
        );
        let r = Sealer::new("k1", &hash).open(201, &sealed).unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(r.body, reply().body);
        let mut expected = reply().headers;
        expected.push(("idempotent-replayed".into(), "true".into()));
        assert_eq!(r.headers, expected);

        assert!(Sealer::new("k2", &hash).open(201, &sealed).is_err());
        assert!(Sealer::new("k1", &[8u8; 32]).open(201, &sealed).is_err());
        assert!(
            Sealer::new("k1", &hash).open(200, &sealed).is_err(),
            "status is authenticated"
        );
        assert!(Sealer::new("k1", &hash).open(201, &sealed[..5]).is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(Sealer::new("k1", &hash).open(201, &tampered).is_err());
    }

    #[test]
    fn rows_never_hold_the_key_itself() {
        let k = row_key("my-key");
        assert_eq!(k.len(), 64);
        assert!(!k.contains("my-key"));
        assert_eq!(k, row_key("my-key"));
        assert_ne!(k, row_key("my-key2"));
    }
}
