//! A campaign's schedule: `startsAt`/`endsAt` (either end open when null), the window
//! `startsAt <= t < endsAt` in which links can be made (`409 campaign_not_active` outside,
//! for everyone) and clicks earn credit (the attribution candidate read drops clicks made
//! outside it, `attribution::store::candidates_for`), and the end-of-campaign reminder: a
//! background job that mails the tenant's admins once per end date, 7 days before it.
//!
//! The job visits a tenant when the `jobs` module says so (after a campaign write, at the
//! next reminder time it recorded in the pending-work set, or when the safety sweep finds a
//! campaign not yet reminded of), and handles it in one transaction under a per-tenant
//! advisory lock taken with `try` (a statement of its own, CITUS rule 11), so at most one
//! worker mails a tenant at a time; the end date
//! mailed for is stored (`campaigns.end_reminder_for`) in the same transaction, so a reminder
//! goes out once per end date and again when `endsAt` changes.

use crate::{
    error::{ApiError, ErrorCode},
    mail,
    sql::{Schema, Tx},
    App,
};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// How long before `endsAt` the reminder goes out.
pub const REMIND_DAYS_BEFORE: i64 = 7;

/// `startsAt`/`endsAt` on input: an RFC 3339 time from 1970 to 9999 (UTC), or null (open).
pub fn parse_time(v: &Value, field: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    let bad = || {
        ApiError::invalid_body(format!(
            "{field} must be an RFC 3339 date-time between 1970 and 9999, or null"
        ))
        .with("field", field)
    };
    match v {
        Value::Null => Ok(None),
        Value::String(s) => {
            let t = DateTime::parse_from_rfc3339(s.trim())
                .map_err(|_| bad())?
                .with_timezone(&Utc);
            let lo = DateTime::<Utc>::UNIX_EPOCH;
            let hi = "9999-12-31T23:59:59.999Z"
                .parse::<DateTime<Utc>>()
                .map_err(|_| bad())?;
            if t < lo || t > hi {
                return Err(bad());
            }
            // Stored to the microsecond, shown to the millisecond: keep what is shown.
            Ok(Some(
                DateTime::from_timestamp_millis(t.timestamp_millis()).ok_or_else(bad)?,
            ))
        }
        _ => Err(bad()),
    }
}

/// The end must come after the start (when both are set).
pub fn check_order(
    starts: Option<DateTime<Utc>>,
    ends: Option<DateTime<Utc>>,
) -> Result<(), ApiError> {
    match (starts, ends) {
        (Some(s), Some(e)) if e <= s => {
            Err(ApiError::invalid_body("endsAt must be after startsAt").with("field", "endsAt"))
        }
        _ => Ok(()),
    }
}

/// Whether `now` is inside the window `[starts, ends)`.
pub fn is_active(
    now: DateTime<Utc>,
    starts: Option<DateTime<Utc>>,
    ends: Option<DateTime<Utc>>,
) -> bool {
    starts.is_none_or(|s| s <= now) && ends.is_none_or(|e| now < e)
}

/// `409 campaign_not_active` unless `now` is inside the window.
pub fn require_active(
    now: DateTime<Utc>,
    starts: Option<DateTime<Utc>>,
    ends: Option<DateTime<Utc>>,
) -> Result<(), ApiError> {
    if is_active(now, starts, ends) {
        return Ok(());
    }
    let show = |t: Option<DateTime<Utc>>| {
        t.map(|t| Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true)))
            .unwrap_or(Value::Null)
    };
    let why = if starts.is_some_and(|s| now < s) {
        "the campaign has not started yet"
    } else {
        "the campaign has ended"
    };
    Err(ApiError::conflict(ErrorCode::CampaignNotActive, why)
        .with("startsAt", show(starts))
        .with("endsAt", show(ends)))
}

/// One tenant's reminder pass, run by the `jobs` module when the tenant is due (a campaign
/// write, the pending-work set, the safety sweep): mails what is due, and returns when the
/// next reminder of this tenant falls due (7 days before the nearest end not reminded of),
/// at the latest in `OP_CAMPAIGN_REMINDER_INTERVAL_SECS`; None when no campaign ends later.
pub async fn reminders_pass(
    app: &Arc<App>,
    tenant_id: &str,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let now = Utc::now();
    remind_tenant(
        app,
        tenant_id,
        now,
        now + Duration::days(REMIND_DAYS_BEFORE),
    )
    .await?;
    let schema = Schema::of_tenant(tenant_id).ok_or_else(ApiError::internal)?;
    let nearest: Option<DateTime<Utc>> = app
        .pool
        .get()
        .await?
        .query_one(
            format!(
                "SELECT min(ends_at) FROM {schema}.campaigns
                  WHERE ends_at > $1 AND end_reminder_for IS DISTINCT FROM ends_at"
            )
            .as_str(),
            &[&now],
        )
        .await?
        .get(0);
    let cap = now + Duration::seconds(app.config.campaign_reminder_interval_secs as i64);
    // Still due now: another worker holds the tenant's lock; look again shortly.
    let soon = now + Duration::seconds(5);
    Ok(nearest.map(|end| (end - Duration::days(REMIND_DAYS_BEFORE)).clamp(soon, cap.max(soon))))
}

