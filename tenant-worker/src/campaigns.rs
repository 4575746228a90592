//! Campaigns (the original later called them programs): where a partner's link sends
//! people, what an attributed event pays ([`CommissionRule`]), which attribution model and
//! window apply, how long commissions are held back, and which hosts partners may deep-link
//! to.
//!
//! Every field is validated and canonicalised on the way in (rule amounts exact to the
//! currency, host names lower-cased), so what is stored is what every reader can trust: the
//! click router and the attribution engine never re-validate.

use crate::{
    attribution::Model,
    commissions::{CommissionRule, CommissionRuleInput, CommissionRuleView},
    context::{truncate, Ctx, Reply, Timestamp},
    error::{ApiError, ErrorCode},
    openapi::Op,
    pagination::{encode_cursor, PageRequest},
    schedule,
    sql::{val, Stmt, Writes},
};
use chrono::{DateTime, Utc};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};
use std::borrow::Cow;
use tokio_postgres::{types::ToSql, Row};

/// Whether the tenant of `schema` has an `autoApprove` campaign — whether the auto-approve
/// job has anything to do there — as a SQL expression: its pass, its batches and the `jobs`
/// safety sweep ask it alike.
pub fn any_auto_approves(schema: &crate::sql::Schema) -> String {
    format!("EXISTS (SELECT 1 FROM {schema}.campaigns WHERE auto_approve)")
}

pub const COLUMNS: &str = "id, name, destination_url, commission_rule, attribution_model, attribution_window_days, holdback_days, deep_link_allowed_domains, auto_approve, created_at, updated_at, grant_to_all_partners, starts_at, ends_at";

pub const DEFAULT_WINDOW_DAYS: i32 = 60;
const MAX_URL_LEN: usize = 2048;
const MAX_DOMAINS: usize = 100;

/// A campaign, as the API shows it.
#[derive(Serialize, JsonSchema, Clone)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "Campaign")]
pub struct CampaignView {
    id: String,
    /// The same as `id` (the original's name for a campaign is a program).
    program_id: String,
    name: String,
    /// Where a partner's link sends people (an absolute http or https URL).
    destination_url: String,
    commission_rule: CommissionRuleView,
    #[schemars(with = "AttributionModel")]
    attribution_model: String,
    /// 1 to 365.
    #[schemars(range(min = 1, max = 365))]
    attribution_window_days: i32,
    /// Days a commission is held back before it can be approved, 0 to 365.
    #[schemars(range(min = 0, max = 365))]
    holdback_days: i32,
    /// Host names (lower case, IDNs in ASCII) a link may deep-link to; each also admits its
    /// subdomains.
    deep_link_allowed_domains: Vec<String>,
    /// Accrued commissions are approved by a worker sweep once their holdback has ended.
    auto_approve: bool,
    created_at: Timestamp,
    updated_at: Timestamp,
    /// Open to every partner (the default) or private: only explicit grants reach it.
    grant_to_all_partners: bool,
    /// Links can be made and clicks earn credit from this time on (null: no start).
    starts_at: Option<Timestamp>,
    /// … and until this time, excluded (null: no end).
    ends_at: Option<Timestamp>,
}

/// How an event's credit is split among the user's clicks.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum AttributionModel {
    LastClick,
    FirstClick,
    Linear,
    Position,
}

