//! Commissions: how an attributed event is priced (the campaign's [`CommissionRule`]), the
//! row shape, the ledger transitions (the state machine itself is enforced by the database,
//! see migrations/tenant/0004) and the commission API.

use crate::sql::Tx;
use crate::{
    access::Principal,
    context::{parse_id, ts, Ctx, Reply, Timestamp},
    error::{ApiError, ErrorCode},
    money::{CurrencyCode, DecimalString},
    openapi::Op,
    outbox,
    pagination::{page_body, PageRequest},
};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_postgres::Row;

/// The `400` codes of a body carrying a commission rule (campaigns, partner terms): a bad
/// amount, an unknown currency, a rule set the engine cannot evaluate.
pub const RULE_ERRORS: &[ErrorCode] = &[
    ErrorCode::InvalidAmount,
    ErrorCode::InvalidCurrency,
    ErrorCode::InvalidRule,
];

pub mod pricing;
pub mod rules;

pub use rules::{CommissionRule, CommissionRuleInput, CommissionRuleView};

pub const COLUMNS: &str = "id, attribution_id, event_id, client_event_id, partner_id, campaign_id, amount, currency, status, holdback_days, accrued_at, mature_at, approved_at, paid_at, reversed_at, reverse_reason, payout_id, refund_of, adjusts_commission_id, rule_index";

/// A commission, as the API (and its webhook events) shows it.
#[derive(Serialize, JsonSchema, Clone)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "Commission")]
pub struct CommissionView {
    id: String,
    /// The attribution that earned it.
    attribution_id: Option<String>,
    /// The event's id as the event response gave it (the client's `eventId`, or the server's).
    event_id: String,
    partner_id: String,
    campaign_id: String,
    /// The same as `campaignId` (the original's name).
    program_id: String,
    /// Negative for a refund adjustment (a clawback).
    amount: DecimalString,
    #[schemars(with = "CurrencyCode")]
    currency: String,
    #[schemars(with = "CommissionStatus")]
    status: String,
    holdback_days: i32,
    accrued_at: Timestamp,
    /// When it may be approved: `accruedAt` + `holdbackDays`.
    mature_at: Timestamp,
    approved_at: Option<Timestamp>,
    paid_at: Option<Timestamp>,
    reversed_at: Option<Timestamp>,
    reverse_reason: Option<String>,
    payout_id: Option<String>,
    /// A refund adjustment: the `eventId` of the refunded event.
    refund_of: Option<String>,
    /// A refund adjustment: the commission it adjusts.
    adjusts_commission_id: Option<String>,
    /// The index of the sub-rule of a compound rule that priced it (0 for a single rule;
    /// a refund adjustment has its commission's).
    rule_index: i32,
}

/// A commission's status.
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum CommissionStatus {
    Accrued,
    Approved,
    Paid,
    Reversed,
}

/// The API shape of a commission row ([`COLUMNS`]).
pub fn view(row: &Row) -> CommissionView {
    let currency: String = row.get("currency");
    let campaign: String = row.get("campaign_id");
    CommissionView {
        id: row.get("id"),
        attribution_id: row.get("attribution_id"),
        event_id: row.get("client_event_id"),
        partner_id: row.get("partner_id"),
        program_id: campaign.clone(),
        campaign_id: campaign,
        amount: DecimalString::amount(row.get("amount"), &currency),
        currency,
        status: row.get("status"),
        holdback_days: row.get("holdback_days"),
        accrued_at: Timestamp(row.get("accrued_at")),
        mature_at: Timestamp(row.get("mature_at")),
        approved_at: row
            .get::<_, Option<DateTime<Utc>>>("approved_at")
            .map(Timestamp),
        paid_at: row
            .get::<_, Option<DateTime<Utc>>>("paid_at")
            .map(Timestamp),
        reversed_at: row
            .get::<_, Option<DateTime<Utc>>>("reversed_at")
            .map(Timestamp),
        reverse_reason: row.get("reverse_reason"),
        payout_id: row.get("payout_id"),
        refund_of: row.get("refund_of"),
        adjusts_commission_id: row.get("adjusts_commission_id"),
        rule_index: row.get("rule_index"),
    }
}

