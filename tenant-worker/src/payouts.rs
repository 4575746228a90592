//! Payouts: approved commissions (clawbacks included) grouped by (partner, currency) and
//! paid out together.
//!
//! A run holds a per-tenant advisory lock (a statement of its own, CITUS rule 11) and locks
//! the rows it pays, so two runs — concurrent or repeated — never pay a commission twice.
//! A group whose net is not positive, or below the currency's minimum, is carried forward:
//! its commissions stay approved and unpaid until later commissions cover it. A payout's
//! amount is the exact sum of its commissions.

use crate::{
    commissions::{self, CommissionView},
    context::{parse_id, Ctx, Reply, Timestamp},
    error::{ApiError, ErrorCode},
    money::{parse_amount, AmountInput, Currency, CurrencyCode, DecimalString},
    openapi::Op,
    outbox,
    pagination::{rows_body, PageRequest},
    sql::Tx,
};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::BTreeMap;
use tokio_postgres::Row;

const COLUMNS: &str = "p.id, p.run_id, p.partner_id, p.amount, p.currency, p.method, p.status, p.created_at, p.paid_at,
    COALESCE((SELECT array_agg(c.id ORDER BY c.id) FROM commissions c WHERE c.payout_id = p.id), '{}') AS commission_ids";

/// A payout, as the API shows it.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "Payout")]
pub struct PayoutView {
    id: String,
    /// The same as `id` (the original's name).
    payout_id: String,
    /// The run that made it (`run_` + a ULID).
    run_id: String,
    partner_id: String,
    /// The exact sum of its commissions (clawbacks netted), always positive.
    amount: DecimalString,
    #[schemars(with = "CurrencyCode")]
    currency: String,
    /// `manual`: the merchant pays and then marks the payout paid.
    method: String,
    #[schemars(with = "PayoutStatus")]
    status: String,
    /// The commissions it pays, by id.
    commission_ids: Vec<String>,
    created_at: Timestamp,
    paid_at: Option<Timestamp>,
}

/// A payout's status.
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum PayoutStatus {
    Pending,
    Paid,
    Failed,
}

const STATUSES: [&str; 3] = ["pending", "paid", "failed"];

fn view(row: &Row) -> PayoutView {
    let currency: String = row.get("currency");
    let id: String = row.get("id");
    PayoutView {
        payout_id: id.clone(),
        id,
        run_id: row.get("run_id"),
        partner_id: row.get("partner_id"),
        amount: DecimalString::amount(row.get("amount"), &currency),
        currency,
        method: row.get("method"),
        status: row.get("status"),
        commission_ids: row.get("commission_ids"),
        created_at: Timestamp(row.get("created_at")),
        paid_at: row
            .get::<_, Option<DateTime<Utc>>>("paid_at")
            .map(Timestamp),
    }
}

fn to_json(row: &Row) -> Value {
    serde_json::to_value(view(row)).unwrap_or_default()
}

#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RunBody {
    /// Minimum payout per currency, e.g. `{"USD": "50.00"}`: a smaller balance is carried
    /// forward.
    #[schemars(with = "Option<Minimums>")]
    minimums: Option<Map<String, Value>>,
    /// Pay only this partner.
    partner_id: Option<String>,
}

/// `minimums`: ISO 4217 codes to amounts.
struct Minimums;

impl JsonSchema for Minimums {
    fn schema_name() -> Cow<'static, str> {
        "PayoutMinimums".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "type": "object",
            "propertyNames": g.subschema_for::<CurrencyCode>(),
            "additionalProperties": g.subschema_for::<AmountInput>(),
        })
    }
}

/// `POST /payouts/run` answers the payouts it made.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct RunResult {
    ok: bool,
    /// `run_` + a ULID.
    run_id: String,
    /// `manual`.
    mode: &'static str,
    /// One per (partner, currency) whose balance was paid; empty when nothing was due.
    payouts: Vec<PayoutView>,
}

/// A payout with its commissions.
#[derive(Serialize, JsonSchema)]
struct PayoutWithCommissions {
    #[serde(flatten)]
    payout: PayoutView,
    commissions: Vec<CommissionView>,
}

/// `GET /payouts/:id`: the payout (with its commissions) and, as the original had it, the
/// commissions at the top level too.
#[derive(Serialize, JsonSchema)]
struct GotPayout {
    payout: PayoutWithCommissions,
    commissions: Vec<CommissionView>,
}

#[derive(Serialize, JsonSchema)]
struct OnePayout {
    payout: PayoutView,
}

