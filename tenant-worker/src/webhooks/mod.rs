//! Outbound webhooks that never lose an event.
//!
//! Every domain change writes its event to the tenant's `outbox` in the same transaction
//! ([`crate::outbox`]). The delivery pipeline ([`delivery`]), run by every worker, fans
//! outbox rows out into one `webhook_deliveries` row per subscribed endpoint, claims due
//! deliveries with `FOR UPDATE SKIP LOCKED` (two workers never send the same attempt; a
//! claim expires, so a worker killed mid-delivery leaves it to another), sends them signed
//! ([`signing`]) through an SSRF-guarded client ([`ssrf`]) and schedules retries. Endpoint
//! management lives in [`endpoints`]; the delivery log, manual retry and test fires in
//! [`log`]. The hot event path skips outbox rows nobody subscribes to, provably
//! ([`subscriptions`]).

pub mod delivery;
pub mod endpoints;
pub mod log;
pub mod signing;
pub mod ssrf;
pub mod subscriptions;

/// The event types an endpoint can subscribe to (`*` = all). `partnership.approved` is the
/// original's and accepted in subscriptions.
pub const EVENT_TYPES: &[&str] = &[
    "attribution.created",
    "commission.accrued",
    "commission.approved",
    "commission.paid",
    "commission.reversed",
    "partner.created",
    "partner.activated",
    "partner.revoked",
    "payout.created",
    "partnership.approved",
];

/// Event types a test fire may use: the real ones plus `webhook.test`.
pub fn is_known_event(t: &str) -> bool {
    t == "webhook.test" || EVENT_TYPES.contains(&t)
}
