//! Commissions: how an attributed event is priced (the campaign's [`CommissionRule`]), the
//! row shape, the ledger transitions (the state machine itself is enforced by the database,
//! see migrations/tenant/0004) and the commission API.

use crate::sql::Tx;
use crate::{
    access::Principal,
    context::{parse_id, ts, ts_opt, Ctx, Reply},
    error::{ApiError, ErrorCode},
    money::{parse_decimal, Currency},
    outbox,
    pagination::{page_body, PageRequest},
};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio_postgres::Row;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pricing {
    /// Percent of the event's value (0–100).
    Percent(Decimal),
    /// A fixed amount per event, in its own currency.
    Fixed { amount: Decimal, currency: Currency },
}

/// A campaign's commission rule. `recurring: false` pays only on a user's first paying
/// event for the campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommissionRule {
    pub pricing: Pricing,
    pub recurring: bool,
}

impl CommissionRule {
    /// `{"type":"percent","value":"20","recurring":true}` or
    /// `{"type":"fixed","value":"50.00","currency":"USD"}`; numbers or strings; a
    /// one-element array of such a rule is accepted (the original's wire form).
    pub fn parse(v: &Value) -> Result<CommissionRule, ApiError> {
        let bad = |why: &str| {
            ApiError::invalid_body(format!("commissionRule {why}")).with("field", "commissionRule")
        };
        let obj = match v {
            Value::Array(items) if items.len() == 1 => &items[0],
            Value::Array(_) => {
                return Err(bad(
                    "must be one rule (compound rules are not supported yet)",
                ))
            }
            other => other,
        };
        let Value::Object(map) = obj else {
            return Err(bad("must be an object"));
        };
        for k in map.keys() {
            if !["type", "value", "currency", "recurring"].contains(&k.as_str()) {
                return Err(bad(&format!(
                    "has an unknown field `{}`",
                    crate::context::truncate(k, 32)
                )));
            }
        }
        let recurring = match map.get("recurring") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad("recurring must be a boolean")),
        };
        let value = map.get("value").ok_or_else(|| bad("needs a value"))?;
        let pricing = match map.get("type").and_then(Value::as_str) {
            Some("percent") => {
                let pct = parse_decimal(value, "commissionRule.value")?.normalize();
                if pct.is_sign_negative() || pct > Decimal::ONE_HUNDRED || pct.scale() > 4 {
                    return Err(ApiError::new(
                        400,
                        ErrorCode::InvalidAmount,
                        "a percent rule's value must be 0 to 100 with at most 4 decimals",
                    )
                    .with("field", "commissionRule.value"));
                }
                Pricing::Percent(pct)
            }
            Some("fixed") => {
                let code = map
                    .get("currency")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("of type fixed needs a currency"))?;
                let currency = Currency::parse(code)?;
                let amount = crate::money::parse_amount(value, &currency, "commissionRule.value")?;
                Pricing::Fixed { amount, currency }
            }
            _ => return Err(bad("type must be `percent` or `fixed`")),
        };
        Ok(CommissionRule { pricing, recurring })
    }

    pub fn to_json(&self) -> Value {
        match &self.pricing {
            Pricing::Percent(p) => {
                json!({"type": "percent", "value": p.normalize().to_string(), "recurring": self.recurring})
            }
            Pricing::Fixed { amount, currency } => json!({
                "type": "fixed",
                "value": currency.format(*amount),
                "currency": currency.code(),
                "recurring": self.recurring,
            }),
        }
    }

    /// The undivided, unrounded commission for an event, in the commission's currency.
    pub fn price(&self, value: Option<Decimal>, currency: Currency) -> (Decimal, Currency) {
        match &self.pricing {
            Pricing::Percent(p) => (
                value.unwrap_or_default() * *p / Decimal::ONE_HUNDRED,
                currency,
            ),
            Pricing::Fixed { amount, currency } => (*amount, *currency),
        }
    }
}

pub const COLUMNS: &str = "id, attribution_id, event_id, client_event_id, partner_id, campaign_id, amount, currency, status, holdback_days, accrued_at, mature_at, approved_at, paid_at, reversed_at, reverse_reason, payout_id, refund_of, adjusts_commission_id";

/// The API shape of a commission row.
pub fn to_json(row: &Row) -> Value {
    let currency: String = row.get("currency");
    let amount: Decimal = row.get("amount");
    let amount = Currency::parse(&currency).map_or(amount.to_string(), |c| c.format(amount));
    json!({
        "id": row.get::<_, String>("id"),
        "attributionId": row.get::<_, Option<String>>("attribution_id"),
        "eventId": row.get::<_, String>("client_event_id"),
        "partnerId": row.get::<_, String>("partner_id"),
        "campaignId": row.get::<_, String>("campaign_id"),
        "programId": row.get::<_, String>("campaign_id"),
        "amount": amount,
        "currency": currency,
        "status": row.get::<_, String>("status"),
        "holdbackDays": row.get::<_, i32>("holdback_days"),
        "accruedAt": ts(row.get("accrued_at")),
        "matureAt": ts(row.get("mature_at")),
        "approvedAt": ts_opt(row.get("approved_at")),
        "paidAt": ts_opt(row.get("paid_at")),
        "reversedAt": ts_opt(row.get("reversed_at")),
        "reverseReason": row.get::<_, Option<String>>("reverse_reason"),
        "payoutId": row.get::<_, Option<String>>("payout_id"),
        "refundOf": row.get::<_, Option<String>>("refund_of"),
        "adjustsCommissionId": row.get::<_, Option<String>>("adjusts_commission_id"),
    })
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
            "SELECT attribution_id, event_id, client_event_id, user_id, partner_id, campaign_id, currency
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
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO commissions (id, attribution_id, event_id, client_event_id, user_id, partner_id, campaign_id,
                     amount, currency, status, holdback_days, accrued_at, mature_at, approved_at, refund_of,
                     adjusts_commission_id, last_transition_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, now(), now(),
                         CASE WHEN $10 = 'approved' THEN now() END, $11, $12, $13)
                 RETURNING {COLUMNS}"
            ),
            &[&id, &attribution, &event, &client_event, &user, &partner, &campaign, &amount, &currency, &status, &refund_of, &adjusts, &entry],
        )
        .await?;
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
/// negative adjustment follows the commission it adjusts).
async fn apply(
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
    Ok(Reply::ok(json!({ "commission": to_json(&row) })))
}

