//! The shared secret between gateways and workers (`OP_WORKER_TOKEN`).
//!
//! When gateways and workers run on different hosts, a worker with a token configured
//! refuses every gRPC call that does not carry it in the [`METADATA`] entry. Rotation: the
//! worker also accepts `OP_WORKER_TOKEN_PREVIOUS`, so workers learn the new value first,
//! then the gateways switch, then the previous value is dropped. Both values are compared in
//! constant time, and neither ever reaches a log line (`Debug` prints `<set>`).

use subtle::ConstantTimeEq;

/// The gRPC metadata key carrying the token (lower case, as HTTP/2 requires).
pub const METADATA: &str = "x-op-worker-token";

/// What a worker accepts: the current token and, during a rotation, the previous one.
#[derive(Clone)]
pub struct AcceptedTokens {
    current: String,
    previous: Option<String>,
}

impl std::fmt::Debug for AcceptedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AcceptedTokens(<set>)")
    }
}

impl AcceptedTokens {
    /// `OP_WORKER_TOKEN` (+ `OP_WORKER_TOKEN_PREVIOUS`); None when no token is configured
    /// (calls are not authenticated). A previous value without a current one is an error.
    pub fn from_env() -> Result<Option<AcceptedTokens>, String> {
        let current = crate::env::var("OP_WORKER_TOKEN");
        let previous = crate::env::var("OP_WORKER_TOKEN_PREVIOUS");
        match (current, previous) {
            (None, None) => Ok(None),
            (None, Some(_)) => {
                Err("OP_WORKER_TOKEN_PREVIOUS is set without OP_WORKER_TOKEN".into())
            }
            (Some(current), previous) => Ok(Some(AcceptedTokens::new(current, previous))),
        }
    }

    pub fn new(current: String, previous: Option<String>) -> AcceptedTokens {
        AcceptedTokens { current, previous }
    }

    /// True when `presented` equals the current or the previous token. Both comparisons
    /// always run, each in constant time for equal lengths (`subtle`).
    pub fn accepts(&self, presented: &[u8]) -> bool {
        let current = presented.ct_eq(self.current.as_bytes());
        let previous = match &self.previous {
            Some(p) => presented.ct_eq(p.as_bytes()),
            None => subtle::Choice::from(0),
        };
        (current | previous).into()
    }
}

/// What a gateway sends: `OP_WORKER_TOKEN`, or None.
pub fn outgoing_from_env() -> Option<String> {
    crate::env::var("OP_WORKER_TOKEN")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_current_and_previous_only() {
        let t = AcceptedTokens::new("new-token-0123456789".into(), Some("old-token".into()));
        assert!(t.accepts(b"new-token-0123456789"));
        assert!(t.accepts(b"old-token"));
        assert!(!t.accepts(b""));
        assert!(!t.accepts(b"new-token-012345678"));
        assert!(!t.accepts(b"old-token "));
        let only = AcceptedTokens::new("abc".into(), None);
        assert!(only.accepts(b"abc"));
        assert!(!only.accepts(b""));
        assert_eq!(format!("{only:?}"), "AcceptedTokens(<set>)");
    }
}
