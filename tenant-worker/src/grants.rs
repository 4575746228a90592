//! Program access: which partners reach which campaigns (the original's "programs").
//!
//! A campaign open to all partners (`grantToAllPartners`, the default) needs no row per
//! partner: it reaches every partner that follows open campaigns (`partners.open_campaigns`:
//! created without an explicit `campaignIds`/`programIds` list) and every partner created
//! before the campaign was opened (`campaigns.opened_at`). `partner_programs` holds the
//! exceptions, which win over that default: explicit grants (`source` admin, offering,
//! signup or import) and removals (`removed_at`). [`REACHES`] is that rule, the one SQL
//! definition every reader uses: the grant listing, `/me/programs` and link creation (where
//! a partner, or a `links:write` key, needs the grant; admins do not).
//!
//! So a private campaign (`grantToAllPartners: false`) reaches only explicit grants; opening
//! a campaign, or creating an open one, writes nothing per partner; and removing a grant only
//! blocks new links (existing links and their clicks keep working).

use crate::{
    access::Principal,
    context::{parse_id, Acknowledged, Ctx, Reply, Timestamp},
    error::{ApiError, ErrorCode},
    openapi::Op,
    sql::{val, Stmt, Writer},
};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;

/// Whether partner `p` reaches campaign `c`, `g` being their `partner_programs` row (LEFT
/// JOIN, so its columns are null without one). A row decides when there is one; otherwise
/// an open campaign reaches the partners that follow open campaigns and those created
/// before it opened.
pub const REACHES: &str = "COALESCE(CASE WHEN g.partner_id IS NOT NULL THEN g.removed_at IS NULL
         ELSE c.grant_to_all_partners AND (p.open_campaigns OR c.opened_at > p.created_at) END, false)";

/// The source of a grant without a row (an open campaign): the admin who opened it.
const IMPLICIT_SOURCE: &str = "admin";

/// Where a grant came from.
#[derive(Deserialize, Serialize, JsonSchema, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub enum GrantSource {
    Admin,
    Offering,
    Signup,
    Import,
}

impl GrantSource {
    fn as_str(self) -> &'static str {
        match self {
            GrantSource::Admin => "admin",
            GrantSource::Offering => "offering",
            GrantSource::Signup => "signup",
            GrantSource::Import => "import",
        }
    }
}

/// The campaigns a `campaignIds`/`programIds` pair names: `(field it came from, ids as sent)`.
/// Both given must agree; neither is `None`.
fn pick_ids(
    campaign_ids: Option<Vec<String>>,
    program_ids: Option<Vec<String>>,
) -> Result<Option<(&'static str, Vec<String>)>, ApiError> {
    match (campaign_ids, program_ids) {
        (Some(c), Some(p)) if c != p => Err(ApiError::invalid_body(
            "campaignIds and programIds name the same thing; they must not differ",
        )
        .with("field", "campaignIds")),
        (Some(c), _) => Ok(Some(("campaignIds", c))),
        (None, Some(p)) => Ok(Some(("programIds", p))),
        (None, None) => Ok(None),
    }
}

/// The most ids one request may name.
const MAX_IDS: usize = 500;

/// Ids as sent → `(canonical ids, deduplicated in order; the ones that cannot be a campaign id)`.
fn canonical(field: &str, raw: &[String]) -> Result<(Vec<String>, Vec<String>), ApiError> {
    if raw.len() > MAX_IDS {
        return Err(
            ApiError::invalid_body(format!("{field} lists more than {MAX_IDS} ids"))
                .with("field", field),
        );
    }
    let mut ids: Vec<String> = Vec::with_capacity(raw.len());
    let mut malformed = Vec::new();
    for r in raw {
        match parse_id(r, "campaign") {
            Ok(id) if !ids.contains(&id) => ids.push(id),
            Ok(_) => {}
            Err(_) => malformed.push(r.clone()),
        }
    }
    Ok((ids, malformed))
}

/// The grants a new partner starts with (`POST /partners` `campaignIds`/`programIds`).
pub struct Initial {
    /// No list: the partner follows open campaigns (present and future) without rows.
    pub open_campaigns: bool,
    /// Explicit grants to write with the partner.
    pub campaigns: Vec<String>,
}

