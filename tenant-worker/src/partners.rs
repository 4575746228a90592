//! Partners: the people and companies a merchant pays for referrals.
//!
//! State machine: `invited` (invite mailed, not yet signed in) → `active` → `revoked`, and
//! `revoked` → back to whichever of `invited`/`active` it had reached (`reinstate`).
//! Revoking also revokes the partner's keys in the same transaction.

use crate::{
    context::{Acknowledged, Ctx, Reply, Timestamp},
    error::{ApiError, ErrorCode},
    grants, mail,
    openapi::Op,
    outbox,
    pagination::{rows_body, PageRequest},
    sessions,
    sql::{val, Stmt, Tx, Writes},
};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tokio_postgres::error::SqlState;
use tokio_postgres::{types::ToSql, Row};

pub const COLUMNS: &str = "id, email, name, metadata, status, activated_at, revoked_at, revoke_reason, created_at, updated_at";
const MAX_METADATA_BYTES: usize = 16 * 1024;

/// A partner row ([`COLUMNS`]).
struct Partner {
    id: String,
    email: String,
    name: String,
    metadata: Value,
    status: String,
    activated_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    revoke_reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl Partner {
    fn from_row(row: &Row) -> Partner {
        Partner {
            id: row.get("id"),
            email: row.get("email"),
            name: row.get("name"),
            metadata: row.get("metadata"),
            status: row.get("status"),
            activated_at: row.get("activated_at"),
            revoked_at: row.get("revoked_at"),
            revoke_reason: row.get("revoke_reason"),
            created_at: row.get("created_at"),
            updated_at: row.get("updated_at"),
        }
    }

    /// The API shape.
    fn view(&self) -> PartnerView {
        PartnerView {
            id: self.id.clone(),
            email: self.email.clone(),
            name: self.name.clone(),
            metadata: self.metadata.clone(),
            status: self.status.clone(),
            activated_at: self.activated_at.map(Timestamp),
            revoked_at: self.revoked_at.map(Timestamp),
            revoke_reason: self.revoke_reason.clone(),
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
        }
    }

    fn to_json(&self) -> Value {
        json(&self.view())
    }
}

/// A partner, as the API shows it.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerView {
    id: String,
    email: String,
    name: String,
    /// Free-form data of the merchant's (a JSON object of at most 16 KiB).
    #[schemars(with = "Map<String, Value>")]
    metadata: Value,
    /// `invited` (invite mailed, not signed in yet), `active` or `revoked`.
    #[schemars(regex(pattern = "^(invited|active|revoked)$"))]
    status: String,
    activated_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
    revoke_reason: Option<String>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

/// `POST /partners` answers the partner and whether an invite went out.
#[derive(Serialize, JsonSchema)]
struct CreatedPartner {
    #[serde(flatten)]
    partner: PartnerView,
    invited: bool,
}

/// `GET /partners/:id` answers the partner at the top level and under `partner` (as the
/// original did).
#[derive(Serialize, JsonSchema)]
struct GotPartner {
    #[serde(flatten)]
    top: PartnerView,
    partner: PartnerView,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Revoked {
    ok: bool,
    revoked_at: Option<Timestamp>,
    notified: bool,
    partner: PartnerView,
}

#[derive(Serialize, JsonSchema)]
struct Reinstated {
    ok: bool,
    partner: PartnerView,
}

fn json(v: &impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or_default()
}

pub fn to_json(row: &Row) -> Value {
    Partner::from_row(row).to_json()
}

pub fn create_doc() -> Op {
    Op::new("Create a partner")
        .describe("Mails an invite link unless `sendInvite` is false (then the partner is `active` at once).")
        .body::<CreatePartner>()
        .ok::<CreatedPartner>(201, "The new partner.")
        .errors(400, &[ErrorCode::UnknownCampaignIds])
        .errors(409, &[ErrorCode::EmailTaken])
}

pub fn list_doc() -> Op {
    Op::new("List partners")
        .query(
            "status",
            "Only partners in this status.",
            json!({"type": "string", "enum": ["invited", "active", "revoked"]}),
        )
        .query(
            "email",
            "Only the partner with this e-mail address.",
            json!({"type": "string"}),
        )
        .page::<PartnerView>("partners")
}

pub fn get_doc() -> Op {
    Op::new("Get a partner")
        .ok::<GotPartner>(200, "The partner.")
        .errors(404, &[ErrorCode::NotFound])
}

pub fn invite_doc() -> Op {
    Op::new("Re-send a partner's invite")
        .ok::<Acknowledged>(200, "The invite was mailed again.")
        .errors(404, &[ErrorCode::NotFound])
        .errors(
            409,
            &[ErrorCode::AlreadyActivated, ErrorCode::PartnerRevoked],
        )
}

pub fn revoke_doc() -> Op {
    Op::new("Revoke a partner")
        .describe("Ends the partnership: the partner's keys and sessions end with it; clicks still redirect but are flagged.")
        .optional_body::<RevokeBody>()
        .ok::<Revoked>(200, "The revoked partner.")
        .errors(404, &[ErrorCode::NotFound])
        .errors(409, &[ErrorCode::AlreadyRevoked])
}

pub fn reinstate_doc() -> Op {
    Op::new("Reinstate a revoked partner")
        .ok::<Reinstated>(200, "The partner, back to `invited` or `active`.")
        .errors(404, &[ErrorCode::NotFound])
        .errors(409, &[ErrorCode::NotRevoked])
}

fn validate_name(raw: &str) -> Result<String, ApiError> {
    let n = raw.trim();
    if n.is_empty() || n.chars().count() > 200 || n.chars().any(char::is_control) {
        return Err(
            ApiError::invalid_body("name must be 1 to 200 printable characters")
                .with("field", "name"),
        );
    }
    Ok(n.to_string())
}

fn validate_metadata(m: Option<Value>) -> Result<Value, ApiError> {
    match m {
        None | Some(Value::Null) => Ok(Value::Object(Map::new())),
        Some(v @ Value::Object(_)) => {
            if serde_json::to_vec(&v).map_or(0, |b| b.len()) > MAX_METADATA_BYTES {
                return Err(ApiError::invalid_body("metadata is larger than 16 KiB")
                    .with("field", "metadata"));
            }
            Ok(v)
        }
        Some(_) => {
            Err(ApiError::invalid_body("metadata must be a JSON object").with("field", "metadata"))
        }
    }
}

/// What a change of a partner's status starts from: the row, locked until commit.
struct Locked {
    status: String,
    email: String,
}

async fn lock(tx: &Tx, id: &str) -> Result<Locked, ApiError> {
    let row = tx
        .one_or_404(
            "partner",
            id,
            "SELECT status, email FROM partners WHERE id = $1 FOR UPDATE",
        )
        .await?;
    Ok(Locked {
        status: row.get(0),
        email: row.get(1),
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreatePartner {
    /// Unique per tenant (compared case-insensitively).
    #[schemars(email)]
    email: String,
    /// 1 to 200 printable characters.
    #[schemars(length(min = 1, max = 200))]
    name: String,
    /// A JSON object of at most 16 KiB.
    #[schemars(with = "Option<Map<String, Value>>")]
    metadata: Option<Value>,
    /// Mail an invite link (default true).
    send_invite: Option<bool>,
    /// The campaigns the partner is granted (at most 500 ids). Left out: every campaign open
    /// to all partners (`grantToAllPartners`), now and later; `[]`: none (campaigns opened
    /// later still reach it).
    #[schemars(length(max = 500))]
    campaign_ids: Option<Vec<String>>,
    /// The same as `campaignIds` (the original's later name); both must agree.
    #[schemars(length(max = 500))]
    program_ids: Option<Vec<String>>,
}

/// `POST /partners`
pub async fn create(ctx: Ctx) -> Result<Reply, ApiError> {
    let body: CreatePartner = ctx.json()?;
    let email = sessions::normalize_email(&body.email)?;
    let name = validate_name(&body.name)?;
    let metadata = validate_metadata(body.metadata)?;
    let invite = body.send_invite.unwrap_or(true);
    let status = if invite { "invited" } else { "active" };
    let access = grants::Initial::check(&ctx, body.campaign_ids, body.program_ids).await?;
    // The row is known before it is written (the time is the worker's, as for clicks and
    // events), so the partner, its `partner.created` event and the invite travel together:
    // BEGIN, the inserts and COMMIT in one round trip.
    let now = Utc::now();
    let partner = Partner {
        id: ulid::Ulid::new().to_string(),
        email,
        name,
        metadata,
        status: status.to_string(),
        activated_at: (!invite).then_some(now),
        revoked_at: None,
        revoke_reason: None,
        created_at: now,
        updated_at: now,
    };
    let schema = ctx.schema()?;
    let w = Writes::new(schema);
    let insert = w.push(Stmt::new(
        format!(
            "INSERT INTO {schema}.partners (id, email, name, metadata, status, activated_at, created_at, updated_at, open_campaigns)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)"
        ),
        vec![
            val(partner.id.clone()),
            val(partner.email.clone()),
            val(partner.name.clone()),
            val(partner.metadata.clone()),
            val(partner.status.clone()),
            val(partner.activated_at),
            val(now),
            val(access.open_campaigns),
        ],
    ));
    access.write(&w, &partner.id, now).await?;
    let body = partner.to_json();
    outbox::emit(&w, "partner.created", json!({ "partner": body })).await?;
    let mut mails = Vec::new();
    if invite {
        mails.push(sessions::send_invite(&ctx, &w, "partner", &partner.id, &partner.email).await?);
    }
    match w.try_commit(&ctx.app.pool).await {
        Ok(_) => {}
        // The id is new: a unique violation of the partner row is its e-mail address.
        Err(Ok(f)) if f.index == insert && f.error.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            return Err(ApiError::conflict(
                ErrorCode::EmailTaken,
                "a partner with this email already exists",
            ))
        }
        Err(Ok(f)) => return Err(f.error.into()),
        Err(Err(e)) => return Err(e),
    }
    mail::send_after_commit(&ctx.app, schema, mails);
    Ok(Reply::typed(
        201,
        &CreatedPartner {
            partner: partner.view(),
            invited: invite,
        },
    ))
}

/// `GET /partners?status=&email=&limit=&cursor=`
pub async fn list(ctx: Ctx) -> Result<Reply, ApiError> {
    let page = PageRequest::from_ctx(&ctx)?;
    let mut filters: Vec<String> = Vec::new();
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    if let Some(status) = ctx.query_value("status") {
        if !["invited", "active", "revoked"].contains(&status.as_str()) {
            return Err(ApiError::invalid_query(
                "status must be invited, active or revoked",
            ));
        }
        params.push(Box::new(status));
        filters.push(format!("status = ${}", params.len()));
    }
    if let Some(email) = ctx.query_value("email") {
        params.push(Box::new(email.trim().to_lowercase()));
        filters.push(format!("email = ${}", params.len()));
    }
    if let Some((t, id)) = page.after.clone() {
        params.push(Box::new(t));
        params.push(Box::new(id));
        filters.push(format!(
            "(created_at, id) < (${}, ${})",
            params.len() - 1,
            params.len()
        ));
    }
    params.push(Box::new(page.fetch()));
    let where_clause = if filters.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", filters.join(" AND "))
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM {}.partners {where_clause} ORDER BY created_at DESC, id DESC LIMIT ${}",
        ctx.schema()?,
        params.len()
    );
    let refs: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();

    let rows = ctx.read(&sql, &refs).await?;
    Ok(Reply::ok(rows_body(&page, "partners", &rows, to_json)))
}

/// `GET /partners/:id`
pub async fn get(ctx: Ctx) -> Result<Reply, ApiError> {
    let row = ctx.by_id("partners", COLUMNS, "partner").await?;
    let partner = Partner::from_row(&row);
    Ok(Reply::typed(
        200,
        &GotPartner {
            top: partner.view(),
            partner: partner.view(),
        },
    ))
}

#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    /// Shown to the partner if notified; at most 1,000 characters.
    #[schemars(length(max = 1000))]
    reason: Option<String>,
    /// Mail the partner (default true).
    notify: Option<bool>,
}

/// `POST /partners/:id/revoke {reason?, notify?=true}`
pub async fn revoke(ctx: Ctx) -> Result<Reply, ApiError> {
    let id = ctx.id("partner")?;
    let body: RevokeBody = ctx.json()?;
    let reason = body
        .reason
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    if reason.as_ref().is_some_and(|r| r.chars().count() > 1000) {
        return Err(
            ApiError::invalid_body("reason is longer than 1000 characters").with("field", "reason"),
        );
    }
    let notify = body.notify.unwrap_or(true);
    let tenant = ctx.tenant()?.clone();

    let tx = ctx.tx().await?;
    if lock(&tx, &id).await?.status == "revoked" {
        return Err(ApiError::conflict(
            ErrorCode::AlreadyRevoked,
            "the partner is already revoked",
        ));
    }
    let row = tx
        .query_one(
            &format!(
                "UPDATE partners SET status = 'revoked', revoked_at = now(), revoke_reason = $2, updated_at = now()
                 WHERE id = $1 RETURNING {COLUMNS}"
            ),
            &[&id, &reason],
        )
        .await?;
    // The partner's keys die with the partnership, atomically.
    let revoked_keys: Vec<String> = tx
        .query(
            "UPDATE control.api_keys SET revoked_at = now()
              WHERE tenant_id = $1 AND partner_id = $2 AND revoked_at IS NULL RETURNING id",
            &[&tenant.id, &id],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for key_id in &revoked_keys {
        crate::api_keys::notify_key(&*tx, key_id).await?;
    }
    let ended = sessions::revoke_sessions(&tx, "partner", &id).await?;
    let partner = Partner::from_row(&row).view();
    outbox::emit(
        &tx,
        "partner.revoked",
        json!({ "partner": partner, "reason": reason }),
    )
    .await?;
    let mut mails = Vec::new();
    if notify {
        let email: String = row.get("email");
        mails.push(
            mail::queue(
                &tx,
                &ctx.app.mailer,
                &email,
                &format!("Your partnership with {} has ended", tenant.slug),
                &format!(
                    "Your partner account has been deactivated.{}\n",
                    reason
                        .as_deref()
                        .map(|r| format!("\n\nReason: {r}"))
                        .unwrap_or_default()
                ),
                "partner_revoked",
                &[],
            )
            .await?,
        );
    }
    tx.commit().await?;
    mail::send_after_commit(&ctx.app, &tenant.schema, mails);
    Ok(Reply::typed(
        200,
        &Revoked {
            ok: true,
            revoked_at: partner.revoked_at,
            notified: notify,
            partner,
        },
    )
    .invalidate_keys(revoked_keys)
    .invalidate_sessions(ended))
}

/// `POST /partners/:id/invite`: re-sends the invite link while the partner has not signed in.
pub async fn invite(ctx: Ctx) -> Result<Reply, ApiError> {
    let id = ctx.id("partner")?;
    let tx = ctx.tx().await?;
    let Locked { status, email } = lock(&tx, &id).await?;
    match status.as_str() {
        "active" => {
            return Err(ApiError::conflict(
                ErrorCode::AlreadyActivated,
                "the partner has already activated their account",
            ))
        }
        "revoked" => {
            return Err(ApiError::conflict(
                ErrorCode::PartnerRevoked,
                "the partner is revoked; reinstate them first",
            ))
        }
        _ => {}
    }
    let mail = sessions::send_invite(&ctx, &tx, "partner", &id, &email).await?;
    tx.commit().await?;
    mail::send_after_commit(&ctx.app, &ctx.tenant()?.schema, vec![mail]);
    Ok(Reply::typed(200, &Acknowledged { ok: true }))
}

/// `POST /partners/:id/reinstate`
pub async fn reinstate(ctx: Ctx) -> Result<Reply, ApiError> {
    let id = ctx.id("partner")?;
    let tx = ctx.tx().await?;
    if lock(&tx, &id).await?.status != "revoked" {
        return Err(ApiError::conflict(
            ErrorCode::NotRevoked,
            "the partner is not revoked",
        ));
    }
    let row = tx
        .query_one(
            &format!(
                "UPDATE partners
                    SET status = CASE WHEN activated_at IS NULL THEN 'invited' ELSE 'active' END,
                        revoked_at = NULL, revoke_reason = NULL, updated_at = now()
                  WHERE id = $1 RETURNING {COLUMNS}"
            ),
            &[&id],
        )
        .await?;
    tx.commit().await?;
    Ok(Reply::typed(
        200,
        &Reinstated {
            ok: true,
            partner: Partner::from_row(&row).view(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_must_be_a_small_object() {
        assert_eq!(validate_metadata(None).unwrap(), json!({}));
        assert!(validate_metadata(Some(json!([1]))).is_err());
        assert!(validate_metadata(Some(json!({"k": "x".repeat(20_000)}))).is_err());
        assert_eq!(
            validate_metadata(Some(json!({"k": 1}))).unwrap(),
            json!({"k": 1})
        );
    }
}
