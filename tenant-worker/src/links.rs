//! Links: a partner's tracking key for one campaign, what the click router resolves.
//!
//! A link is immutable once created: its key, partner, campaign and destination override
//! never change, so a key shared in the wild always means the same thing. Whether clicks on
//! it count (partner revoked?) and where it sends people (the campaign's destination, unless
//! overridden) are decided at click time from the live partner and campaign rows.

use crate::{
    access::Principal,
    campaigns::{host_allowed, parse_http_url},
    context::{parse_id, truncate, Ctx, Reply, Timestamp},
    error::{ApiError, ErrorCode},
    grants,
    openapi::Op,
    pagination::{rows_body, PageRequest},
    schedule,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_postgres::Row;

pub const COLUMNS: &str = "id, link_key, partner_id, campaign_id, destination_url, created_at";

/// A link, as the API shows it.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkView {
    id: String,
    /// The key in the link's URL (`/r/<slug>/<linkKey>`), unique per tenant.
    link_key: String,
    partner_id: String,
    campaign_id: String,
    /// The same as `campaignId` (the original's later name).
    program_id: String,
    /// The deep link that overrides the campaign's destination, or null.
    destination_url: Option<String>,
    created_at: Timestamp,
}

impl LinkView {
    /// A row of [`COLUMNS`].
    pub fn from_row(row: &Row) -> LinkView {
        let campaign: String = row.get("campaign_id");
        LinkView {
            id: row.get("id"),
            link_key: row.get("link_key"),
            partner_id: row.get("partner_id"),
            campaign_id: campaign.clone(),
            program_id: campaign,
            destination_url: row.get("destination_url"),
            created_at: Timestamp(row.get("created_at")),
        }
    }
}

pub fn to_json(row: &Row) -> Value {
    serde_json::to_value(LinkView::from_row(row)).unwrap_or_default()
}

pub fn create_doc() -> Op {
    Op::new("Create a link")
        .describe("A partner's tracking link for one campaign; immutable once made. A `destinationUrl` override must be an http(s) URL on one of the campaign's `deepLinkAllowedDomains`.")
        .body::<CreateLink>()
        .ok::<LinkView>(201, "The new link.")
        .errors(400, &[ErrorCode::DestinationOverrideNotAllowed])
        .errors(403, &[ErrorCode::CampaignNotGranted])
        .errors(404, &[ErrorCode::NotFound])
        .errors(
            409,
            &[
                ErrorCode::PartnerRevoked,
                ErrorCode::LinkKeyTaken,
                ErrorCode::CampaignNotActive,
            ],
        )
}

pub fn list_doc() -> Op {
    Op::new("List a partner's links")
        .query(
            "campaignId",
            "Only the links of this campaign.",
            json!({"type": "string", "pattern": ULID_PATTERN}),
        )
        .query(
            "programId",
            "The same as `campaignId` (the original's later name); `campaignId` wins if both are given.",
            json!({"type": "string", "pattern": ULID_PATTERN}),
        )
        .page::<LinkView>("links")
        .errors(404, &[ErrorCode::NotFound])
}

/// A ULID: 26 characters of Crockford's base32 (what `ulid::Ulid::from_string` accepts).
const ULID_PATTERN: &str = "^[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$";