/// [`view`] as JSON (webhook payloads, other modules' answers).
pub fn to_json(row: &Row) -> Value {
    serde_json::to_value(view(row)).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// The ledger and the commission API.
// ---------------------------------------------------------------------------------------

/// Appends a ledger entry and moves the commission to `to`, in the caller's transaction.
/// The database refuses a transition the ledger does not allow (the ledger's
/// `commission_ledger_allowed` CHECK), so a bug here cannot corrupt the state machine;
/// callers check first only to answer with the right error code. Returns the updated row.
pub async fn transition(
    tx: &Tx,
    id: &str,
    to: &str,
    who: &Principal,
    reason: Option<&str>,
    payout_id: Option<&str>,
) -> Result<Row, ApiError> {
    let entry = ulid::Ulid::new().to_string();
    // Read, then plain VALUES: Citus plans no INSERT … SELECT on these tables.
    let cur = tx
        .query_one(
            "SELECT status, last_transition_id, amount FROM commissions WHERE id = $1",
            &[&id],
        )
        .await?;
    let (from, prev, amount): (String, String, Decimal) = (cur.get(0), cur.get(1), cur.get(2));
    tx.execute(
        "INSERT INTO commission_ledger (id, commission_id, from_status, to_status, prev_id, amount, principal_kind, principal_id, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[&entry, &id, &from, &to, &prev, &amount, &who.kind(), &who.audit_id(), &reason],
    )
    .await?;
    // One plain statement per target status (no parameter-driven CASEs: simpler plans, and
    // Citus 13 crashed on the CASE form).
    let row = match to {
        "approved" => {
            tx.query_one(
                &format!(
                    "UPDATE commissions SET status = 'approved', last_transition_id = $2, approved_at = now()
                      WHERE id = $1 RETURNING {COLUMNS}"
                ),
                &[&id, &entry],
            )
            .await?
        }
        "paid" => {
            tx.query_one(
                &format!(
                    "UPDATE commissions SET status = 'paid', last_transition_id = $2, paid_at = now(), payout_id = $3
                      WHERE id = $1 RETURNING {COLUMNS}"
                ),
                &[&id, &entry, &payout_id],
            )
            .await?
        }
        "reversed" => {
            tx.query_one(
                &format!(
                    "UPDATE commissions SET status = 'reversed', last_transition_id = $2, reversed_at = now(),
                            reverse_reason = $3
                      WHERE id = $1 RETURNING {COLUMNS}"
                ),
                &[&id, &entry, &reason],
            )
            .await?
        }
        other => {
            tracing::error!(to = other, "unknown commission transition");
            return Err(ApiError::internal());
        }
    };
    // The amount leaves the rollup of its old status and enters the new one's.
    {
        let (partner, campaign, currency): (&str, &str, &str) = (
            row.get("partner_id"),
            row.get("campaign_id"),
            row.get("currency"),
        );
        let accrued_at: DateTime<Utc> = row.get("accrued_at");
        tx.rollups(|d| {
            d.commission(partner, accrued_at, campaign, currency, &from, -amount);
            d.commission(partner, accrued_at, campaign, currency, to, amount);
        });
    }
    let event = match to {
        "approved" => "commission.approved",
        "paid" => "commission.paid",
        "reversed" => "commission.reversed",
        _ => "commission.accrued",
    };
    outbox::emit(tx, event, json!({ "commission": to_json(&row) })).await?;
    Ok(row)
}

/// Inserts a new commission (refund adjustments, clawbacks) with its first ledger entry.
#[allow(clippy::too_many_arguments)]
pub async fn insert_adjustment(
    tx: &Tx,
    adjusts: &str,
    amount: Decimal,
    status: &str,
    refund_of: &str,
    who: &Principal,
    reason: &str,
) -> Result<Row, ApiError> {
    let id = ulid::Ulid::new().to_string();
    let entry = ulid::Ulid::new().to_string();
    tx.execute(
        "INSERT INTO commission_ledger (id, commission_id, from_status, to_status, prev_id, amount, principal_kind, principal_id, reason)
         VALUES ($1, $2, 'new', $3, NULL, $4, $5, $6, $7)",
        &[&entry, &id, &status, &amount, &who.kind(), &who.audit_id(), &reason],
    )
    .await?;
    let src = tx
        .query_one(
            "SELECT attribution_id, event_id, client_event_id, user_id, partner_id, campaign_id, currency, rule_index
               FROM commissions WHERE id = $1",
            &[&adjusts],
        )
        .await?;
    let (attribution, event, client_event, user, partner, campaign, currency): (
        Option<String>,
        String,
        String,
        String,
        String,
        String,
        String,
    ) = (
        src.get(0),
        src.get(1),
        src.get(2),
        src.get(3),
        src.get(4),
        src.get(5),
        src.get(6),
    );
    let rule_index: i32 = src.get(7);
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO commissions (id, attribution_id, event_id, client_event_id, user_id, partner_id, campaign_id,
                     amount, currency, status, holdback_days, accrued_at, mature_at, approved_at, refund_of,
                     adjusts_commission_id, last_transition_id, rule_index)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, now(), now(),
                         CASE WHEN $10 = 'approved' THEN now() END, $11, $12, $13, $14)
                 RETURNING {COLUMNS}"
            ),
            &[&id, &attribution, &event, &client_event, &user, &partner, &campaign, &amount, &currency, &status, &refund_of, &adjusts, &entry, &rule_index],
        )
        .await?;
    let accrued_at: DateTime<Utc> = row.get("accrued_at");
    tx.rollups(|d| d.commission(&partner, accrued_at, &campaign, &currency, status, amount));
    let event = if status == "approved" {
        "commission.approved"
    } else {
        "commission.accrued"
    };
    outbox::emit(tx, event, json!({ "commission": to_json(&row) })).await?;
    Ok(row)
}

