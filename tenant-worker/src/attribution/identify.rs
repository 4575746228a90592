//! `POST /attribution/identify {cref, userId, ts?}`: ties a click (the `_cref` cookie) to the
//! merchant's user id, then attributes that user's earlier, not yet attributed events (the
//! backlog: the event arrived before the identity).
//!
//! Public: the SDK calls it from the merchant's site, so it answers CORS for the tenant's
//! own origins — the origins of its campaigns' destination URLs and their deep-link
//! domains — and the gateway rate-limits it per client IP. `ts` is accepted and ignored.

use super::{
    attribute, input,
    plan::{mark_paid, EventFacts, Plan},
    store,
};
use crate::sql::{Schema, Tx};
use crate::{
    context::{Ctx, Reply},
    error::{ApiError, ErrorCode},
    money::Currency,
    openapi::Op,
};
use chrono::Utc;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct IdentifyBody {
    /// The click id: the `_cref` cookie the click router set, or the `cref` query parameter
    /// of the landing URL (a ULID; any other text is an unknown click).
    #[schemars(with = "String")]
    cref: Value,
    /// The merchant's id of the user: a string of 1 to 256 characters without control
    /// characters (trimmed), or an integer. Events name the user by the same id.
    #[schemars(schema_with = "input::text_256")]
    user_id: Value,
    /// Accepted and ignored (the SDK sends the time in epoch milliseconds).
    #[allow(dead_code)]
    #[serde(default)]
    ts: Option<Value>,
}

/// What `POST /attribution/identify` answers.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Identified {
    ok: bool,
    /// The `(cref, userId)` pair's identity; a repeat of the pair answers the same id.
    identity_id: String,
    /// This is the user's first identity.
    first_stitch: bool,
    /// How many of the user's earlier, unattributed events this call attributed (at most
    /// 500 per call).
    backfilled_attributions: u64,
}

const VARY: &str = "`Origin`, when the request carries an `Origin` header.";
const ALLOW_ORIGIN: &str = "The request's `Origin`, when it is one of the tenant's own origins (a campaign destination's origin, or an http(s) origin on a campaign's deep-link domains or their subdomains); absent otherwise, which is how browsers are told no.";

pub fn identify_doc() -> Op {
    Op::new("Stitch a click to a user")
        .describe("Ties a click (the `cref`) to the merchant's user id, then attributes the user's earlier events that found no credit when they arrived (the backlog). Public: the SDK calls it from the merchant's site, with CORS for the tenant's own origins; rate-limited per client address. Errors carry the CORS headers too.")
        .body::<IdentifyBody>()
        .ok::<Identified>(200, "The identity.")
        .errors(404, &[ErrorCode::ClickNotFound])
        .header("Vary", VARY)
        .header("Access-Control-Allow-Origin", ALLOW_ORIGIN)
}

pub fn preflight_doc() -> Op {
    Op::new("CORS preflight of identify")
        .describe("Always `204`. For one of the tenant's own origins the answer allows `POST` with the `Content-Type`, `Idempotency-Key` and `X-Request-Id` headers for 10 minutes; for any other origin it carries no `Access-Control-Allow-Origin`, which is how browsers are told no.")
        .empty(204, "The preflight answer (see its headers).")
        .header("Vary", VARY)
        .header("Access-Control-Allow-Origin", ALLOW_ORIGIN)
        .header(
            "Access-Control-Allow-Methods",
            "`POST, OPTIONS`, for an allowed origin.",
        )
        .header(
            "Access-Control-Allow-Headers",
            "`content-type, idempotency-key, x-request-id`, for an allowed origin.",
        )
        .header(
            "Access-Control-Max-Age",
            "`600` (seconds), for an allowed origin.",
        )
}

fn click_not_found() -> ApiError {
    ApiError::new(404, ErrorCode::ClickNotFound, "no click with this cref")
}

/// `POST /attribution/identify`
pub async fn identify(ctx: Ctx) -> Result<Reply, ApiError> {
    let cors = cors_headers(&ctx).await?;
    // Errors carry the CORS headers too, so the SDK in the browser can read them.
    let mut reply = stitch(&ctx).await.unwrap_or_else(Reply::from);
    reply.headers.extend(cors);
    Ok(reply)
}