/// `^[A-Za-z0-9_-]{3,64}$`: safe in a URL path segment as is.
pub fn valid_link_key(k: &str) -> bool {
    (3..=64).contains(&k.len())
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateLink {
    /// The key in the link's URL, unique per tenant.
    #[schemars(regex(pattern = "^[A-Za-z0-9_-]{3,64}$"))]
    link_key: String,
    /// The campaign (`campaignId` or `programId` is required; both must agree).
    campaign_id: Option<String>,
    /// The same as `campaignId` (the original's later name).
    program_id: Option<String>,
    /// A deep link instead of the campaign's destination: an http(s) URL on one of the
    /// campaign's `deepLinkAllowedDomains` (blank is none).
    destination_url: Option<String>,
}

/// `POST /partners/:id/links {linkKey, campaignId|programId, destinationUrl?}`
pub async fn create(ctx: Ctx) -> Result<Reply, ApiError> {
    let partner_id = ctx.id("partner")?;
    let body: CreateLink = ctx.json()?;
    if !valid_link_key(&body.link_key) {
        return Err(ApiError::invalid_body(
            "linkKey must be 3 to 64 characters of A-Z, a-z, 0-9, `_` and `-`",
        )
        .with("field", "linkKey"));
    }
    let campaign_raw = match (&body.campaign_id, &body.program_id) {
        (Some(c), Some(p)) if c != p => {
            return Err(ApiError::invalid_body(
                "campaignId and programId name the same thing; they must not differ",
            )
            .with("field", "campaignId"))
        }
        (Some(c), _) | (None, Some(c)) => c.clone(),
        (None, None) => {
            return Err(
                ApiError::invalid_body("campaignId (or programId) is required")
                    .with("field", "campaignId"),
            )
        }
    };
    let campaign_id = parse_id(&campaign_raw, "campaign")?;
    // A blank override is no override (forms send empty strings).
    let destination = match body.destination_url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(url::Url::parse(raw).map_err(|_| {
            ApiError::invalid_body("destinationUrl is not an absolute URL")
                .with("field", "destinationUrl")
        })?),
    };

    let tx = ctx.tx().await?;
    // FOR SHARE: a concurrent revoke, grant removal, schedule or allowlist change waits for
    // this link (or we for it).
    let row = tx
        .query_opt(
            &format!(
                "SELECT p.status, c.deep_link_allowed_domains, c.starts_at, c.ends_at, {} AS granted
                   FROM partners p
                   JOIN campaigns c ON c.id = $2
                   LEFT JOIN partner_programs g ON g.partner_id = p.id AND g.campaign_id = c.id
                  WHERE p.id = $1
                    FOR SHARE OF p, c",
                grants::REACHES
            ),
            &[&partner_id, &campaign_id],
        )
        .await?;
    let Some(row) = row else {
        let partner_exists = tx
            .query_opt("SELECT 1 FROM partners WHERE id = $1", &[&partner_id])
            .await?
            .is_some();
        return Err(match partner_exists {
            false => ApiError::no_such("partner", &partner_id),
            true => ApiError::no_such("campaign", &campaign_id),
        });
    };
    if row.get::<_, &str>("status") == "revoked" {
        return Err(ApiError::conflict(
            ErrorCode::PartnerRevoked,
            "the partner is revoked; reinstate them first",
        ));
    }
    // Admins bypass grants; partners and `links:write` keys need one.
    let admin = matches!(ctx.principal, Principal::Admin { .. });
    if !admin && !row.get::<_, bool>("granted") {
        return Err(ApiError::new(
            403,
            ErrorCode::CampaignNotGranted,
            "the partner is not granted this campaign",
        )
        .with("field", "campaignId"));
    }
    schedule::require_active(chrono::Utc::now(), row.get("starts_at"), row.get("ends_at"))?;
    let domains: Vec<String> = row.get("deep_link_allowed_domains");
    let destination = destination
        .map(|url| check_override(url, &domains))
        .transpose()?;

    let id = ulid::Ulid::new().to_string();
    let row = tx
        .query_opt(
            &format!(
                "INSERT INTO links (id, link_key, partner_id, campaign_id, destination_url)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (link_key) DO NOTHING RETURNING {COLUMNS}"
            ),
            &[&id, &body.link_key, &partner_id, &campaign_id, &destination],
        )
        .await?;
    let Some(row) = row else {
        return Err(ApiError::conflict(
            ErrorCode::LinkKeyTaken,
            format!(
                "the link key `{}` is already in use in this tenant",
                truncate(&body.link_key, 64)
            ),
        )
        .with("field", "linkKey"));
    };
    tx.commit().await?;
    Ok(Reply::typed(201, &LinkView::from_row(&row)))
}