pub fn run_doc() -> Op {
    Op::new("Run payouts")
        .describe("Groups approved, unpaid commissions by (partner, currency) into `pending` payouts and marks them `paid`, atomically; a balance that is not positive or below its currency's minimum is carried forward. Running it again (or twice at once) never pays a commission twice.")
        .optional_body::<RunBody>()
        .ok::<RunResult>(200, "The payouts this run made.")
        .errors(
            400,
            &[ErrorCode::InvalidCurrency, ErrorCode::InvalidAmount],
        )
        .errors(404, &[ErrorCode::NotFound])
}

pub fn list_doc() -> Op {
    Op::new("List payouts")
        .query(
            "status",
            "Only payouts in this status.",
            json!({"type": "string", "enum": STATUSES}),
        )
        .query(
            "partnerId",
            "Only this partner's payouts.",
            commissions::text_filter_schema(),
        )
        .page::<PayoutView>("payouts")
}

pub fn get_doc() -> Op {
    Op::new("Get a payout")
        .describe("The payout and the commissions it pays.")
        .ok::<GotPayout>(200, "The payout.")
        .errors(404, &[ErrorCode::NotFound])
}

pub fn mark_paid_doc() -> Op {
    Op::new("Mark a payout paid")
        .describe("Manual mode: the merchant has paid the partner.")
        .ok::<OnePayout>(200, "The paid payout.")
        .errors(404, &[ErrorCode::NotFound])
        .errors(409, &[ErrorCode::NotPending])
}

fn run_lock(tenant_id: &str) -> i64 {
    let d = Sha256::digest(format!("payout-run:{tenant_id}").as_bytes());
    i64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// `POST /payouts/run {minimums?, partnerId?}`
pub async fn run(ctx: Ctx) -> Result<Reply, ApiError> {
    let body: RunBody = ctx.json()?;
    let mut minimums: BTreeMap<String, Decimal> = BTreeMap::new();
    for (code, v) in body.minimums.unwrap_or_default() {
        let c = Currency::parse(&code)?;
        minimums.insert(
            c.code().to_string(),
            parse_amount(&v, &c, &format!("minimums.{code}"))?,
        );
    }
    let partner = body
        .partner_id
        .as_deref()
        .map(|p| parse_id(p, "partner"))
        .transpose()?;
    let tenant = ctx.tenant()?.clone();
    let run_id = format!("run_{}", ulid::Ulid::new());
    let tx = ctx.tx().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&run_lock(&tenant.id)])
        .await?;
    let rows = tx
        .query(
            "SELECT id, partner_id, currency, amount FROM commissions
              WHERE status = 'approved' AND payout_id IS NULL AND ($1::text IS NULL OR partner_id = $1)
              ORDER BY partner_id, currency, id FOR UPDATE",
            &[&partner],
        )
        .await?;
    let mut groups: BTreeMap<(String, String), (Decimal, Vec<String>)> = BTreeMap::new();
    for r in &rows {
        let g = groups.entry((r.get(1), r.get(2))).or_default();
        g.0 += r.get::<_, Decimal>(3);
        g.1.push(r.get(0));
    }
    let mut payouts = Vec::new();
    for ((partner_id, currency), (sum, ids)) in groups {
        let min = minimums.get(&currency).copied().unwrap_or(Decimal::ZERO);
        if sum <= Decimal::ZERO || sum < min {
            continue; // carried forward
        }
        let payout_id = ulid::Ulid::new().to_string();
        tx.execute(
            "INSERT INTO payouts (id, run_id, partner_id, amount, currency, method, status) VALUES ($1, $2, $3, $4, $5, 'manual', 'pending')",
            &[&payout_id, &run_id, &partner_id, &sum, &currency],
        )
        .await?;
        for id in &ids {
            commissions::transition(&tx, id, "paid", &ctx.principal, None, Some(&payout_id))
                .await?;
        }
        let row = tx
            .query_one(
                &format!("SELECT {COLUMNS} FROM payouts p WHERE p.id = $1"),
                &[&payout_id],
            )
            .await?;
        let payout = view(&row);
        outbox::emit(&tx, "payout.created", json!({ "payout": payout })).await?;
        payouts.push(payout);
    }
    tx.commit().await?;
    Ok(Reply::typed(
        200,
        &RunResult {
            ok: true,
            run_id,
            mode: "manual",
            payouts,
        },
    ))
}