/// Why a commission cannot take a transition; `None` if it can.
fn refusal(row: &Row, to: &str, now: DateTime<Utc>) -> Option<ApiError> {
    let status: String = row.get("status");
    match to {
        "approved" if status != "accrued" => Some(ApiError::conflict(
            ErrorCode::NotApprovable,
            format!("only accrued commissions can be approved; this one is {status}"),
        )),
        "approved" => {
            let mature: DateTime<Utc> = row.get("mature_at");
            (now < mature).then(|| {
                ApiError::conflict(
                    ErrorCode::HoldbackActive,
                    "the commission is still in its holdback period",
                )
                .with("matureAt", ts(mature))
                .with("holdbackDays", row.get::<_, i32>("holdback_days"))
            })
        }
        "reversed" if status != "accrued" && status != "approved" => Some(ApiError::conflict(
            ErrorCode::NotReversible,
            format!("only accrued or approved commissions can be reversed; this one is {status}"),
        )),
        _ => None,
    }
}

/// Applies `to` to one locked commission and to its still-open adjustments (a refund's
/// negative adjustment follows the commission it adjusts). The outer error is a database
/// fault, the inner one why this commission cannot change (the API's answer).
pub(crate) async fn apply(
    tx: &Tx,
    id: &str,
    to: &str,
    who: &Principal,
    reason: Option<&str>,
) -> Result<Result<Row, ApiError>, ApiError> {
    let Some(row) = tx
        .query_opt(
            &format!("SELECT {COLUMNS} FROM commissions WHERE id = $1 FOR UPDATE"),
            &[&id],
        )
        .await?
    else {
        return Ok(Err(ApiError::not_found(format!(
            "no commission with id `{id}`"
        ))));
    };
    if let Some(e) = refusal(&row, to, Utc::now()) {
        return Ok(Err(e));
    }
    let updated = transition(tx, id, to, who, reason, None).await?;
    let from = if to == "approved" {
        vec!["accrued"]
    } else {
        vec!["accrued", "approved"]
    };
    let followers: Vec<String> = tx
        .query(
            "SELECT id FROM commissions WHERE adjusts_commission_id = $1 AND status = ANY($2) ORDER BY id FOR UPDATE",
            &[&id, &from],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for f in followers {
        transition(tx, &f, to, who, reason, None).await?;
    }
    Ok(Ok(updated))
}

/// `{"commission": {...}}`: the answer of a change to one commission.
#[derive(Serialize, JsonSchema)]
struct OneCommission {
    commission: CommissionView,
}

async fn single(ctx: Ctx, to: &str) -> Result<Reply, ApiError> {
    let id = ctx.id("commission")?;
    let reason = if to == "reversed" {
        reason_of(&ctx)?
    } else {
        None
    };
    let tx = ctx.tx().await?;
    let row = apply(&tx, &id, to, &ctx.principal, reason.as_deref()).await??;
    tx.commit().await?;
    Ok(Reply::typed(
        200,
        &OneCommission {
            commission: view(&row),
        },
    ))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReverseBody {
    /// Why (kept in the history and on the commission); at most 1,000 characters, no NUL.
    #[schemars(length(max = 1000), regex(pattern = "^[^\\u0000]*$"))]
    reason: Option<String>,
}

/// A reversal's reason: trimmed, empty as none, at most 1,000 characters, without NUL
/// (which PostgreSQL text cannot hold).
fn clean_reason(reason: Option<String>) -> Result<Option<String>, ApiError> {
    let r = reason
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    if r.as_ref().is_some_and(|r| r.chars().count() > 1000) {
        return Err(
            ApiError::invalid_body("reason is longer than 1000 characters").with("field", "reason"),
        );
    }
    if r.as_ref().is_some_and(|r| r.contains('\0')) {
        return Err(
            ApiError::invalid_body("reason must not contain NUL characters")
                .with("field", "reason"),
        );
    }
    Ok(r)
}

/// The schema of a text filter of a list ([`text_filter`]).
pub(crate) fn text_filter_schema() -> Value {
    json!({"type": "string", "pattern": "^[^\\u0000]*$"})
}

/// A text filter of a list's query string (an id to match). PostgreSQL text cannot hold NUL,
/// so a value with one is refused here rather than failing in the database.
pub(crate) fn text_filter(ctx: &Ctx, name: &str) -> Result<Option<String>, ApiError> {
    match ctx.query_value(name) {
        Some(v) if v.contains('\0') => Err(ApiError::invalid_query(format!(
            "{name} must not contain NUL characters"
        ))),
        v => Ok(v),
    }
}

fn reason_of(ctx: &Ctx) -> Result<Option<String>, ApiError> {
    let b: ReverseBody = ctx.json()?;
    clean_reason(b.reason)
}

pub fn approve_doc() -> Op {
    Op::new("Approve a commission")
        .describe("Only an `accrued` commission whose holdback has ended (`matureAt`) can be approved; its open refund adjustments follow it.")
        .ok::<OneCommission>(200, "The approved commission.")
        .errors(404, &[ErrorCode::NotFound])
        .errors(409, &[ErrorCode::NotApprovable, ErrorCode::HoldbackActive])
}

pub fn reverse_doc() -> Op {
    Op::new("Reverse a commission")
        .describe("An `accrued` or `approved` commission becomes `reversed` (a paid one never changes: refund it through an event instead); its open refund adjustments follow it.")
        .optional_body::<ReverseBody>()
        .ok::<OneCommission>(200, "The reversed commission.")
        .errors(404, &[ErrorCode::NotFound])
        .errors(409, &[ErrorCode::NotReversible])
}

/// `POST /commissions/:id/approve`
pub async fn approve(ctx: Ctx) -> Result<Reply, ApiError> {
    single(ctx, "approved").await
}

/// `POST /commissions/:id/reverse {reason?}`
pub async fn reverse(ctx: Ctx) -> Result<Reply, ApiError> {
    single(ctx, "reversed").await
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct BulkApproveBody {
    /// 1 to 100 commission ids.
    #[schemars(length(min = 1, max = 100))]
    ids: Vec<String>,
    /// Only `null`: a reason applies to reversals only.
    #[serde(default)]
    #[schemars(with = "Option<()>")]
    reason: Option<Value>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct BulkReverseBody {
    /// 1 to 100 commission ids.
    #[schemars(length(min = 1, max = 100))]
    ids: Vec<String>,
    /// Why (kept in the history and on each commission); at most 1,000 characters, no NUL.
    #[schemars(length(max = 1000), regex(pattern = "^[^\\u0000]*$"))]
    reason: Option<String>,
}

/// The answer of a bulk change: every commission changed.
#[derive(Serialize, JsonSchema)]
struct BulkDone {
    ok: bool,
    commissions: Vec<CommissionView>,
}

pub fn bulk_approve_doc() -> Op {
    Op::new("Approve commissions in bulk")
        .describe("All or nothing: if any id cannot be approved (unknown, not `accrued`, still in holdback) none is, and the `409 bulk_failed` answer lists each failure under `errors` (`[{id, error, detail}]`).")
        .body::<BulkApproveBody>()
        .ok::<BulkDone>(200, "Every commission, approved.")
        .errors(409, &[ErrorCode::BulkFailed])
}

pub fn bulk_reverse_doc() -> Op {
    Op::new("Reverse commissions in bulk")
        .describe("All or nothing: if any id cannot be reversed (unknown, not `accrued` or `approved`) none is, and the `409 bulk_failed` answer lists each failure under `errors` (`[{id, error, detail}]`).")
        .body::<BulkReverseBody>()
        .ok::<BulkDone>(200, "Every commission, reversed.")
        .errors(409, &[ErrorCode::BulkFailed])
}

fn check_ids(ids: &[String]) -> Result<(), ApiError> {
    if ids.is_empty() || ids.len() > 100 {
        return Err(
            ApiError::invalid_body("ids must list 1 to 100 commission ids").with("field", "ids"),
        );
    }
    Ok(())
}

async fn bulk(
    ctx: Ctx,
    mut ids: Vec<String>,
    to: &str,
    reason: Option<String>,
) -> Result<Reply, ApiError> {
    ids.sort();
    ids.dedup();
    let tx = ctx.tx().await?;
    let (mut done, mut errors) = (Vec::new(), Vec::new());
    // Sorted ids: concurrent bulk calls lock in the same order (no deadlock).
    for raw in &ids {
        let outcome = match parse_id(raw, "commission") {
            Ok(id) => apply(&tx, &id, to, &ctx.principal, reason.as_deref()).await?,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(row) => done.push(view(&row)),
            Err(e) => errors.push(json!({ "id": raw, "error": e.code, "detail": e.detail })),
        }
    }
    if !errors.is_empty() {
        // All or nothing: dropping the transaction rolls every change back.
        return Err(ApiError::conflict(
            ErrorCode::BulkFailed,
            format!(
                "{} of {} commissions could not change; none did",
                errors.len(),
                ids.len()
            ),
        )
        .with("errors", errors));
    }
    tx.commit().await?;
    Ok(Reply::typed(
        200,
        &BulkDone {
            ok: true,
            commissions: done,
        },
    ))
}

/// `POST /commissions/approve {ids}`: up to 100, all or nothing.
pub async fn bulk_approve(ctx: Ctx) -> Result<Reply, ApiError> {
    let body: BulkApproveBody = ctx.json()?;
    check_ids(&body.ids)?;
    if body.reason.is_some() {
        return Err(
            ApiError::invalid_body("reason applies to reverse only").with("field", "reason")
        );
    }
    bulk(ctx, body.ids, "approved", None).await
}

/// `POST /commissions/reverse {ids, reason?}`: up to 100, all or nothing.
pub async fn bulk_reverse(ctx: Ctx) -> Result<Reply, ApiError> {
    let body: BulkReverseBody = ctx.json()?;
    check_ids(&body.ids)?;
    let reason = clean_reason(body.reason)?;
    bulk(ctx, body.ids, "reversed", reason).await
}

/// A commission with its ledger history.
#[derive(Serialize, JsonSchema)]
struct CommissionWithHistory {
    #[serde(flatten)]
    commission: CommissionView,
    /// Every status change, oldest first.
    history: Vec<LedgerEntry>,
}

#[derive(Serialize, JsonSchema)]
struct GotCommission {
    commission: CommissionWithHistory,
}

/// One entry of a commission's append-only ledger.
#[derive(Serialize, JsonSchema)]
struct LedgerEntry {
    /// `new` for the entry that created the commission.
    #[schemars(regex(pattern = "^(new|accrued|approved)$"))]
    from: String,
    #[schemars(with = "CommissionStatus")]
    to: String,
    by: Actor,
    reason: Option<String>,
    at: Timestamp,
}

/// Who made a ledger entry.
#[derive(Serialize, JsonSchema)]
struct Actor {
    /// `system` (the attribution engine), `admin`, `scoped` (a scoped key), `partner`.
    kind: String,
    /// The admin, key or partner id; null for the system.
    id: Option<String>,
}

pub fn get_doc() -> Op {
    Op::new("Get a commission")
        .describe("The commission with its ledger history.")
        .ok::<GotCommission>(200, "The commission.")
        .errors(404, &[ErrorCode::NotFound])
}

/// `GET /commissions/:id`, with its ledger history.
pub async fn get(ctx: Ctx) -> Result<Reply, ApiError> {
    let id = ctx.id("commission")?;
    let tx = ctx.tx().await?;
    let row = tx
        .one_or_404(
            "commission",
            &id,
            &format!("SELECT {COLUMNS} FROM commissions WHERE id = $1"),
        )
        .await?;
    let history: Vec<LedgerEntry> = tx
        .query(
            "SELECT from_status, to_status, principal_kind, principal_id, reason, at FROM commission_ledger
              WHERE commission_id = $1 ORDER BY at, id",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| LedgerEntry {
            from: r.get(0),
            to: r.get(1),
            by: Actor {
                kind: r.get(2),
                id: r.get(3),
            },
            reason: r.get(4),
            at: Timestamp(r.get(5)),
        })
        .collect();
    tx.commit().await?;
    Ok(Reply::typed(
        200,
        &GotCommission {
            commission: CommissionWithHistory {
                commission: view(&row),
                history,
            },
        },
    ))
}

/// The filters of a commission list ([`list`]); `partnerId` only on `GET /commissions`.
fn list_op(summary: &'static str, partner_filter: bool) -> Op {
    let op = Op::new(summary).query(
        "status",
        "Only commissions in this status.",
        json!({"type": "string", "enum": ["accrued", "approved", "paid", "reversed"]}),
    );
    let op = match partner_filter {
        true => op.query(
            "partnerId",
            "Only this partner's commissions.",
            text_filter_schema(),
        ),
        false => op,
    };
    op.query(
        "campaignId",
        "Only this campaign's commissions.",
        text_filter_schema(),
    )
    .query(
        "programId",
        "The same as `campaignId` (the original's name); `campaignId` wins when both are given.",
        text_filter_schema(),
    )
    .query(
        "from",
        "Only commissions accrued at or after this time (RFC 3339).",
        json!({"type": "string", "format": "date-time"}),
    )
    .query(
        "to",
        "Only commissions accrued before this time (RFC 3339).",
        json!({"type": "string", "format": "date-time"}),
    )
    .page::<CommissionView>("commissions")
}

pub fn list_doc() -> Op {
    list_op("List commissions", true).describe("Newest accrued first.")
}

pub fn partner_list_doc() -> Op {
    list_op("List a partner's commissions", false)
        .describe("Newest accrued first. A partner may list their own.")
        .errors(404, &[ErrorCode::NotFound])
}

/// `GET /commissions?status=&partnerId=&campaignId=&from=&to=` and
/// `GET /partners/:id/commissions` (the partner filter comes from the path).
pub async fn list(ctx: Ctx) -> Result<Reply, ApiError> {
    let page = PageRequest::from_ctx(&ctx)?;
    let status = ctx.query_value("status");
    if let Some(s) = &status {
        if !["accrued", "approved", "paid", "reversed"].contains(&s.as_str()) {
            return Err(ApiError::invalid_query(
                "status must be accrued, approved, paid or reversed",
            ));
        }
    }
    let partner = match ctx.params.iter().find(|(n, _)| *n == "id") {
        Some((_, v)) => Some(parse_id(v, "partner")?),
        None => text_filter(&ctx, "partnerId")?,
    };
    let campaign = match text_filter(&ctx, "campaignId")? {
        Some(c) => Some(c),
        None => text_filter(&ctx, "programId")?,
    };
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, ApiError> {
        ctx.query_value(name)
            .map(|v| {
                DateTime::parse_from_rfc3339(&v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| {
                        ApiError::invalid_query(format!("{name} must be an ISO 8601 time"))
                    })
            })
            .transpose()
    };
    let (from, to) = (time("from")?, time("to")?);
    let (after_t, after_id) = page.after.clone().unzip();
    let rows = ctx
        .read(
            &format!(
                "SELECT {COLUMNS} FROM {}.commissions
                  WHERE ($1::text IS NULL OR status = $1)
                    AND ($2::text IS NULL OR partner_id = $2)
                    AND ($3::text IS NULL OR campaign_id = $3)
                    AND ($4::timestamptz IS NULL OR accrued_at >= $4)
                    AND ($5::timestamptz IS NULL OR accrued_at < $5)
                    AND ($6::timestamptz IS NULL OR (accrued_at, id) < ($6, $7::text))
                  ORDER BY accrued_at DESC, id DESC LIMIT $8",
                ctx.schema()?
            ),
            &[
                &status,
                &partner,
                &campaign,
                &from,
                &to,
                &after_t,
                &after_id,
                &page.fetch(),
            ],
        )
        .await?;
    let items = rows
        .iter()
        .map(|r| (r.get("accrued_at"), r.get("id"), to_json(r)))
        .collect();
    Ok(Reply::ok(page_body(&page, "commissions", items)))
}