/// A deep link must stay on the campaign's allow-listed hosts, so a partner cannot turn the
/// merchant's tracking domain into an open redirect.
fn check_override(url: url::Url, domains: &[String]) -> Result<String, ApiError> {
    let refuse = || {
        ApiError::new(
            400,
            ErrorCode::DestinationOverrideNotAllowed,
            "destinationUrl must be an http(s) URL on one of the campaign's deepLinkAllowedDomains",
        )
        .with("field", "destinationUrl")
        .with("allowedDomains", domains.to_vec())
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse());
    }
    // Same rules as a campaign destination (no credentials, length), then the allowlist.
    let url = parse_http_url(url.as_str(), "destinationUrl")?;
    match url.host_str() {
        Some(host) if host_allowed(host, domains) => Ok(url.to_string()),
        _ => Err(refuse()),
    }
}

/// `GET /partners/:id/links?campaignId=&limit=&cursor=`: newest first, list keys `data`
/// and `links`.
pub async fn list(ctx: Ctx) -> Result<Reply, ApiError> {
    let partner_id = ctx.id("partner")?;
    let page = PageRequest::from_ctx(&ctx)?;
    let campaign = ctx
        .query_value("campaignId")
        .or_else(|| ctx.query_value("programId"));
    if campaign
        .as_deref()
        .is_some_and(|c| ulid::Ulid::from_string(c).is_err() || c.len() != 26)
    {
        return Err(ApiError::invalid_query("campaignId must be a campaign id"));
    }
    // Ids are stored upper case; a ULID may be written in either (as in a body's campaignId).
    let campaign = campaign.map(|c| c.to_ascii_uppercase());
    let (after_t, after_id) = page.after.clone().unzip();

    let tx = ctx.tx().await?;
    let rows = tx
        .query(
            &format!(
                "SELECT {COLUMNS} FROM links
                  WHERE partner_id = $1
                    AND ($2::text IS NULL OR campaign_id = $2)
                    AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::text))
                  ORDER BY created_at DESC, id DESC LIMIT $5"
            ),
            &[&partner_id, &campaign, &after_t, &after_id, &page.fetch()],
        )
        .await?;
    // An empty page of an unknown partner is a 404, not an empty list.
    if rows.is_empty()
        && tx
            .query_opt("SELECT 1 FROM partners WHERE id = $1", &[&partner_id])
            .await?
            .is_none()
    {
        return Err(ApiError::not_found(format!(
            "no partner with id `{partner_id}`"
        )));
    }
    tx.commit().await?;
    Ok(Reply::ok(rows_body(&page, "links", &rows, to_json)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_keys() {
        for ok in ["abc", "A_b-9", &"x".repeat(64)] {
            assert!(valid_link_key(ok), "{ok}");
        }
        for bad in [
            "ab",
            "",
            "a b c",
            "abc/def",
            "ключ",
            "abc.def",
            &"x".repeat(65),
        ] {
            assert!(!valid_link_key(bad), "{bad}");
        }
    }

    #[test]
    fn overrides_stay_on_allowed_hosts() {
        let d = vec!["shop.example".to_string()];
        let url = |s: &str| url::Url::parse(s).unwrap();
        assert_eq!(
            check_override(url("https://sale.shop.example/p?x=1"), &d).unwrap(),
            "https://sale.shop.example/p?x=1"
        );
        for bad in [
            "https://evil.example/",
            "https://shop.example.evil.net/",
            "javascript:alert(1)",
            "ftp://shop.example/",
        ] {
            assert_eq!(
                check_override(url(bad), &d).unwrap_err().code,
                ErrorCode::DestinationOverrideNotAllowed,
                "{bad}"
            );
        }
        assert_eq!(
            check_override(url("https://u:p@shop.example/"), &d)
                .unwrap_err()
                .code,
            ErrorCode::InvalidBody
        );
        assert!(check_override(url("https://shop.example/"), &[]).is_err());
    }
}