fn reason_of(ctx: &Ctx) -> Result<Option<String>, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        reason: Option<String>,
    }
    let b: Body = ctx.json()?;
    let r = b
        .reason
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    if r.as_ref().is_some_and(|r| r.chars().count() > 1000) {
        return Err(
            ApiError::invalid_body("reason is longer than 1000 characters").with("field", "reason"),
        );
    }
    Ok(r)
}

/// `POST /commissions/:id/approve`
pub async fn approve(ctx: Ctx) -> Result<Reply, ApiError> {
    single(ctx, "approved").await
}

/// `POST /commissions/:id/reverse {reason?}`
pub async fn reverse(ctx: Ctx) -> Result<Reply, ApiError> {
    single(ctx, "reversed").await
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkBody {
    ids: Vec<String>,
    reason: Option<String>,
}

async fn bulk(ctx: Ctx, to: &str) -> Result<Reply, ApiError> {
    let body: BulkBody = ctx.json()?;
    if body.ids.is_empty() || body.ids.len() > 100 {
        return Err(
            ApiError::invalid_body("ids must list 1 to 100 commission ids").with("field", "ids"),
        );
    }
    if to == "approved" && body.reason.is_some() {
        return Err(
            ApiError::invalid_body("reason applies to reverse only").with("field", "reason")
        );
    }
    let mut ids = body.ids.clone();
    ids.sort();
    ids.dedup();
    let tx = ctx.tx().await?;
    let (mut done, mut errors) = (Vec::new(), Vec::new());
    // Sorted ids: concurrent bulk calls lock in the same order (no deadlock).
    for raw in &ids {
        let outcome = match parse_id(raw, "commission") {
            Ok(id) => apply(&tx, &id, to, &ctx.principal, body.reason.as_deref()).await?,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(row) => done.push(to_json(&row)),
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
    Ok(Reply::ok(json!({ "ok": true, "commissions": done })))
}

/// `POST /commissions/approve {ids}`: up to 100, all or nothing.
pub async fn bulk_approve(ctx: Ctx) -> Result<Reply, ApiError> {
    bulk(ctx, "approved").await
}

/// `POST /commissions/reverse {ids, reason?}`: up to 100, all or nothing.
pub async fn bulk_reverse(ctx: Ctx) -> Result<Reply, ApiError> {
    bulk(ctx, "reversed").await
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
    let history: Vec<Value> = tx
        .query(
            "SELECT from_status, to_status, principal_kind, principal_id, reason, at FROM commission_ledger
              WHERE commission_id = $1 ORDER BY at, id",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| {
            json!({
                "from": r.get::<_, String>(0),
                "to": r.get::<_, String>(1),
                "by": { "kind": r.get::<_, String>(2), "id": r.get::<_, Option<String>>(3) },
                "reason": r.get::<_, Option<String>>(4),
                "at": ts(r.get(5)),
            })
        })
        .collect();
    tx.commit().await?;
    let mut c = to_json(&row);
    c["history"] = Value::Array(history);
    Ok(Reply::ok(json!({ "commission": c })))
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
        None => ctx.query_value("partnerId"),
    };
    let campaign = ctx
        .query_value("campaignId")
        .or_else(|| ctx.query_value("programId"));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_rule_shapes() {
        let r = CommissionRule::parse(&json!({"type": "percent", "value": "20"})).unwrap();
        assert!(r.recurring);
        assert_eq!(
            r.to_json(),
            json!({"type": "percent", "value": "20", "recurring": true})
        );
        let r = CommissionRule::parse(
            &json!([{"type": "fixed", "value": 50, "currency": "USD", "recurring": false}]),
        )
        .unwrap();
        assert_eq!(
            r.to_json(),
            json!({"type": "fixed", "value": "50.00", "currency": "USD", "recurring": false})
        );
        for bad in [
            json!({"type": "percent", "value": "120"}),
            json!({"type": "percent", "value": "-1"}),
            json!({"type": "fixed", "value": "5"}),
            json!({"type": "fixed", "value": "5.001", "currency": "USD"}),
            json!({"type": "bogus", "value": "5"}),
            json!({"type": "percent"}),
            json!([]),
            json!("20%"),
            json!({"type": "percent", "value": "20", "extra": 1}),
        ] {
            assert!(CommissionRule::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pricing() {
        let usd = Currency::parse("USD").unwrap();
        let pct = CommissionRule::parse(&json!({"type": "percent", "value": "12.5"})).unwrap();
        assert_eq!(
            pct.price(Some(Decimal::new(9999, 2)), usd).0,
            Decimal::new(12498750, 6)
        );
        assert_eq!(pct.price(None, usd).0, Decimal::ZERO);
        let fixed =
            CommissionRule::parse(&json!({"type": "fixed", "value": "1000", "currency": "JPY"}))
                .unwrap();
        let (amt, cur) = fixed.price(Some(Decimal::ONE), usd);
        assert_eq!((amt, cur.code()), (Decimal::new(1000, 0), "JPY"));
    }
}
