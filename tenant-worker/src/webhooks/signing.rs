//! Webhook signatures, both schemes on every request:
//! - the original OpenPartner scheme: `X-OpenPartner-Signature` = lowercase hex
//!   HMAC-SHA256 over `<timestamp>.<raw body>`, keyed by the full secret string;
//! - Standard Webhooks: `webhook-signature: v1,<base64 HMAC-SHA256 over
//!   "<id>.<timestamp>.<body>">`, keyed by the base64-decoded part after `whsec_` (either
//!   base64 alphabet, for secrets imported from the original).

use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD},
    Engine,
};
use rand::RngCore;
use ring::hmac;

/// `whsec_` + standard base64 of 24 random bytes.
pub fn new_secret() -> String {
    let mut b = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("whsec_{}", STANDARD.encode(b))
}

fn standard_key(secret: &str) -> Option<Vec<u8>> {
    let b64 = secret.strip_prefix("whsec_")?;
    STANDARD
        .decode(b64)
        .or_else(|_| URL_SAFE.decode(b64))
        .or_else(|_| URL_SAFE_NO_PAD.decode(b64))
        .ok()
}

pub fn original(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    hex::encode(ctx.sign().as_ref())
}

/// `v1,<base64>`; None if the secret is not a `whsec_` base64 secret.
pub fn standard(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &standard_key(secret)?);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(msg_id.as_bytes());
    ctx.update(b".");
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    Some(format!("v1,{}", STANDARD.encode(ctx.sign().as_ref())))
}

/// The signature headers of one request, signed by every secret in `secrets` (the current
/// one first; during a rotation the previous one too).
pub fn headers(
    secrets: &[String],
    msg_id: &str,
    event_type: &str,
    timestamp: i64,
    body: &[u8],
) -> Vec<(String, String)> {
    let mut h = vec![
        ("content-type".to_string(), "application/json".to_string()),
        (
            "user-agent".to_string(),
            "OpenPartner-Webhooks/1".to_string(),
        ),
        ("x-openpartner-timestamp".to_string(), timestamp.to_string()),
        ("x-openpartner-event".to_string(), event_type.to_string()),
        ("x-openpartner-delivery".to_string(), msg_id.to_string()),
        ("webhook-id".to_string(), msg_id.to_string()),
        ("webhook-timestamp".to_string(), timestamp.to_string()),
    ];
    if let Some(current) = secrets.first() {
        h.push((
            "x-openpartner-signature".to_string(),
            original(current, timestamp, body),
        ));
    }
    if let Some(previous) = secrets.get(1) {
        h.push((
            "x-openpartner-signature-previous".to_string(),
            original(previous, timestamp, body),
        ));
    }
    let std_sigs: Vec<String> = secrets
        .iter()
        .filter_map(|s| standard(s, msg_id, timestamp, body))
        .collect();
    h.push(("webhook-signature".to_string(), std_sigs.join(" ")));
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A secret of our shape (or the original's base64url one).
    fn valid_secret(s: &str) -> bool {
        standard_key(s).is_some_and(|k| k.len() >= 16)
    }

    #[test]
    fn secrets_have_the_documented_shape() {
        let s = new_secret();
        assert!(s.starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&s[6..]).unwrap().len(), 24);
        assert!(valid_secret(&s));
        assert!(valid_secret("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX"));
        assert!(!valid_secret("nope"));
    }

    #[test]
    fn known_vectors() {
        // Standard Webhooks' published example (standardwebhooks test suite).
        let sig = standard(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            sig.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        // The original scheme: hex HMAC over "<ts>.<body>" keyed by the whole secret string.
        let o = original("whsec_x", 1, b"{}");
        assert_eq!(o.len(), 64);
        assert!(o
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }

    #[test]
    fn rotation_signs_with_both() {
        let (a, b) = (new_secret(), new_secret());
        let h = headers(&[a.clone(), b.clone()], "evt_1", "x", 5, b"{}");
        let sig = h
            .iter()
            .find(|(k, _)| k == "webhook-signature")
            .unwrap()
            .1
            .clone();
        assert_eq!(sig.split(' ').count(), 2);
        assert!(sig.contains(&standard(&b, "evt_1", 5, b"{}").unwrap()));
    }
}
