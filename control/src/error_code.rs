//! Every error code of the API (`{"error": "<code>", "detail": …}`), shared by the gateway
//! and the workers so that both speak the same closed list (`../shared/API.md`,
//! `docs/API.md`). A new code is a new variant here, never a string at the call site.

use std::fmt;

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = $code:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in declaration order (for documents generated from the code).
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as it appears in the `error` field.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }
        }
    };
}

error_codes! {
    // Requests, whatever the route
    InvalidBody = "invalid_body",
    InvalidQuery = "invalid_query",
    InvalidCursor = "invalid_cursor",
    NotFound = "not_found",
    MethodNotAllowed = "method_not_allowed",
    PayloadTooLarge = "payload_too_large",
    Conflict = "conflict",
    RateLimited = "rate_limited",
    Internal = "internal",
    Unavailable = "unavailable",
    Timeout = "timeout",
    BadGateway = "bad_gateway",
    // Tenancy
    TenantSlugMissing = "tenant_slug_missing",
    TenantNotFound = "tenant_not_found",
    TenantSuspended = "tenant_suspended",
    InvalidSlug = "invalid_slug",
    SlugReserved = "slug_reserved",
    SlugTaken = "slug_taken",
    // Authentication and authorization
    Unauthorized = "unauthorized",
    Forbidden = "forbidden",
    /// A cookie-authenticated write from another site (the portal's CSRF guard).
    CrossSiteRequest = "cross_site_request",
    ForbiddenScope = "forbidden_scope",
    InvalidScope = "invalid_scope",
    InvalidToken = "invalid_token",
    SessionsDisabled = "sessions_disabled",
    // Idempotency-Key
    InvalidIdempotencyKey = "invalid_idempotency_key",
    IdempotencyKeyInProgress = "idempotency_key_in_progress",
    IdempotencyKeyReused = "idempotency_key_reused",
    // Partners and admins
    EmailTaken = "email_taken",
    AlreadyActivated = "already_activated",
    AlreadyRevoked = "already_revoked",
    NotRevoked = "not_revoked",
    PartnerRevoked = "partner_revoked",
    // Links and clicks
    UrlNotAllowed = "url_not_allowed",
    /// The original OpenPartner's spelling, which its clients match on.
    LinkKeyTaken = "linkKey_taken",
    DestinationOverrideNotAllowed = "destination_override_not_allowed",
    ClickNotFound = "click_not_found",
    // Money, events, commissions, payouts
    InvalidAmount = "invalid_amount",
    InvalidCurrency = "invalid_currency",
    /// A commission rule the engine cannot evaluate (programs.md, compound rules).
    InvalidRule = "invalid_rule",
    OverRefund = "over_refund",
    NotApprovable = "not_approvable",
    NotReversible = "not_reversible",
    HoldbackActive = "holdback_active",
    BulkFailed = "bulk_failed",
    NotPending = "not_pending",
    // Program access and schedule
    UnknownCampaignIds = "unknown_campaign_ids",
    NoValidCampaigns = "no_valid_campaigns",
    GrantNotFound = "grant_not_found",
    CampaignNotGranted = "campaign_not_granted",
    CampaignNotActive = "campaign_not_active",
    // Webhooks
    SecretsKeyMissing = "secrets_key_missing",
    EndpointInactive = "endpoint_inactive",
    EndpointMismatch = "endpoint_mismatch",
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_plain() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(
                s.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_'),
                "{s} is not a plain identifier"
            );
        }
    }
}
