//! API keys: `op_` + 48 lowercase hex chars (24 random bytes).
//!
//! Only the SHA-256 of a key is stored, with an 8-char lookup prefix. A lookup fetches the
//! (few) rows sharing the prefix and compares hashes in constant time, so neither the
//! database nor the comparison leaks how much of a guessed key was right.

use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio_postgres::GenericClient;

pub const KEY_PREFIX: &str = "op_";
const KEY_HEX_LEN: usize = 48;
const LOOKUP_PREFIX_LEN: usize = 8;

/// What a key may do. Stored as `kind` + `scopes` + `partner_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    Admin,
    Scoped(Vec<String>),
    Partner(String),
}

impl KeyKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            KeyKind::Admin => "admin",
            KeyKind::Scoped(_) => "scoped",
            KeyKind::Partner(_) => "partner",
        }
    }
}

/// A key row as the gateway needs it to authenticate.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub id: String,
    pub tenant_id: String,
    pub kind: KeyKind,
}

/// A freshly minted key: the plaintext exists only here and in the one response that shows it.
pub struct NewKey {
    pub plaintext: String,
    pub prefix: String,
    pub hash: [u8; 32],
}

impl NewKey {
    pub fn generate() -> NewKey {
        let mut bytes = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let plaintext = format!("{KEY_PREFIX}{}", hex::encode(bytes));
        let prefix = plaintext[KEY_PREFIX.len()..KEY_PREFIX.len() + LOOKUP_PREFIX_LEN].to_string();
        let hash = hash_key(&plaintext);
        NewKey {
            plaintext,
            prefix,
            hash,
        }
    }
}

pub fn hash_key(plaintext: &str) -> [u8; 32] {
    Sha256::digest(plaintext.as_bytes()).into()
}

/// Returns the lookup prefix if `candidate` has the shape of one of our keys. Malformed
/// credentials are rejected here, before any database work.
pub fn lookup_prefix(candidate: &str) -> Option<&str> {
    let hex_part = candidate.strip_prefix(KEY_PREFIX)?;
    if hex_part.len() != KEY_HEX_LEN
        || !hex_part
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    Some(&hex_part[..LOOKUP_PREFIX_LEN])
}

/// Constant-time equality of two secrets of any length (hashed first so lengths do not leak).
pub fn secrets_equal(a: &str, b: &str) -> bool {
    hash_key(a).ct_eq(&hash_key(b)).into()
}

/// Finds the live key whose hash matches `plaintext`.
pub async fn lookup(
    client: &impl GenericClient,
    plaintext: &str,
) -> Result<Option<KeyRecord>, tokio_postgres::Error> {
    let Some(prefix) = lookup_prefix(plaintext) else {
        return Ok(None);
    };
    let want = hash_key(plaintext);
    let rows = client
        .query(
            "SELECT id, tenant_id, key_hash, kind, scopes, partner_id
               FROM control.api_keys WHERE prefix = $1 AND revoked_at IS NULL",
            &[&prefix],
        )
        .await?;
    let mut found = None;
    for row in rows {
        let hash: Vec<u8> = row.get("key_hash");
        // Compare every candidate (no early exit) so timing does not depend on which matched.
        if bool::from(hash.as_slice().ct_eq(&want)) {
            let kind = match row.get::<_, &str>("kind") {
                "scoped" => KeyKind::Scoped(row.get("scopes")),
                "partner" => KeyKind::Partner(
                    row.get::<_, Option<String>>("partner_id")
                        .unwrap_or_default(),
                ),
                _ => KeyKind::Admin,
            };
            found = Some(KeyRecord {
                id: row.get("id"),
                tenant_id: row.get("tenant_id"),
                kind,
            });
        }
    }
    Ok(found)
}

/// A key as listed to its owners (never the plaintext or the hash).
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub id: String,
    pub prefix: String,
    pub kind: KeyKind,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Stores a new key for `tenant_id` and returns its row id.
pub async fn insert(
    client: &impl GenericClient,
    tenant_id: &str,
    key: &NewKey,
    kind: &KeyKind,
    label: Option<&str>,
) -> Result<KeyInfo, tokio_postgres::Error> {
    let id = ulid::Ulid::new().to_string();
    let (scopes, partner_id): (Vec<String>, Option<&str>) = match kind {
        KeyKind::Admin => (vec![], None),
        KeyKind::Scoped(s) => (s.clone(), None),
        KeyKind::Partner(p) => (vec![], Some(p.as_str())),
    };
    let row = client
        .query_one(
            "INSERT INTO control.api_keys (id, tenant_id, prefix, key_hash, kind, scopes, partner_id, label)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING created_at",
            &[
                &id,
                &tenant_id,
                &key.prefix,
                &key.hash.as_slice(),
                &kind.as_str(),
                &scopes,
                &partner_id,
                &label,
            ],
        )
        .await?;
    Ok(KeyInfo {
        id,
        prefix: key.prefix.clone(),
        kind: kind.clone(),
        label: label.map(str::to_string),
        created_at: row.get(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let k = NewKey::generate();
        assert_eq!(k.plaintext.len(), 3 + 48);
        assert_eq!(lookup_prefix(&k.plaintext), Some(k.prefix.as_str()));
        assert_eq!(k.prefix.len(), 8);
        assert_eq!(k.hash, hash_key(&k.plaintext));
        assert_ne!(NewKey::generate().plaintext, k.plaintext);
    }

    #[test]
    fn malformed_keys_are_rejected_without_lookup() {
        assert_eq!(lookup_prefix("op_short"), None);
        assert_eq!(lookup_prefix(&format!("op_{}", "A".repeat(48))), None);
        assert_eq!(lookup_prefix(&format!("xx_{}", "a".repeat(48))), None);
        assert_eq!(lookup_prefix(&format!("op_{}", "a".repeat(49))), None);
        assert!(lookup_prefix(&format!("op_{}", "0".repeat(48))).is_some());
    }

    #[test]
    fn secret_comparison() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "abcd"));
    }
}