/// `GET /payouts`
pub async fn list(ctx: Ctx) -> Result<Reply, ApiError> {
    let page = PageRequest::from_ctx(&ctx)?;
    let status = ctx.query_value("status");
    if status.as_deref().is_some_and(|s| !STATUSES.contains(&s)) {
        return Err(ApiError::invalid_query(
            "status must be pending, paid or failed",
        ));
    }
    let partner = commissions::text_filter(&ctx, "partnerId")?;
    let (after_t, after_id) = page.after.clone().unzip();
    // COLUMNS reads the payout's commissions too, by unqualified name: in a transaction.
    let tx = ctx.tx().await?;
    let rows = tx.query(&format!(
                "SELECT {COLUMNS} FROM payouts p
                  WHERE ($1::text IS NULL OR p.status = $1) AND ($2::text IS NULL OR p.partner_id = $2)
                    AND ($3::timestamptz IS NULL OR (p.created_at, p.id) < ($3, $4::text))
                  ORDER BY p.created_at DESC, p.id DESC LIMIT $5"
            ),
            &[&status, &partner, &after_t, &after_id, &page.fetch()]).await?;
    tx.commit().await?;
    Ok(Reply::ok(rows_body(&page, "payouts", &rows, to_json)))
}

pub fn partner_list_doc() -> Op {
    Op::new("List a partner's payouts")
        .describe("The partner's own payouts, newest first. Admins, `partners:read` keys, or the partner itself.")
        .query(
            "status",
            "Only payouts in this status.",
            json!({"type": "string", "enum": STATUSES}),
        )
        .page::<PayoutView>("payouts")
        .errors(404, &[ErrorCode::NotFound])
}

/// `GET /partners/:id/payouts`: [`list`] with the partner from the path (which must exist).
pub async fn partner_list(ctx: Ctx) -> Result<Reply, ApiError> {
    let page = PageRequest::from_ctx(&ctx)?;
    let status = ctx.query_value("status");
    if status.as_deref().is_some_and(|s| !STATUSES.contains(&s)) {
        return Err(ApiError::invalid_query(
            "status must be pending, paid or failed",
        ));
    }
    let id = ctx.id("partner")?;
    let (after_t, after_id) = page.after.clone().unzip();
    let tx = ctx.tx().await?;
    tx.one_or_404("partner", &id, "SELECT 1 FROM partners WHERE id = $1")
        .await?;
    let rows = tx
        .query(
            &format!(
                "SELECT {COLUMNS} FROM payouts p
                  WHERE ($1::text IS NULL OR p.status = $1) AND p.partner_id = $2
                    AND ($3::timestamptz IS NULL OR (p.created_at, p.id) < ($3, $4::text))
                  ORDER BY p.created_at DESC, p.id DESC LIMIT $5"
            ),
            &[&status, &id, &after_t, &after_id, &page.fetch()],
        )
        .await?;
    tx.commit().await?;
    Ok(Reply::ok(rows_body(&page, "payouts", &rows, to_json)))
}

/// The payout `id`, or `404`.
async fn load(tx: &Tx, id: &str) -> Result<Row, ApiError> {
    let sql = format!("SELECT {COLUMNS} FROM payouts p WHERE p.id = $1");
    tx.one_or_404("payout", id, &sql).await
}

/// `GET /payouts/:id`: the payout and its commissions.
pub async fn get(ctx: Ctx) -> Result<Reply, ApiError> {
    let id = ctx.id("payout")?;
    let tx = ctx.tx().await?;
    let row = load(&tx, &id).await?;
    let comms: Vec<CommissionView> = tx
        .query(
            &format!(
                "SELECT {} FROM commissions WHERE payout_id = $1 ORDER BY id",
                commissions::COLUMNS
            ),
            &[&id],
        )
        .await?
        .iter()
        .map(commissions::view)
        .collect();
    tx.commit().await?;
    Ok(Reply::typed(
        200,
        &GotPayout {
            payout: PayoutWithCommissions {
                payout: view(&row),
                commissions: comms.clone(),
            },
            commissions: comms,
        },
    ))
}

/// `POST /payouts/:id/mark-paid` (manual mode).
pub async fn mark_paid(ctx: Ctx) -> Result<Reply, ApiError> {
    let id = ctx.id("payout")?;
    let tx = ctx.tx().await?;
    let updated = tx
        .execute("UPDATE payouts SET status = 'paid', paid_at = now() WHERE id = $1 AND status = 'pending'", &[&id])
        .await?;
    let row = load(&tx, &id).await?;
    if updated == 0 {
        return Err(ApiError::conflict(
            ErrorCode::NotPending,
            format!("the payout is {}", row.get::<_, String>("status")),
        ));
    }
    tx.commit().await?;
    Ok(Reply::typed(200, &OnePayout { payout: view(&row) }))
}