/// The API shape of a campaign row ([`COLUMNS`]). The stored rule is canonical (written by
/// [`CommissionRule::to_json`]); one that does not parse is a server fault.
fn view(row: &Row) -> Result<CampaignView, ApiError> {
    let id: String = row.get("id");
    let rule = CommissionRule::parse(&row.get::<_, Value>("commission_rule")).map_err(|e| {
        tracing::error!(campaign = %id, detail = %e.detail, "stored commission rule does not parse");
        ApiError::internal()
    })?;
    Ok(CampaignView {
        program_id: id.clone(),
        id,
        name: row.get("name"),
        destination_url: row.get("destination_url"),
        commission_rule: rule.view(),
        attribution_model: row.get("attribution_model"),
        attribution_window_days: row.get("attribution_window_days"),
        holdback_days: row.get("holdback_days"),
        deep_link_allowed_domains: row.get("deep_link_allowed_domains"),
        auto_approve: row.get("auto_approve"),
        created_at: Timestamp(row.get("created_at")),
        updated_at: Timestamp(row.get("updated_at")),
        grant_to_all_partners: row.get("grant_to_all_partners"),
        starts_at: row
            .get::<_, Option<DateTime<Utc>>>("starts_at")
            .map(Timestamp),
        ends_at: row
            .get::<_, Option<DateTime<Utc>>>("ends_at")
            .map(Timestamp),
    })
}

/// A page of campaigns: `data`, with the original's list keys `campaigns` and `programs`.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct CampaignPage {
    data: Vec<CampaignView>,
    /// The same as `data`.
    campaigns: Vec<CampaignView>,
    /// The same as `data`.
    programs: Vec<CampaignView>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

pub fn create_doc() -> Op {
    Op::new("Create a campaign")
        .describe("`name`, `destinationUrl` and `commissionRule` are required; the other fields default (`last_click`, a 60-day window, no holdback, no deep links, no auto-approve, open to all partners, no `startsAt`/`endsAt`). Also `POST /programs`.")
        .body::<CreateCampaign>()
        .ok::<CampaignView>(201, "The new campaign.")
        .errors(400, crate::commissions::RULE_ERRORS)
}

pub fn list_doc() -> Op {
    Op::new("List campaigns")
        .describe("Newest first. Also `GET /programs`.")
        .query(
            "limit",
            "Items per page, 1 to 500 (default 50).",
            json!({"type": "integer", "minimum": 1, "maximum": crate::pagination::MAX_LIMIT}),
        )
        .query(
            "cursor",
            "The `nextCursor` of the previous page.",
            json!({"type": "string"}),
        )
        .ok::<CampaignPage>(200, "A page, newest first.")
        .errors(400, &[ErrorCode::InvalidQuery, ErrorCode::InvalidCursor])
}

pub fn get_doc() -> Op {
    Op::new("Get a campaign")
        .describe("Also `GET /programs/{id}`.")
        .ok::<CampaignView>(200, "The campaign.")
        .errors(404, &[ErrorCode::NotFound])
}

pub fn update_doc() -> Op {
    Op::new("Change a campaign")
        .describe("Changes only the fields given (an empty body changes nothing); `null` resets an optional field to its default. Existing links keep pointing at the campaign; a new destination applies from the next click. Also `PATCH /programs/{id}`.")
        .optional_body::<Fields>()
        .ok::<CampaignView>(200, "The campaign, as changed.")
        .errors(400, crate::commissions::RULE_ERRORS)
        .errors(404, &[ErrorCode::NotFound])
}

