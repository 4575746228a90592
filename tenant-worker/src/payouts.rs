//! Payouts: approved commissions (clawbacks included) grouped by (partner, currency) and
//! paid out together.
//!
//! A run holds a per-tenant advisory lock (a statement of its own, CITUS rule 11) and locks
//! the rows it pays, so two runs — concurrent or repeated — never pay a commission twice.
//! A group whose net is not positive, or below the currency's minimum, is carried forward:
//! its commissions stay approved and unpaid until later commissions cover it. A payout's
//! amount is the exact sum of its commissions.

use crate::{
    commissions,
    context::{parse_id, ts, ts_opt, Ctx, Reply},
    error::{ApiError, ErrorCode},
    money::{parse_amount, Currency},
    outbox,
    pagination::{rows_body, PageRequest},
    sql::Tx,
};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use tokio_postgres::Row;

const COLUMNS: &str = "p.id, p.run_id, p.partner_id, p.amount, p.currency, p.method, p.status, p.created_at, p.paid_at,
    COALESCE((SELECT array_agg(c.id ORDER BY c.id) FROM commissions c WHERE c.payout_id = p.id), '{}') AS commission_ids";

fn to_json(row: &Row) -> Value {
    let currency: String = row.get("currency");
    let amount: Decimal = row.get("amount");
    let id: String = row.get("id");
    json!({
        "id": id,
        "payoutId": id,
        "runId": row.get::<_, String>("run_id"),
        "partnerId": row.get::<_, String>("partner_id"),
        "amount": Currency::parse(&currency).map_or(amount.to_string(), |c| c.format(amount)),
        "currency": currency,
        "method": row.get::<_, String>("method"),
        "status": row.get::<_, String>("status"),
        "commissionIds": row.get::<_, Vec<String>>("commission_ids"),
        "createdAt": ts(row.get("created_at")),
        "paidAt": ts_opt(row.get("paid_at")),
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RunBody {
    /// Minimum payout per currency, e.g. `{"USD": "50.00"}`.
    minimums: Option<Map<String, Value>>,
    partner_id: Option<String>,
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
        let payout = to_json(&row);
        outbox::emit(&tx, "payout.created", json!({ "payout": payout })).await?;
        payouts.push(payout);
    }
    tx.commit().await?;
    Ok(Reply::ok(
        json!({ "ok": true, "runId": run_id, "mode": "manual", "payouts": payouts }),
    ))
}

/// `GET /payouts`
pub async fn list(ctx: Ctx) -> Result<Reply, ApiError> {
    let page = PageRequest::from_ctx(&ctx)?;
    let status = ctx.query_value("status");
    let partner = ctx.query_value("partnerId");
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
    let comms: Vec<Value> = tx
        .query(
            &format!(
                "SELECT {} FROM commissions WHERE payout_id = $1 ORDER BY id",
                commissions::COLUMNS
            ),
            &[&id],
        )
        .await?
        .iter()
        .map(commissions::to_json)
        .collect();
    tx.commit().await?;
    let mut payout = to_json(&row);
    payout["commissions"] = Value::Array(comms.clone());
    Ok(Reply::ok(json!({ "payout": payout, "commissions": comms })))
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
    Ok(Reply::ok(json!({ "payout": to_json(&row) })))
}
