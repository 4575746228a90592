//! Refunds and chargebacks (`type: refund|chargeback`, `metadata.refundOf = <eventId>`).
//!
//! A refund is never attributed itself; it takes back the commissions of the event it
//! refunds. Without a value (or with all that remains) it takes back everything left:
//! unpaid commissions are reversed, paid ones get a negative compensating commission
//! (clawback) that the next payout nets. With a smaller value it takes the same fraction of
//! each commission as negative adjustments (exact decimal, half-even), the last refund
//! taking the rounding remainder so a fully refunded event nets exactly zero — the
//! arithmetic is [`super::refund_math`]'s, pure and property-tested; this module reads,
//! locks and writes. The refunded event's row is locked, so concurrent refunds cannot
//! together take more than there is (`409 over_refund`).

use super::{
    input::EventInput,
    plan::decimal_or_null,
    refund_math::{self, Earlier, Standing, Take},
    store,
};
use crate::reporting::rollups;
use crate::{
    commissions,
    context::{Ctx, Reply},
    error::{ApiError, ErrorCode},
    money::Currency,
};
use rust_decimal::Decimal;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;
use serde_json::{Map, Value};

/// The answer to a refund or chargeback (stored with it: a repeat of its `eventId` answers
/// it again). Fields in alphabetical order, the order of a reply read back from the database.
#[derive(Serialize, JsonSchema)]
pub struct RefundReply {
    attribution: RefundAttribution,
    /// The client's `eventId` of the refund, or `id` when none was given.
    #[serde(rename = "eventId")]
    event_id: String,
    /// The server's id of the refund event (`evt_<ulid>`).
    id: String,
    ok: bool,
    refund: RefundDone,
}

/// A refund is never attributed: `{"status": "refund", "model": null, "touches": []}`.
#[derive(Serialize, JsonSchema)]
struct RefundAttribution {
    #[schemars(schema_with = "null")]
    model: Option<String>,
    #[schemars(schema_with = "refund_status")]
    status: &'static str,
    #[schemars(schema_with = "no_touches")]
    touches: [Value; 0],
}

/// What the refund took back.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct RefundDone {
    /// Negative commissions taking back a share of each commission (clawbacks of paid ones),
    /// as `GET /commissions/:id` shows commissions.
    #[schemars(with = "Vec<Map<String, Value>>")]
    adjustments: Vec<Value>,
    /// The part of the refunded event's value this refund takes (exact decimal string); null
    /// when the refunded event has no value.
    #[schemars(schema_with = "decimal_or_null")]
    amount: Option<String>,
    /// The refunded event's `eventId`.
    refund_of: String,
    /// Commissions reversed whole (unpaid, untouched, and the refund takes everything), as
    /// `GET /commissions/:id` shows commissions.
    #[schemars(with = "Vec<Map<String, Value>>")]
    reversed: Vec<Value>,
}

fn null(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "null"})
}

fn refund_status(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "const": "refund"})
}

fn no_touches(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "array", "maxItems": 0})
}