/// An absolute `http(s)` URL without credentials: where a click may send a browser.
/// `field` names the input in the error.
pub fn parse_http_url(raw: &str, field: &str) -> Result<url::Url, ApiError> {
    let bad = |why: &str| ApiError::invalid_body(format!("{field} {why}")).with("field", field);
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > MAX_URL_LEN {
        return Err(bad(&format!(
            "must be a URL of 1 to {MAX_URL_LEN} characters"
        )));
    }
    let url = url::Url::parse(raw).map_err(|_| bad("is not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(bad("must be an http or https URL with a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry credentials"));
    }
    Ok(url)
}

/// One allowlist entry: a host name, lower-cased (IDNs in their ASCII form), without a
/// trailing dot; a leading `*.` is dropped since a domain matches its subdomains anyway.
fn normalize_domain(raw: &str) -> Option<String> {
    let d = raw.trim().trim_end_matches('.');
    let d = d.strip_prefix("*.").unwrap_or(d);
    if d.is_empty() || d.len() > 253 {
        return None;
    }
    let host = url::Host::parse(d).ok()?;
    let url::Host::Domain(ascii) = host else {
        return None; // IP literals have no subdomains; allow-list names only.
    };
    let ok = ascii.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    ok.then_some(ascii)
}

/// `deepLinkAllowedDomains`: an array of host names or one comma-separated string.
fn parse_domains(v: &Value) -> Result<Vec<String>, ApiError> {
    let bad = |why: String| {
        ApiError::invalid_body(format!("deepLinkAllowedDomains {why}"))
            .with("field", "deepLinkAllowedDomains")
    };
    let raw: Vec<&str> = match v {
        Value::Null => vec![],
        Value::String(s) => s.split(',').filter(|p| !p.trim().is_empty()).collect(),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .ok_or_else(|| bad("must be an array of host name strings".into()))
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(bad(
                "must be an array of host names or a comma-separated string".into(),
            ))
        }
    };
    if raw.len() > MAX_DOMAINS {
        return Err(bad(format!("lists more than {MAX_DOMAINS} domains")));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for r in raw {
        let d = normalize_domain(r)
            .ok_or_else(|| bad(format!("has an invalid host name `{}`", truncate(r, 64))))?;
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Ok(out)
}

/// Whether `host` is one of `domains` or a subdomain of one.
pub fn host_allowed(host: &str, domains: &[String]) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    domains.iter().any(|d| {
        host == *d
            || (host.len() > d.len()
                && host.ends_with(d.as_str())
                && host.as_bytes()[host.len() - d.len() - 1] == b'.')
    })
}

fn parse_name(v: &Value) -> Result<String, ApiError> {
    let n = v.as_str().map(str::trim).unwrap_or_default();
    if n.is_empty() || n.chars().count() > 200 || n.chars().any(char::is_control) {
        return Err(
            ApiError::invalid_body("name must be 1 to 200 printable characters")
                .with("field", "name"),
        );
    }
    Ok(n.to_string())
}

fn parse_days(v: &Value, field: &str, min: i64, max: i64) -> Result<i32, ApiError> {
    match v.as_i64() {
        Some(n) if (min..=max).contains(&n) => Ok(n as i32),
        _ => Err(
            ApiError::invalid_body(format!("{field} must be an integer from {min} to {max}"))
                .with("field", field),
        ),
    }
}

fn parse_model(v: &Value) -> Result<Model, ApiError> {
    match v.as_str() {
        Some(s) => Model::parse(s),
        None => Model::parse(""),
    }
}

/// Keeps "present but null" apart from "absent" (`Option<Value>` alone cannot).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

// The writable fields, for create and patch alike. Unknown fields are refused. Its schema is
// the `PATCH` body's (every field optional); [`CreateCampaign`] is the `POST` body's.
/// The fields to change; the others stay as they are. Unknown fields are refused.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "CampaignChanges", transform = no_defaults)]
struct Fields {
    /// 1 to 200 printable characters (trimmed).
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "String", length(min = 1, max = 200))]
    name: Option<Value>,
    /// Where links send people: an absolute http or https URL without credentials, at most
    /// 2,048 characters.
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "String", url, length(min = 1, max = 2048))]
    destination_url: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "CommissionRuleInput")]
    commission_rule: Option<Value>,
    /// Default `last_click` (also when null).
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<AttributionModel>")]
    attribution_model: Option<Value>,
    /// 1 to 365, default 60 (also when null): how long after a click an event is credited.
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<u16>", range(min = 1, max = 365))]
    attribution_window_days: Option<Value>,
    /// 0 to 365, default 0 (also when null): days before a commission can be approved.
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<u16>", range(min = 0, max = 365))]
    holdback_days: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "DomainsInput")]
    deep_link_allowed_domains: Option<Value>,
    /// Default false (also when null): approve accrued commissions automatically once their
    /// holdback has ended (a worker sweep, every `OP_AUTO_APPROVE_INTERVAL_SECS`).
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<bool>")]
    auto_approve: Option<Value>,
    /// Default true (also when null): every partner reaches the campaign; false: only
    /// partners granted it explicitly.
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<bool>")]
    grant_to_all_partners: Option<Value>,
    /// When links can be made and clicks start to earn credit (RFC 3339, 1970 to 9999);
    /// null: no start.
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    starts_at: Option<Value>,
    /// When the campaign ends (excluded; after `startsAt`); null: no end.
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    ends_at: Option<Value>,
}