/// The advisory lock key of one tenant's reminders.
fn lock_key(schema: &Schema) -> i64 {
    let d = Sha256::digest(format!("campaign-reminders:{schema}").as_bytes());
    i64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// Mails the reminders due in one tenant, unless another worker is at it. Returns how many
/// campaigns it reminded of.
async fn remind_tenant(
    app: &Arc<App>,
    tenant_id: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<usize, ApiError> {
    let schema = Schema::of_tenant(tenant_id).ok_or_else(ApiError::internal)?;
    let tx = Tx::begin(&app.pool, &schema).await?;
    let mine: bool = tx
        .query_one(
            "SELECT pg_try_advisory_xact_lock($1)",
            &[&lock_key(&schema)],
        )
        .await?
        .get(0);
    if !mine {
        return Ok(0);
    }
    let campaigns = tx
        .query(
            "SELECT id, name, ends_at FROM campaigns
              WHERE ends_at > $1 AND ends_at <= $2 AND end_reminder_for IS DISTINCT FROM ends_at
              ORDER BY ends_at, id FOR UPDATE",
            &[&now, &until],
        )
        .await?;
    if campaigns.is_empty() {
        return Ok(0);
    }
    let admins: Vec<String> = tx
        .query(
            "SELECT email FROM admins WHERE status <> 'revoked' ORDER BY email",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut mails = Vec::new();
    for c in &campaigns {
        let id: String = c.get("id");
        let name: String = c.get("name");
        let ends_at: DateTime<Utc> = c.get("ends_at");
        let when = ends_at.to_rfc3339_opts(SecondsFormat::Secs, true);
        for to in &admins {
            mails.push(
                mail::queue(
                    &tx,
                    &app.mailer,
                    to,
                    &format!("Campaign \"{name}\" ends on {}", ends_at.format("%Y-%m-%d")),
                    &format!(
                        "The campaign \"{name}\" ({id}) ends at {when}.\n\n\
                         After that, partners cannot create new links for it and clicks no longer \
                         earn credit. To extend it, change its endsAt.\n"
                    ),
                    "campaign_ending",
                    &[],
                )
                .await?,
            );
        }
        tx.execute(
            "UPDATE campaigns SET end_reminder_for = $2 WHERE id = $1",
            &[&id, &ends_at],
        )
        .await?;
    }
    tx.commit().await?;
    mail::send_after_commit(app, &schema, mails);
    Ok(campaigns.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_window_is_half_open() {
        let (s, e) = (
            Some(t("2026-01-01T00:00:00Z")),
            Some(t("2026-02-01T00:00:00Z")),
        );
        assert!(!is_active(t("2025-12-31T23:59:59Z"), s, e));
        assert!(is_active(t("2026-01-01T00:00:00Z"), s, e));
        assert!(is_active(t("2026-01-31T23:59:59Z"), s, e));
        assert!(!is_active(t("2026-02-01T00:00:00Z"), s, e));
        assert!(is_active(t("1999-01-01T00:00:00Z"), None, e));
        assert!(is_active(t("2999-01-01T00:00:00Z"), s, None));
        assert_eq!(
            require_active(t("2027-01-01T00:00:00Z"), s, e)
                .unwrap_err()
                .code,
            ErrorCode::CampaignNotActive
        );
    }

    #[test]
    fn times_are_rfc3339_in_range_or_null() {
        assert_eq!(parse_time(&json!(null), "startsAt").unwrap(), None);
        assert_eq!(
            parse_time(&json!("2026-05-01T12:00:00+02:00"), "startsAt").unwrap(),
            Some(t("2026-05-01T10:00:00Z"))
        );
        for bad in [
            json!("yesterday"),
            json!(5),
            json!("1969-12-31T23:59:59Z"),
            json!("0000-01-01T00:00:00+23:00"),
        ] {
            let e = parse_time(&bad, "endsAt").unwrap_err();
            assert_eq!(e.extra["field"], "endsAt", "{bad}");
        }
        assert!(check_order(
            Some(t("2026-01-02T00:00:00Z")),
            Some(t("2026-01-01T00:00:00Z"))
        )
        .is_err());
        assert!(check_order(
            Some(t("2026-01-01T00:00:00Z")),
            Some(t("2026-01-01T00:00:00Z"))
        )
        .is_err());
        assert!(check_order(None, Some(t("2026-01-01T00:00:00Z"))).is_ok());
    }
}