pub async fn handle(ctx: Ctx, input: EventInput) -> Result<Reply, ApiError> {
    let refund_of = input.refund_of.clone().unwrap_or_default();
    let event = &input.facts;
    let schema = ctx.tenant()?.schema.clone();
    let tx = ctx.tx().await?;
    let original = tx
        .query_opt(
            "SELECT id, value, currency, type, ts FROM events WHERE event_id = $1 AND refund_of IS NULL FOR UPDATE",
            &[&refund_of],
        )
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no event with eventId `{}` to refund", crate::context::truncate(&refund_of, 64))))?;
    // Checked under the lock: a concurrent copy of this refund has committed by now.
    if let Some(first) = store::stored_response(&*tx, &schema, &event.event_id).await? {
        return Ok(Reply::ok(first));
    }
    let original_id: String = original.get(0);
    let original_value: Option<Decimal> = original.get(1);
    let original_currency = Currency::parse(original.get::<_, &str>(2))?;
    if event.value.is_some() && event.currency != original_currency {
        return Err(ApiError::new(
            400,
            ErrorCode::InvalidCurrency,
            "a refund's currency must be the refunded event's currency",
        ));
    }
    // How much of the original remains refundable.
    let refunded_before: Option<Decimal> = tx
        .query_one(
            "SELECT sum(COALESCE(value, 0)) FROM events WHERE refund_of = $1",
            &[&refund_of],
        )
        .await?
        .get(0);
    let fully_refunded_before: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM events WHERE refund_of = $1 AND (value IS NULL OR $2::numeric IS NULL))",
            &[&refund_of, &original_value],
        )
        .await?
        .get(0);
    let earlier = Earlier {
        value_sum: refunded_before,
        whole: fully_refunded_before,
    };
    let share = refund_math::share(original_value, earlier, event.value).map_err(|over| {
        ApiError::conflict(
            ErrorCode::OverRefund,
            "this refund is larger than what remains of the event",
        )
        .with("remaining", original_currency.format(over.remaining))
    })?;

    let rows = tx
        .query(
            &format!("SELECT {} FROM commissions WHERE event_id = $1 AND adjusts_commission_id IS NULL AND amount > 0 ORDER BY id FOR UPDATE", commissions::COLUMNS),
            &[&original_id],
        )
        .await?;
    let mut reversed = Vec::new();
    let mut adjustments = Vec::new();
    for row in &rows {
        let id: String = row.get("id");
        let status: String = row.get("status");
        let amount: Decimal = row.get("amount");
        let currency = Currency::parse(row.get::<_, &str>("currency"))?;
        if !refund_math::refundable(&status) {
            continue;
        }
        let adjusted: Decimal = tx
            .query_one(
                "SELECT COALESCE(sum(amount), 0) FROM commissions WHERE adjusts_commission_id = $1",
                &[&id],
            )
            .await?
            .get(0);
        let standing = Standing {
            status: &status,
            amount,
            adjusted,
            currency,
        };
        let reason = format!("{} {}", event.kind, event.event_id);
        let (take, adj_status) = match share.take(&standing) {
            Take::Nothing => continue,
            Take::Reverse => {
                let r = commissions::transition(
                    &tx,
                    &id,
                    "reversed",
                    &ctx.principal,
                    Some(&reason),
                    None,
                )
                .await?;
                reversed.push(commissions::to_json(&r));
                continue;
            }
            Take::Adjust { amount, status } => (amount, status),
        };
        let r = commissions::insert_adjustment(
            &tx,
            &id,
            -take,
            adj_status,
            &refund_of,
            &ctx.principal,
            &reason,
        )
        .await?;
        adjustments.push(commissions::to_json(&r));
    }
    let reply = RefundReply {
        attribution: RefundAttribution {
            model: None,
            status: "refund",
            touches: [],
        },
        event_id: event.event_id.clone(),
        id: event.id.clone(),
        ok: true,
        refund: RefundDone {
            adjustments,
            amount: original_value.map(|_| original_currency.format(share.this)),
            refund_of: refund_of.clone(),
            reversed,
        },
    };
    let response = serde_json::to_value(&reply).unwrap_or_default();
    let stored_value: Option<Decimal> = original_value.map(|_| share.this);
    tx.execute(
        "INSERT INTO events (id, event_id, user_id, type, value, currency, metadata, ts, refund_of, attribution_status, response)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'refund', $10)",
        &[
            &event.id,
            &event.event_id,
            &event.user_id,
            &event.kind,
            &stored_value,
            &original_currency.code(),
            &input.metadata,
            &event.ts,
            &refund_of,
            &response,
        ],
    )
    .await?;
    // The refunded event's attributions' share of this refund, on the refunded event's day.
    if let Some(amount) = stored_value.filter(|v| !v.is_zero()) {
        let touches = rollups::live_touches(&tx, &original_id).await?;
        let day = original
            .get::<_, chrono::DateTime<chrono::Utc>>(4)
            .date_naive();
        tx.rollups(|d| d.refund(day, original_currency.code(), &touches, amount));
    }
    tx.commit().await?;
    Ok(Reply::typed(201, &reply))
}