/// The `POST` body: [`Fields`] with `name`, `destinationUrl` and `commissionRule` required.
struct CreateCampaign;

/// Drops the `default: null` schemars derives from `#[serde(default)]`: "absent" is what
/// a field defaults to here, and `null` is no valid value of the required fields.
fn no_defaults(s: &mut Schema) {
    if let Some(Value::Object(props)) = s.get_mut("properties") {
        for p in props.values_mut() {
            if let Value::Object(p) = p {
                p.remove("default");
            }
        }
    }
}

impl JsonSchema for CreateCampaign {
    fn schema_name() -> Cow<'static, str> {
        "CampaignCreate".into()
    }

    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let mut s = Fields::json_schema(g);
        s.insert(
            "required".into(),
            json!(["name", "destinationUrl", "commissionRule"]),
        );
        s.insert(
            "description".into(),
            json!("A new campaign. Unknown fields are refused."),
        );
        s
    }
}

/// `deepLinkAllowedDomains` on input ([`parse_domains`]).
struct DomainsInput;

impl JsonSchema for DomainsInput {
    fn schema_name() -> Cow<'static, str> {
        "DeepLinkDomainsInput".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "description": "Host names a link may deep-link to (each also admits its subdomains; a leading `*.` is dropped; no IP addresses), at most 100: an array, or one comma-separated string. Null: none.",
            "anyOf": [
                {"type": "array", "maxItems": MAX_DOMAINS, "items": {"type": "string", "format": "hostname"}},
                {"type": "string"},
                {"type": "null"},
            ],
        })
    }
}

/// The validated fields that were given. `null` means "the default" for the optional
/// fields and is refused for the required ones.
#[derive(Default)]
struct Changes {
    name: Option<String>,
    destination_url: Option<String>,
    commission_rule: Option<Value>,
    attribution_model: Option<&'static str>,
    attribution_window_days: Option<i32>,
    holdback_days: Option<i32>,
    deep_link_allowed_domains: Option<Vec<String>>,
    auto_approve: Option<bool>,
    grant_to_all_partners: Option<bool>,
    starts_at: Option<Option<DateTime<Utc>>>,
    ends_at: Option<Option<DateTime<Utc>>>,
}