async fn stitch(ctx: &Ctx) -> Result<Reply, ApiError> {
    let body: IdentifyBody = ctx.json()?;
    let cref = match &body.cref {
        Value::String(s) => s.trim().to_string(),
        _ => {
            return Err(
                ApiError::invalid_body("cref must be a string (the click id)")
                    .with("field", "cref"),
            )
        }
    };
    let user_id = match &body.user_id {
        // Control characters are refused as events refuse them (`input::text`): no event
        // could name such a user.
        Value::String(s)
            if !s.trim().is_empty()
                && s.trim().chars().count() <= 256
                && !s.trim().chars().any(char::is_control) =>
        {
            s.trim().to_string()
        }
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        _ => {
            return Err(
                ApiError::invalid_body("userId must be a non-empty string").with("field", "userId")
            )
        }
    };
    if cref.len() != 26 || ulid::Ulid::from_string(&cref).is_err() {
        return Err(click_not_found());
    }
    let schema = ctx.tenant()?.schema.clone();
    let tx = ctx.tx().await?;
    if tx
        .query_opt("SELECT 1 FROM clicks WHERE id = $1", &[&cref])
        .await?
        .is_none()
    {
        return Err(click_not_found());
    }
    let had_identity: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM identities WHERE user_id = $1)",
            &[&user_id],
        )
        .await?
        .get(0);
    let inserted = tx
        .query_opt(
            "INSERT INTO identities (id, click_id, user_id) VALUES ($1, $2, $3)
             ON CONFLICT (click_id, user_id) DO NOTHING RETURNING id",
            &[&ulid::Ulid::new().to_string(), &cref, &user_id],
        )
        .await?;
    let (identity_id, new) = match inserted {
        Some(r) => (r.get::<_, String>(0), true),
        None => (
            tx.query_one(
                "SELECT id FROM identities WHERE click_id = $1 AND user_id = $2",
                &[&cref, &user_id],
            )
            .await?
            .get::<_, String>(0),
            false,
        ),
    };
    if new {
        crate::reporting::rollups::add_identity(&tx, &cref).await?;
    }
    let backfilled = if new {
        backfill(&tx, &schema, &user_id).await?
    } else {
        0
    };
    tx.commit().await?;
    Ok(Reply::typed(
        200,
        &Identified {
            ok: true,
            identity_id,
            first_stitch: new && !had_identity,
            backfilled_attributions: backfilled,
        },
    ))
}

/// At most this many backlog events are attributed by one identify (oldest first); the
/// request stays bounded however long a user's history is.
const BACKLOG_LIMIT: i64 = 500;

/// Attributes the user's events that found no credit when they arrived. Returns how many
/// events are attributed now.
async fn backfill(tx: &Tx, schema: &Schema, user_id: &str) -> Result<u64, ApiError> {
    // Before anything of the user's history is read: an event lane batch pricing this
    // user's first event commits before these reads, or waits until this commits.
    store::lock_user(&**tx, schema, user_id).await?;
    let rows = tx
        .query(
            "SELECT id, event_id, type, value, currency, ts FROM events
              WHERE user_id = $1 AND refund_of IS NULL
                AND attribution_status IN ('no_identity', 'no_click', 'outside_window')
              ORDER BY ts, id LIMIT $2 FOR UPDATE",
            &[&user_id, &BACKLOG_LIMIT],
        )
        .await?;
    // The candidates are read once: the new identity is visible inside this transaction.
    let (has_identity, mut candidates) = store::candidates(&**tx, schema, user_id, None).await?;
    let mut count = 0;
    for r in rows {
        let event = EventFacts {
            id: r.get(0),
            event_id: r.get(1),
            kind: r.get(2),
            user_id: user_id.to_string(),
            value: r.get(3),
            currency: Currency::parse(r.get::<_, &str>(4))?,
            ts: r.get(5),
        };
        let outcome = attribute(has_identity, &candidates, event.ts);
        if outcome.status() != "attributed" {
            tx.execute(
                "UPDATE events SET attribution_status = $2 WHERE id = $1",
                &[&event.id, &outcome.status()],
            )
            .await?;
            continue;
        }
        let mut plan = Plan::new(&event, &outcome, Utc::now());
        store::attach(tx, schema, &event, &mut plan).await?;
        // A campaign that just paid is no longer "first" for the user's later events.
        mark_paid(&mut candidates, &event, &plan);
        count += 1;
    }
    Ok(count)
}

/// The origins allowed to call identify from a browser: each campaign destination's
/// origin, and http(s) origins on its deep-link domains and their subdomains.
async fn allowed(ctx: &Ctx, origin: &str) -> Result<bool, ApiError> {
    let Ok(url) = url::Url::parse(origin) else {
        return Ok(false);
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Ok(false);
    }
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    let rows = ctx
        .read(
            &format!(
                "SELECT destination_url, deep_link_allowed_domains FROM {}.campaigns",
                ctx.schema()?
            ),
            &[],
        )
        .await?;
    Ok(rows.iter().any(|r| {
        let dest = url::Url::parse(r.get::<_, &str>(0)).ok();
        let same_origin = dest.is_some_and(|d| d.origin() == url.origin());
        let domains: Vec<String> = r.get(1);
        same_origin
            || domains
                .iter()
                .any(|d| host == *d || host.ends_with(&format!(".{d}")))
    }))
}

async fn cors_headers(ctx: &Ctx) -> Result<Vec<(String, String)>, ApiError> {
    let Some(origin) = ctx.header("origin").map(str::to_string) else {
        return Ok(vec![]);
    };
    let mut h = vec![("vary".to_string(), "Origin".to_string())];
    if allowed(ctx, &origin).await? {
        h.push(("access-control-allow-origin".into(), origin));
    }
    Ok(h)
}

/// `OPTIONS /attribution/identify`: the CORS preflight. An origin that is not the tenant's
/// gets the same 204 without `Access-Control-Allow-Origin`, which is how browsers are told no.
pub async fn preflight(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut headers = cors_headers(&ctx).await?;
    if headers
        .iter()
        .any(|(k, _)| k == "access-control-allow-origin")
    {
        headers.extend([
            (
                "access-control-allow-methods".into(),
                "POST, OPTIONS".into(),
            ),
            (
                "access-control-allow-headers".into(),
                "content-type, idempotency-key, x-request-id".into(),
            ),
            ("access-control-max-age".into(), "600".into()),
        ]);
    }
    Ok(Reply {
        status: 204,
        headers,
        ..Default::default()
    })
}
