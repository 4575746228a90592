//! Secrets at rest: webhook signing secrets are sealed with ChaCha20-Poly1305 under a key
//! derived from `OP_SECRETS_KEY`, so a database dump alone cannot sign webhooks.

use ring::{
    aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN},
    rand::{SecureRandom, SystemRandom},
};
use sha2::{Digest, Sha256};

#[derive(Clone)]
pub struct SecretsKey([u8; 32]);

impl SecretsKey {
    /// Any operator-chosen string; the AEAD key is its SHA-256.
    pub fn from_passphrase(s: &str) -> SecretsKey {
        SecretsKey(Sha256::digest(format!("openpartner-secrets-v1:{s}").as_bytes()).into())
    }

    fn key(&self) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &self.0).expect("32-byte key"))
    }

    /// `nonce || ciphertext+tag`. `context` binds the ciphertext to its row (e.g. the
    /// endpoint id), so sealed values cannot be swapped between rows.
    pub fn seal(&self, plaintext: &str, context: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("system randomness");
        let mut buf = plaintext.as_bytes().to_vec();
        self.key()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut buf,
            )
            .expect("sealing cannot fail for in-memory buffers");
        let mut out = nonce.to_vec();
        out.extend(buf);
        out
    }

    pub fn open(&self, sealed: &[u8], context: &str) -> Option<String> {
        if sealed.len() < NONCE_LEN + aead::CHACHA20_POLY1305.tag_len() {
            return None;
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let mut buf = ct.to_vec();
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let plain = self
            .key()
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let k = SecretsKey::from_passphrase("pw");
        let sealed = k.seal("whsec_abc", "ep1");
        assert_eq!(k.open(&sealed, "ep1").as_deref(), Some("whsec_abc"));
        assert_eq!(k.open(&sealed, "ep2"), None, "bound to its row");
        assert_eq!(
            SecretsKey::from_passphrase("other").open(&sealed, "ep1"),
            None
        );
        assert!(
            !sealed.windows(9).any(|w| w == b"whsec_abc"),
            "not stored in clear"
        );
    }
}