impl Fields {
    fn validate(self) -> Result<Changes, ApiError> {
        let required = |v: &Option<Value>, field: &str| -> Result<(), ApiError> {
            if matches!(v, Some(Value::Null)) {
                return Err(ApiError::invalid_body(format!("{field} must not be null"))
                    .with("field", field));
            }
            Ok(())
        };
        required(&self.name, "name")?;
        required(&self.destination_url, "destinationUrl")?;
        required(&self.commission_rule, "commissionRule")?;
        let or_default = |v: Option<Value>| v.map(|v| (!v.is_null()).then_some(v));
        Ok(Changes {
            name: self.name.as_ref().map(parse_name).transpose()?,
            destination_url: self
                .destination_url
                .as_ref()
                .map(|v| {
                    let s = v.as_str().ok_or_else(|| {
                        ApiError::invalid_body("destinationUrl must be a string")
                            .with("field", "destinationUrl")
                    })?;
                    parse_http_url(s, "destinationUrl").map(String::from)
                })
                .transpose()?,
            commission_rule: self
                .commission_rule
                .as_ref()
                .map(|v| CommissionRule::parse(v).map(|r| r.to_json()))
                .transpose()?,
            attribution_model: or_default(self.attribution_model)
                .map(|v| {
                    v.map_or(Ok(Model::LastClick), |v| parse_model(&v))
                        .map(Model::as_str)
                })
                .transpose()?,
            attribution_window_days: or_default(self.attribution_window_days)
                .map(|v| {
                    v.map_or(Ok(DEFAULT_WINDOW_DAYS), |v| {
                        parse_days(&v, "attributionWindowDays", 1, 365)
                    })
                })
                .transpose()?,
            holdback_days: or_default(self.holdback_days)
                .map(|v| v.map_or(Ok(0), |v| parse_days(&v, "holdbackDays", 0, 365)))
                .transpose()?,
            deep_link_allowed_domains: self
                .deep_link_allowed_domains
                .as_ref()
                .map(parse_domains)
                .transpose()?,
            auto_approve: or_default(self.auto_approve)
                .map(|v| match v {
                    None => Ok(false),
                    Some(Value::Bool(b)) => Ok(b),
                    Some(_) => Err(ApiError::invalid_body("autoApprove must be a boolean")
                        .with("field", "autoApprove")),
                })
                .transpose()?,
            grant_to_all_partners: or_default(self.grant_to_all_partners)
                .map(|v| {
                    v.map_or(Ok(true), |v| {
                        v.as_bool().ok_or_else(|| {
                            ApiError::invalid_body("grantToAllPartners must be a boolean")
                                .with("field", "grantToAllPartners")
                        })
                    })
                })
                .transpose()?,
            starts_at: self
                .starts_at
                .as_ref()
                .map(|v| schedule::parse_time(v, "startsAt"))
                .transpose()?,
            ends_at: self
                .ends_at
                .as_ref()
                .map(|v| schedule::parse_time(v, "endsAt"))
                .transpose()?,
        })
    }
}

/// `POST /campaigns` (alias `POST /programs`)
pub async fn create(ctx: Ctx) -> Result<Reply, ApiError> {
    let c = ctx.json::<Fields>()?.validate()?;
    let missing = |field: &str| {
        ApiError::invalid_body(format!("{field} is required")).with("field", field.to_string())
    };
    let name = c.name.ok_or_else(|| missing("name"))?;
    let destination = c.destination_url.ok_or_else(|| missing("destinationUrl"))?;
    let rule = c.commission_rule.ok_or_else(|| missing("commissionRule"))?;
    let model = c.attribution_model.unwrap_or(Model::LastClick.as_str());
    let window = c.attribution_window_days.unwrap_or(DEFAULT_WINDOW_DAYS);
    let holdback = c.holdback_days.unwrap_or(0);
    let domains = c.deep_link_allowed_domains.unwrap_or_default();
    let auto_approve = c.auto_approve.unwrap_or(false);
    let open = c.grant_to_all_partners.unwrap_or(true);
    let (starts_at, ends_at) = (c.starts_at.flatten(), c.ends_at.flatten());
    schedule::check_order(starts_at, ends_at)?;
    let id = ulid::Ulid::new().to_string();

    let schema = ctx.schema()?;
    let w = Writes::new(schema);
    w.push(Stmt::new(
        format!(
            "INSERT INTO {schema}.campaigns (id, name, destination_url, commission_rule, attribution_model,
                                             attribution_window_days, holdback_days, deep_link_allowed_domains,
                                             auto_approve, grant_to_all_partners, opened_at, starts_at, ends_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING {COLUMNS}"
        ),
        vec![
            val(id),
            val(name),
            val(destination),
            val(rule),
            val(model),
            val(window),
            val(holdback),
            val(domains),
            val(auto_approve),
            val(open),
            val(open.then(Utc::now)),
            val(starts_at),
            val(ends_at),
        ],
    ));
    let rows = w.commit(&ctx.app.pool).await?;
    let row = rows
        .first()
        .and_then(|r| r.first())
        .ok_or_else(ApiError::internal)?;
    Ok(Reply::typed(201, &view(row)?))
}