impl Initial {
    /// Checks the list a partner is created with: every id must name a campaign (else `400
    /// unknown_campaign_ids` with `missing`). One read, only when a list is given.
    pub async fn check(
        ctx: &Ctx,
        campaign_ids: Option<Vec<String>>,
        program_ids: Option<Vec<String>>,
    ) -> Result<Initial, ApiError> {
        let Some((field, raw)) = pick_ids(campaign_ids, program_ids)? else {
            return Ok(Initial {
                open_campaigns: true,
                campaigns: Vec::new(),
            });
        };
        let (ids, mut missing) = canonical(field, &raw)?;
        if !ids.is_empty() {
            let found: Vec<String> = ctx
                .read(
                    &format!(
                        "SELECT id FROM {}.campaigns WHERE id = ANY($1)",
                        ctx.schema()?
                    ),
                    &[&ids],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            missing.extend(ids.iter().filter(|id| !found.contains(id)).cloned());
        }
        if !missing.is_empty() {
            return Err(ApiError::new(
                400,
                ErrorCode::UnknownCampaignIds,
                format!("{field} names campaigns that do not exist"),
            )
            .with("field", field)
            .with("missing", missing));
        }
        Ok(Initial {
            open_campaigns: false,
            campaigns: ids,
        })
    }

    /// Adds the explicit grant rows to the change that creates `partner` (after its row).
    pub async fn write(
        &self,
        w: &impl Writer,
        partner: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        if self.campaigns.is_empty() {
            return Ok(());
        }
        let mut values = Vec::with_capacity(self.campaigns.len());
        let mut params = vec![val(partner.to_string()), val(now)];
        for c in &self.campaigns {
            params.push(val(c.clone()));
            values.push(format!("($1, ${}, 'admin', $2)", params.len()));
        }
        w.write(Stmt::new(
            format!(
                "INSERT INTO {}.partner_programs (partner_id, campaign_id, source, granted_at) VALUES {}",
                w.schema(),
                values.join(", ")
            ),
            params,
        ))
        .await
    }
}

/// One campaign as a partner's grant listing shows it.
#[derive(Serialize, JsonSchema, Clone)]
#[serde(rename_all = "camelCase")]
struct PartnerCampaign {
    id: String,
    /// The same as `id`.
    program_id: String,
    name: String,
    destination_url: String,
    grant_to_all_partners: bool,
    starts_at: Option<Timestamp>,
    ends_at: Option<Timestamp>,
    /// Whether the partner may create links on it.
    granted: bool,
    /// Where the grant came from (`admin` for an open campaign's); null when not granted.
    #[schemars(regex(pattern = "^(admin|offering|signup|import)$"))]
    grant_source: Option<String>,
    /// Null when not granted.
    granted_at: Option<Timestamp>,
}

/// `GET /partners/:id/campaigns`: every campaign, newest first, under `data`, `campaigns`
/// and `programs`.
#[derive(Serialize, JsonSchema)]
struct PartnerCampaigns {
    data: Vec<PartnerCampaign>,
    /// The same as `data`.
    campaigns: Vec<PartnerCampaign>,
    /// The same as `data`.
    programs: Vec<PartnerCampaign>,
}

pub fn list_doc() -> Op {
    Op::new("List a partner's campaign access")
        .describe("Every campaign (newest first, not paginated) with whether the partner is granted it (`granted`, `grantSource`, `grantedAt`; null when not granted). A partner reading its own list does not see private campaigns it is not granted. Also `GET /partners/{id}/programs`.")
        .ok::<PartnerCampaigns>(200, "Every campaign, newest first.")
        .errors(404, &[ErrorCode::NotFound])
}

/// `GET /partners/:id/campaigns` (alias `/partners/:id/programs`)
pub async fn list(ctx: Ctx) -> Result<Reply, ApiError> {
    let partner = ctx.id("partner")?;
    let s = ctx.schema()?;
    let rows = ctx
        .read(
            &format!(
                "SELECT c.id, c.name, c.destination_url, c.grant_to_all_partners, c.starts_at, c.ends_at,
                        {REACHES} AS granted,
                        CASE WHEN g.partner_id IS NOT NULL THEN g.source ELSE '{IMPLICIT_SOURCE}' END AS source,
                        CASE WHEN g.partner_id IS NOT NULL THEN g.granted_at
                             ELSE GREATEST(p.created_at, c.opened_at) END AS granted_at
                   FROM {s}.partners p
                   LEFT JOIN {s}.campaigns c ON true
                   LEFT JOIN {s}.partner_programs g ON g.partner_id = p.id AND g.campaign_id = c.id
                  WHERE p.id = $1
                  ORDER BY c.created_at DESC, c.id DESC"
            ),
            &[&partner],
        )
        .await?;
    if rows.is_empty() {
        return Err(ApiError::no_such("partner", &partner));
    }
    let partner_reads = matches!(ctx.principal, Principal::Partner { .. });
    let data: Vec<PartnerCampaign> = rows
        .iter()
        .filter(|r| r.get::<_, Option<String>>("id").is_some())
        .map(|r| {
            let granted: bool = r.get("granted");
            PartnerCampaign {
                program_id: r.get("id"),
                id: r.get("id"),
                name: r.get("name"),
                destination_url: r.get("destination_url"),
                grant_to_all_partners: r.get("grant_to_all_partners"),
                starts_at: r
                    .get::<_, Option<DateTime<Utc>>>("starts_at")
                    .map(Timestamp),
                ends_at: r.get::<_, Option<DateTime<Utc>>>("ends_at").map(Timestamp),
                granted,
                grant_source: granted.then(|| r.get("source")),
                granted_at: granted
                    .then(|| r.get::<_, Option<DateTime<Utc>>>("granted_at"))
                    .flatten()
                    .map(Timestamp),
            }
        })
        // A partner does not learn of private campaigns it was not granted.
        .filter(|c| !partner_reads || c.granted || c.grant_to_all_partners)
        .collect();
    Ok(Reply::typed(
        200,
        &PartnerCampaigns {
            campaigns: data.clone(),
            programs: data.clone(),
            data,
        },
    ))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GrantBody {
    /// The campaigns to grant, 1 to 500 ids (`campaignIds` or `programIds`; both must agree).
    #[schemars(length(min = 1, max = 500))]
    campaign_ids: Option<Vec<String>>,
    /// The same as `campaignIds` (the original's later name).
    #[schemars(length(min = 1, max = 500))]
    program_ids: Option<Vec<String>>,
    /// Where the grant comes from (default `admin`).
    source: Option<GrantSource>,
}

/// `POST /partners/:id/campaigns` answers the campaigns the partner did not reach before.
#[derive(Serialize, JsonSchema)]
struct Added {
    /// The campaigns granted by this request, in the order given (those already granted are
    /// left out; unknown ids are ignored).
    added: Vec<String>,
}

pub fn add_doc() -> Op {
    Op::new("Grant a partner campaigns")
        .describe("Grants the named campaigns (an explicit grant, which a campaign made private later keeps). Ids that name no campaign are ignored; if none does, `404 no_valid_campaigns`. Also `POST /partners/{id}/programs`.")
        .body::<GrantBody>()
        .ok::<Added>(201, "The campaigns newly granted.")
        .errors(404, &[ErrorCode::NotFound, ErrorCode::NoValidCampaigns])
}

/// The partner row, locked against concurrent grant changes and link creation
/// (`FOR NO KEY UPDATE`: foreign keys to it still insert), or `404`.
async fn lock_partner(tx: &crate::sql::Tx, partner: &str) -> Result<(), ApiError> {
    tx.one_or_404(
        "partner",
        partner,
        "SELECT 1 FROM partners WHERE id = $1 FOR NO KEY UPDATE",
    )
    .await
    .map(|_| ())
}

/// `POST /partners/:id/campaigns {campaignIds | programIds, source?}` (alias `/programs`)
pub async fn add(ctx: Ctx) -> Result<Reply, ApiError> {
    let partner = ctx.id("partner")?;
    let body: GrantBody = ctx.json()?;
    let source = body.source.unwrap_or(GrantSource::Admin);
    let Some((field, raw)) = pick_ids(body.campaign_ids, body.program_ids)? else {
        return Err(
            ApiError::invalid_body("campaignIds (or programIds) is required")
                .with("field", "campaignIds"),
        );
    };
    if raw.is_empty() {
        return Err(
            ApiError::invalid_body(format!("{field} must name at least one campaign"))
                .with("field", field),
        );
    }
    let (ids, _) = canonical(field, &raw)?;
    let now = Utc::now();
    let tx = ctx.tx().await?;
    lock_partner(&tx, &partner).await?;
    let rows = tx
        .query(
            &format!(
                "SELECT c.id, {REACHES} AS reached, (g.partner_id IS NOT NULL AND g.removed_at IS NULL) AS explicit
                   FROM partners p
                   JOIN campaigns c ON c.id = ANY($2)
                   LEFT JOIN partner_programs g ON g.partner_id = p.id AND g.campaign_id = c.id
                  WHERE p.id = $1"
            ),
            &[&partner, &ids],
        )
        .await?;
    if rows.is_empty() {
        return Err(ApiError::new(
            404,
            ErrorCode::NoValidCampaigns,
            format!("{field} names no campaign"),
        )
        .with("field", field));
    }
    let mut added = Vec::new();
    for id in &ids {
        let Some(r) = rows.iter().find(|r| r.get::<_, &str>("id") == id) else {
            continue;
        };
        if !r.get::<_, bool>("explicit") {
            tx.execute(
                "INSERT INTO partner_programs (partner_id, campaign_id, source, granted_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (partner_id, campaign_id)
                 DO UPDATE SET source = EXCLUDED.source, granted_at = EXCLUDED.granted_at, removed_at = NULL",
                &[&partner, id, &source.as_str(), &now],
            )
            .await?;
        }
        if !r.get::<_, bool>("reached") {
            added.push(id.clone());
        }
    }
    tx.commit().await?;
    Ok(Reply::typed(201, &Added { added }))
}

pub fn remove_doc() -> Op {
    Op::new("Remove a partner's grant")
        .describe("The partner can no longer create links on the campaign (its existing links and their clicks keep working). Works for explicit grants and for an open campaign's grant alike. Also `DELETE /partners/{id}/campaigns/{campaignId}`.")
        .ok::<Acknowledged>(200, "The grant is gone.")
        .errors(404, &[ErrorCode::NotFound, ErrorCode::GrantNotFound])
}

/// `DELETE /partners/:id/programs/:programId` (alias `/partners/:id/campaigns/:campaignId`)
pub async fn remove(ctx: Ctx) -> Result<Reply, ApiError> {
    let partner = ctx.id("partner")?;
    let raw = match ctx.param("programId") {
        "" => ctx.param("campaignId"),
        p => p,
    };
    let not_found = || {
        ApiError::new(
            404,
            ErrorCode::GrantNotFound,
            "the partner is not granted this campaign",
        )
    };
    let campaign = parse_id(raw, "campaign").map_err(|_| not_found())?;
    let now = Utc::now();
    let tx = ctx.tx().await?;
    lock_partner(&tx, &partner).await?;
    let reached = tx
        .query_opt(
            &format!(
                "SELECT {REACHES} FROM partners p
                   JOIN campaigns c ON c.id = $2
                   LEFT JOIN partner_programs g ON g.partner_id = p.id AND g.campaign_id = c.id
                  WHERE p.id = $1"
            ),
            &[&partner, &campaign],
        )
        .await?
        .is_some_and(|r| r.get::<_, bool>(0));
    if !reached {
        return Err(not_found());
    }
    // A removal row: it wins over an open campaign's default as well.
    tx.execute(
        "INSERT INTO partner_programs (partner_id, campaign_id, source, granted_at, removed_at)
         VALUES ($1, $2, 'admin', $3, $3)
         ON CONFLICT (partner_id, campaign_id) DO UPDATE SET removed_at = EXCLUDED.removed_at",
        &[&partner, &campaign, &now],
    )
    .await?;
    tx.commit().await?;
    Ok(Reply::typed(200, &Acknowledged { ok: true }))
}

/// A campaign as `GET /me/programs` shows it.
#[derive(Serialize, JsonSchema, Clone)]
#[serde(rename_all = "camelCase")]
struct MyProgram {
    id: String,
    name: String,
    destination_url: String,
    deep_link_allowed_domains: Vec<String>,
    starts_at: Option<Timestamp>,
    ends_at: Option<Timestamp>,
    /// The grant's source (`admin`, `offering`, `signup`, `import`); null for admins.
    #[schemars(regex(pattern = "^(admin|offering|signup|import)$"))]
    source: Option<String>,
    /// The partner's own commission terms in force now for this campaign (its per-campaign
    /// terms, else its all-campaign terms); null when the campaign's own rule applies.
    terms: Option<crate::terms::TermsView>,
}

#[derive(Serialize, JsonSchema)]
struct MyPrograms {
    data: Vec<MyProgram>,
    /// The same as `data`.
    programs: Vec<MyProgram>,
    /// The same as `data`.
    campaigns: Vec<MyProgram>,
}

pub fn mine_doc() -> Op {
    Op::new("List the campaigns I can promote")
        .describe("A partner: the campaigns it is granted that are active now (inside their `startsAt`/`endsAt` window). An admin: every campaign, ended and future ones included (`source` null). Newest first, not paginated. Also `GET /me/campaigns`.")
        .ok::<MyPrograms>(200, "The campaigns, newest first.")
}

/// `GET /me/programs` (alias `/me/campaigns`)
pub async fn mine(ctx: Ctx) -> Result<Reply, ApiError> {
    let s = ctx.schema()?;
    let view = |r: &Row, source: Option<String>| MyProgram {
        id: r.get("id"),
        name: r.get("name"),
        destination_url: r.get("destination_url"),
        deep_link_allowed_domains: r.get("deep_link_allowed_domains"),
        starts_at: r
            .get::<_, Option<DateTime<Utc>>>("starts_at")
            .map(Timestamp),
        ends_at: r.get::<_, Option<DateTime<Utc>>>("ends_at").map(Timestamp),
        source,
        terms: None,
    };
    let data: Vec<MyProgram> = match &ctx.principal {
        Principal::Partner { partner_id, .. } => {
            let now = Utc::now();
            let rows = ctx
                .read(
                    &format!(
                        "SELECT c.id, c.name, c.destination_url, c.deep_link_allowed_domains, c.starts_at, c.ends_at,
                                CASE WHEN g.partner_id IS NOT NULL THEN g.source ELSE '{IMPLICIT_SOURCE}' END AS source
                           FROM {s}.partners p
                           JOIN {s}.campaigns c ON (c.starts_at IS NULL OR c.starts_at <= $2)
                                               AND (c.ends_at IS NULL OR c.ends_at > $2)
                           LEFT JOIN {s}.partner_programs g ON g.partner_id = p.id AND g.campaign_id = c.id
                          WHERE p.id = $1 AND {REACHES}
                          ORDER BY c.created_at DESC, c.id DESC"
                    ),
                    &[partner_id, &now],
                )
                .await?;
            let ids: Vec<String> = rows.iter().map(|r| r.get("id")).collect();
            let mut terms = crate::terms::in_force_now(&ctx, partner_id, &ids).await?;
            rows.iter()
                .map(|r| {
                    let mut p = view(r, Some(r.get("source")));
                    p.terms = terms.remove(&p.id);
                    p
                })
                .collect()
        }
        _ => ctx
            .read(
                &format!(
                    "SELECT id, name, destination_url, deep_link_allowed_domains, starts_at, ends_at
                       FROM {s}.campaigns ORDER BY created_at DESC, id DESC"
                ),
                &[],
            )
            .await?
            .iter()
            .map(|r| view(r, None))
            .collect(),
    };
    Ok(Reply::typed(
        200,
        &MyPrograms {
            programs: data.clone(),
            campaigns: data.clone(),
            data,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_lists_agree_and_are_canonical() {
        let v = |s: &[&str]| Some(s.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(pick_ids(v(&["a"]), v(&["b"])).is_err());
        assert_eq!(
            pick_ids(v(&["a"]), v(&["a"])).unwrap().unwrap().0,
            "campaignIds"
        );
        assert_eq!(pick_ids(None, v(&[])).unwrap().unwrap().0, "programIds");
        assert!(pick_ids(None, None).unwrap().is_none());
        let id = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
        let (ids, bad) = canonical(
            "campaignIds",
            &[id.to_lowercase(), id.to_string(), "nope".into()],
        )
        .unwrap();
        assert_eq!(ids, vec![id.to_string()]);
        assert_eq!(bad, vec!["nope".to_string()]);
        assert!(canonical("campaignIds", &vec![id.to_string(); 501]).is_err());
    }
}