/// `GET /campaigns` (alias `GET /programs`): newest first, list keys `data`, `campaigns`
/// and `programs`.
pub async fn list(ctx: Ctx) -> Result<Reply, ApiError> {
    let page = PageRequest::from_ctx(&ctx)?;
    let (after_t, after_id) = page.after.clone().unzip();
    let mut rows = ctx
        .read(
            &format!(
                "SELECT {COLUMNS} FROM {}.campaigns
                  WHERE ($1::timestamptz IS NULL OR (created_at, id) < ($1, $2::text))
                  ORDER BY created_at DESC, id DESC LIMIT $3",
                ctx.schema()?
            ),
            &[&after_t, &after_id, &page.fetch()],
        )
        .await?;
    let more = rows.len() as i64 > page.limit;
    rows.truncate(page.limit as usize);
    let next_cursor = match (more, rows.last()) {
        (true, Some(last)) => Some(encode_cursor(
            last.get::<_, DateTime<Utc>>("created_at"),
            last.get::<_, &str>("id"),
        )),
        _ => None,
    };
    let data = rows.iter().map(view).collect::<Result<Vec<_>, _>>()?;
    Ok(Reply::typed(
        200,
        &CampaignPage {
            campaigns: data.clone(),
            programs: data.clone(),
            data,
            next_cursor,
        },
    ))
}

/// `GET /campaigns/:id` (alias `GET /programs/:id`)
pub async fn get(ctx: Ctx) -> Result<Reply, ApiError> {
    let row = ctx.by_id("campaigns", COLUMNS, "campaign").await?;
    Ok(Reply::typed(200, &view(&row)?))
}

/// `PATCH /campaigns/:id` (alias `PATCH /programs/:id`): changes only the fields given.
/// Existing links keep pointing at the campaign; a new destination applies to the next click.
pub async fn update(ctx: Ctx) -> Result<Reply, ApiError> {
    let id = ctx.id("campaign")?;
    let c = ctx.json::<Fields>()?.validate()?;
    let mut sets: Vec<String> = Vec::new();
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(id.clone())];
    let mut set = |column: &str, value: Box<dyn ToSql + Sync + Send>| {
        params.push(value);
        sets.push(format!("{column} = ${}", params.len()));
    };
    if let Some(v) = c.name {
        set("name", Box::new(v));
    }
    if let Some(v) = c.destination_url {
        set("destination_url", Box::new(v));
    }
    if let Some(v) = c.commission_rule {
        set("commission_rule", Box::new(v));
    }
    if let Some(v) = c.attribution_model {
        set("attribution_model", Box::new(v));
    }
    if let Some(v) = c.attribution_window_days {
        set("attribution_window_days", Box::new(v));
    }
    if let Some(v) = c.holdback_days {
        set("holdback_days", Box::new(v));
    }
    if let Some(v) = c.deep_link_allowed_domains {
        set("deep_link_allowed_domains", Box::new(v));
    }
    if let Some(v) = c.auto_approve {
        set("auto_approve", Box::new(v));
    }
    let tx = ctx.tx().await?;
    if c.starts_at.is_some() || c.ends_at.is_some() || c.grant_to_all_partners.is_some() {
        // The schedule is checked against what is stored; opening a campaign stamps when.
        let now = tx
            .one_or_404(
                "campaign",
                &id,
                "SELECT starts_at, ends_at, grant_to_all_partners FROM campaigns WHERE id = $1 FOR UPDATE",
            )
            .await?;
        let starts_at = c.starts_at.unwrap_or_else(|| now.get("starts_at"));
        let ends_at = c.ends_at.unwrap_or_else(|| now.get("ends_at"));
        schedule::check_order(starts_at, ends_at)?;
        if let Some(v) = c.starts_at {
            set("starts_at", Box::new(v));
        }
        if let Some(v) = c.ends_at {
            set("ends_at", Box::new(v));
        }
        if let Some(open) = c.grant_to_all_partners {
            set("grant_to_all_partners", Box::new(open));
            if open && !now.get::<_, bool>("grant_to_all_partners") {
                set("opened_at", Box::new(Utc::now()));
            }
        }
    }
    let sql = if sets.is_empty() {
        // Nothing to change: answer the campaign as it is, without touching updated_at.
        format!("SELECT {COLUMNS} FROM campaigns WHERE id = $1")
    } else {
        format!(
            "UPDATE campaigns SET {}, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}",
            sets.join(", ")
        )
    };
    let refs: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();

    let row = tx.query_opt(&sql, &refs).await?;
    let row = row.ok_or_else(|| ApiError::no_such("campaign", &id))?;
    tx.commit().await?;
    Ok(Reply::typed(200, &view(&row)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_normalised_and_validated() {
        assert_eq!(
            parse_domains(&json!(" Shop.Example.COM, *.blog.example.com ,,")).unwrap(),
            vec!["shop.example.com", "blog.example.com"]
        );
        assert_eq!(
            parse_domains(&json!(["a.example", "A.example.", "bücher.de"])).unwrap(),
            vec!["a.example", "xn--bcher-kva.de"]
        );
        assert_eq!(parse_domains(&json!(null)).unwrap(), Vec::<String>::new());
        for bad in [
            json!("exa mple.com"),
            json!(["ok.com", 5]),
            json!("http://example.com"),
            json!("example.com/path"),
            json!("-bad.com"),
            json!("127.0.0.1"),
            json!("a..b"),
            json!(5),
        ] {
            assert!(parse_domains(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hosts_match_a_domain_and_its_subdomains_only() {
        let d = vec!["example.com".to_string()];
        assert!(host_allowed("example.com", &d));
        assert!(host_allowed("shop.example.com", &d));
        assert!(host_allowed("a.b.EXAMPLE.com.", &d));
        assert!(!host_allowed("badexample.com", &d));
        assert!(!host_allowed("example.com.evil.net", &d));
        assert!(!host_allowed("com", &d));
        assert!(!host_allowed("anything.org", &[]));
    }

    #[test]
    fn urls_must_be_absolute_http_without_credentials() {
        assert!(parse_http_url("https://shop.example.com/x?y=1#z", "u").is_ok());
        assert!(parse_http_url(" http://localhost:8080 ", "u").is_ok());
        for bad in [
            "",
            "/relative",
            "shop.example.com",
            "javascript:alert(1)",
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "mailto:a@example.com",
        ] {
            assert_eq!(
                parse_http_url(bad, "u").unwrap_err().code,
                crate::error::ErrorCode::InvalidBody,
                "{bad}"
            );
        }
    }

    #[test]
    fn create_fields_distinguish_null_from_absent() {
        let f: Fields = serde_json::from_value(json!({"holdbackDays": null})).unwrap();
        assert_eq!(f.validate().unwrap().holdback_days, Some(0));
        let f: Fields = serde_json::from_value(json!({})).unwrap();
        assert_eq!(f.validate().unwrap().holdback_days, None);
        let f: Fields = serde_json::from_value(json!({"name": null})).unwrap();
        assert!(f.validate().is_err());
        let f: Fields = serde_json::from_value(json!({"holdbackDays": 366})).unwrap();
        assert!(f.validate().is_err());
        let f: Fields = serde_json::from_value(json!({"attributionWindowDays": 1.5})).unwrap();
        assert!(f.validate().is_err());
        assert!(serde_json::from_value::<Fields>(json!({"bogus": 1})).is_err());
    }
}
