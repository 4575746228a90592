//! Partner terms: what one partner earns, for one campaign or for all of them, instead of
//! the campaign's own rule — and [`rule_in_force`], THE function deciding which rule prices
//! a touch.
//!
//! Terms are versioned (`partner_terms`, migrations/tenant/0011): a change never updates a
//! row, it adds a version valid from now on. So a commission is priced once, by the
//! version in force at its event's `ts`, and never re-priced; rederive reads the same
//! history and prices an old event by the version in force at that event's time. Ending
//! the terms (`DELETE`) is a version too, without a rule: from then on the next level
//! applies again.
//!
//! Which rule applies to a touch of (partner, campaign) at time `t`:
//! 1. the partner's latest per-campaign version with `valid_from <= t`, unless it ends them;
//! 2. else the partner's latest all-campaign version with `valid_from <= t`, unless it ends
//!    them;
//! 3. else the campaign's own rule and holdback.
//!
//! A version without `holdbackDays` keeps the campaign's holdback.
//!
//! Routes (admins only): `GET/PUT/DELETE /partners/:id/commission-snapshot` (the original's
//! name: the all-campaign terms) and `GET/PUT/DELETE /partners/:id/terms/:campaignId`.

use crate::{
    commissions::{CommissionRule, CommissionRuleInput, CommissionRuleView},
    context::{parse_id, Acknowledged, Ctx, Reply, Timestamp},
    error::{ApiError, ErrorCode},
    money::{CurrencyCode, DecimalString},
    openapi::Op,
    sql::Tx,
};
use chrono::{DateTime, Utc};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_postgres::Row;

/// One version of a partner's terms, as pricing needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermsVersion {
    /// For one campaign (true) or for all of the partner's campaigns (false).
    pub campaign_specific: bool,
    pub valid_from: DateTime<Utc>,
    /// None: this version ends the terms (the next level applies again).
    pub rule: Option<CommissionRule>,
    /// None: the campaign's holdback.
    pub holdback_days: Option<i32>,
}

/// The rule and holdback that price a touch at `at`: the partner's terms in force then
/// (per-campaign terms beat all-campaign terms), else the campaign's own. `versions` are
/// the partner's versions for this campaign and for all campaigns, in any order (ties of
/// `valid_from`: the one listed first wins).
///
/// This decides only *which* rule applies; how a rule prices an event is
/// [`CommissionRule`]'s business.
pub fn rule_in_force<'a>(
    campaign_rule: &'a CommissionRule,
    campaign_holdback: i32,
    versions: &'a [TermsVersion],
    at: DateTime<Utc>,
) -> (&'a CommissionRule, i32) {
    let latest = |specific: bool| {
        versions
            .iter()
            .filter(|v| v.campaign_specific == specific && v.valid_from <= at)
            .fold(None::<&TermsVersion>, |best, v| match best {
                Some(b) if b.valid_from >= v.valid_from => Some(b),
                _ => Some(v),
            })
    };
    for specific in [true, false] {
        if let Some(TermsVersion {
            rule: Some(rule),
            holdback_days,
            ..
        }) = latest(specific)
        {
            return (rule, holdback_days.unwrap_or(campaign_holdback));
        }
    }
    (campaign_rule, campaign_holdback)
}

/// Whether some version of `versions` pays only a user's first event (the event lane
/// waits for the batch ahead before such a payment; see `attribution::events::Paid`).
pub fn any_first_only(versions: &[TermsVersion]) -> bool {
    versions.iter().any(|v| {
        v.rule
            .as_ref()
            .is_some_and(CommissionRule::has_first_payment)
    })
}

/// The versions of one candidate row, from the arrays the candidate read aggregates
/// (`attribution::store::candidates_for`). A stored rule that does not parse is a server
/// fault.
pub fn versions_from_columns(
    specific: Vec<bool>,
    valid_from: Vec<DateTime<Utc>>,
    rules: Vec<Option<Value>>,
    holdback: Vec<Option<i32>>,
) -> Result<Vec<TermsVersion>, ApiError> {
    specific
        .into_iter()
        .zip(valid_from)
        .zip(rules)
        .zip(holdback)
        .map(|(((campaign_specific, valid_from), rule), holdback_days)| {
            Ok(TermsVersion {
                campaign_specific,
                valid_from,
                rule: rule.as_ref().map(stored_rule).transpose()?,
                holdback_days,
            })
        })
        .collect()
}

fn stored_rule(v: &Value) -> Result<CommissionRule, ApiError> {
    CommissionRule::parse(v).map_err(|e| {
        tracing::error!(detail = %e.detail, "stored partner terms rule does not parse");
        ApiError::internal()
    })
}

// ---------------------------------------------------------------------------------------
// The API.
// ---------------------------------------------------------------------------------------

/// The body of `PUT`: either `commissionType` + `commissionValue` (+ `currency` for fixed
/// terms, `recurring`), or `commissionRules`; and `holdbackDays`. Unknown fields are
/// refused; `null` is the same as leaving a field out.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "PartnerTermsInput", transform = no_defaults)]
struct TermsBody {
    /// `percent` (of the event's value) or `fixed` (per event). Not with `commissionRules`.
    #[serde(default)]
    #[schemars(with = "Option<TermsType>")]
    commission_type: Option<Value>,
    /// A percent from 0 to 100 (at most 4 decimals), or a fixed amount exact to
    /// `currency`. Not with `commissionRules`.
    #[serde(default)]
    #[schemars(schema_with = "value_input")]
    commission_value: Option<Value>,
    /// Fixed terms only: the amount's currency.
    #[serde(default)]
    #[schemars(with = "Option<CurrencyCode>")]
    currency: Option<Value>,
    /// Default true. False: pays only on a user's first paying event for the campaign.
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    recurring: Option<Value>,
    /// 0 to 365; null or absent: the campaign's holdback.
    #[serde(default)]
    #[schemars(with = "Option<u16>", range(min = 0, max = 365))]
    holdback_days: Option<Value>,
    /// The rule in the form of a campaign's `commissionRule` (validated the same way),
    /// instead of `commissionType`/`commissionValue`.
    #[serde(default)]
    #[schemars(with = "Option<CommissionRuleInput>")]
    commission_rules: Option<Value>,
}

#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum TermsType {
    Percent,
    Fixed,
}

fn value_input(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({
        "description": "A percent from 0 to 100 with at most 4 decimals, or a fixed amount exact to `currency`: a JSON number or a decimal string (else `invalid_amount`).",
        "anyOf": [
            {"type": "number", "minimum": 0},
            {"type": "string", "pattern": "^[0-9]{1,16}(\\.[0-9]{1,20})?$"},
            {"type": "null"},
        ],
    })
}

/// Drops the `default: null` schemars derives from `#[serde(default)]`.
fn no_defaults(s: &mut Schema) {
    if let Some(Value::Object(props)) = s.get_mut("properties") {
        for p in props.values_mut() {
            if let Value::Object(p) = p {
                p.remove("default");
            }
        }
    }
}

/// A validated `PUT` body.
struct NewTerms {
    rule: CommissionRule,
    holdback_days: Option<i32>,
    as_rules: bool,
}

/// `field` named in `e` (errors of [`CommissionRule::parse`] name `commissionRule…`).
fn refield(mut e: ApiError, field: impl Into<String>) -> ApiError {
    e.extra.insert("field".into(), Value::String(field.into()));
    e
}

fn given(v: &Option<Value>) -> Option<&Value> {
    v.as_ref().filter(|v| !v.is_null())
}

impl TermsBody {
    fn validate(self) -> Result<NewTerms, ApiError> {
        let bad = |field: &str, why: &str| ApiError::invalid_body(why).with("field", field);
        let holdback_days = match given(&self.holdback_days) {
            None => None,
            Some(v) => match v.as_i64() {
                Some(n) if (0..=365).contains(&n) => Some(n as i32),
                _ => {
                    return Err(bad(
                        "holdbackDays",
                        "holdbackDays must be an integer from 0 to 365",
                    ))
                }
            },
        };
        if let Some(rules) = given(&self.commission_rules) {
            for (name, v) in [
                ("commissionType", &self.commission_type),
                ("commissionValue", &self.commission_value),
                ("currency", &self.currency),
                ("recurring", &self.recurring),
            ] {
                if given(v).is_some() {
                    return Err(bad(
                        name,
                        &format!("{name} cannot be sent with commissionRules (which carries the whole rule)"),
                    ));
                }
            }
            let rule = CommissionRule::parse(rules).map_err(|e| {
                let field = e
                    .extra
                    .get("field")
                    .and_then(Value::as_str)
                    .map_or("commissionRules".to_string(), |f| {
                        f.replacen("commissionRule", "commissionRules", 1)
                    });
                refield(e, field)
            })?;
            return Ok(NewTerms {
                rule,
                holdback_days,
                as_rules: true,
            });
        }
        let kind = match given(&self.commission_type).map(|v| v.as_str()) {
            Some(Some(k @ ("percent" | "fixed"))) => k,
            Some(_) => {
                return Err(bad(
                    "commissionType",
                    "commissionType must be `percent` or `fixed`",
                ))
            }
            None => {
                return Err(bad(
                    "commissionType",
                    "commissionType and commissionValue (or commissionRules) are required",
                ))
            }
        };
        let value = given(&self.commission_value)
            .ok_or_else(|| bad("commissionValue", "commissionValue is required"))?;
        let recurring = match given(&self.recurring) {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad("recurring", "recurring must be a boolean")),
        };
        let mut rule = json!({"type": kind, "value": value, "recurring": recurring});
        match (kind, given(&self.currency)) {
            ("fixed", None) => {
                return Err(bad("currency", "fixed terms need a currency"));
            }
            ("fixed", Some(Value::String(c))) => rule["currency"] = json!(c),
            ("fixed", Some(_)) => {
                return Err(bad("currency", "currency must be an ISO 4217 code"));
            }
            (_, Some(_)) => return Err(bad(
                "currency",
                "currency applies to fixed terms only (a percent is of the event's own currency)",
            )),
            _ => {}
        }
        let rule = CommissionRule::parse(&rule).map_err(|e| {
            let field = match (e.code, e.extra.get("field").and_then(Value::as_str)) {
                (ErrorCode::InvalidCurrency, _) => "currency",
                (_, Some("commissionRule.value")) => "commissionValue",
                _ => "commissionType",
            };
            refield(e, field)
        })?;
        Ok(NewTerms {
            rule,
            holdback_days,
            as_rules: false,
        })
    }
}

/// One version of a partner's terms, in the shape it was written (the original's).
#[derive(Serialize, JsonSchema, Clone)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "PartnerTerms")]
pub struct TermsView {
    /// The campaign the terms are for; null: all of the partner's campaigns.
    campaign_id: Option<String>,
    /// `percent` or `fixed`; null when this version ends the terms (from `validFrom` on,
    /// the next level applies again: the all-campaign terms, else the campaign's own rule).
    #[schemars(with = "Option<TermsType>")]
    commission_type: Option<String>,
    /// The percent, or the fixed amount in `currency`; null when this version ends the terms.
    commission_value: Option<DecimalString>,
    /// Fixed terms: the amount's currency; else null.
    #[schemars(with = "Option<CurrencyCode>")]
    currency: Option<String>,
    /// False: pays only on a user's first paying event for the campaign; null when this
    /// version ends the terms.
    recurring: Option<bool>,
    /// Null: the campaign's holdback.
    holdback_days: Option<i32>,
    /// The rule as a campaign shows it; only on terms written with `commissionRules`.
    #[serde(skip_serializing_if = "Option::is_none")]
    commission_rules: Option<CommissionRuleView>,
    /// `approval`, `backfill`, `amendment` (written through this API) or `import`.
    #[schemars(regex(pattern = "^(approval|backfill|amendment|import)$"))]
    source: String,
    /// In force from this time until the next version's `validFrom`.
    valid_from: Timestamp,
}

/// The versions of a partner's terms for one campaign (or for all of them).
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "PartnerTermsVersions")]
struct TermsList {
    /// The version in force now first (if any), then the others, newest first. Empty: no
    /// terms were ever set (the campaign's own rule applies).
    terms: Vec<TermsView>,
}

const VERSION_COLUMNS: &str = "campaign_id, rule, holdback_days, as_rules, source, valid_from";

fn view(row: &Row) -> Result<TermsView, ApiError> {
    let rule = row
        .get::<_, Option<Value>>("rule")
        .as_ref()
        .map(stored_rule)
        .transpose()?;
    let shown = rule.as_ref().map(CommissionRule::view);
    // A compound rule has no flat form: only `commissionRules` shows it.
    let (kind, value, currency, recurring) = match rule.as_ref().and_then(CommissionRule::flat) {
        Some((kind, value, currency, recurring)) => {
            (Some(kind), Some(value), currency, Some(recurring))
        }
        None => (None, None, None, None),
    };
    Ok(TermsView {
        campaign_id: row.get("campaign_id"),
        commission_type: kind.map(str::to_string),
        commission_value: value,
        currency,
        recurring,
        holdback_days: row.get("holdback_days"),
        commission_rules: shown.filter(|_| row.get::<_, bool>("as_rules")),
        source: row.get("source"),
        valid_from: Timestamp(row.get("valid_from")),
    })
}

/// The terms in force now for `partner` on each of `campaigns` (by campaign id), as
/// [`rule_in_force`] chooses them: the latest per-campaign version, else the latest
/// all-campaign one, a version that ends the terms passing to the next level. Campaigns
/// whose own rule applies are absent. One read of the partner's versions.
pub async fn in_force_now(
    ctx: &Ctx,
    partner: &str,
    campaigns: &[String],
) -> Result<std::collections::HashMap<String, TermsView>, ApiError> {
    let rows = ctx
        .read(
            &format!(
                "SELECT {VERSION_COLUMNS} FROM {}.partner_terms WHERE partner_id = $1
                  ORDER BY valid_from DESC, id DESC",
                ctx.schema()?
            ),
            &[&partner],
        )
        .await?;
    let now = Utc::now();
    // The latest version in force at one level, if it does not end the terms.
    let level = |campaign: Option<&str>| {
        rows.iter()
            .find(|r| {
                r.get::<_, Option<String>>("campaign_id").as_deref() == campaign
                    && r.get::<_, DateTime<Utc>>("valid_from") <= now
            })
            .filter(|r| r.get::<_, Option<Value>>("rule").is_some())
    };
    let mut out = std::collections::HashMap::new();
    for c in campaigns {
        if let Some(row) = level(Some(c)).or_else(|| level(None)) {
            out.insert(c.clone(), view(row)?);
        }
    }
    Ok(out)
}

/// The (partner, campaign?) of a request, checked to exist: `404` otherwise.
async fn target(ctx: &Ctx, tx: &Tx) -> Result<(String, Option<String>), ApiError> {
    let partner = ctx.id("partner")?;
    tx.one_or_404("partner", &partner, "SELECT 1 FROM partners WHERE id = $1")
        .await?;
    let campaign = match ctx.params.iter().any(|(n, _)| *n == "campaignId") {
        false => None,
        true => {
            let c = parse_id(ctx.param("campaignId"), "campaign")?;
            tx.one_or_404("campaign", &c, "SELECT 1 FROM campaigns WHERE id = $1")
                .await?;
            Some(c)
        }
    };
    Ok((partner, campaign))
}

/// Every version for (partner, campaign?), the one in force at `now` first.
async fn versions(
    tx: &Tx,
    partner: &str,
    campaign: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<Row>, ApiError> {
    let rows = match campaign {
        None => {
            tx.query(
                &format!("SELECT {VERSION_COLUMNS} FROM partner_terms WHERE partner_id = $1 AND campaign_id IS NULL
                           ORDER BY valid_from DESC, id DESC"),
                &[&partner],
            )
            .await?
        }
        Some(c) => {
            tx.query(
                &format!("SELECT {VERSION_COLUMNS} FROM partner_terms WHERE partner_id = $1 AND campaign_id = $2
                           ORDER BY valid_from DESC, id DESC"),
                &[&partner, &c],
            )
            .await?
        }
    };
    let mut rows = rows;
    if let Some(i) = rows
        .iter()
        .position(|r| r.get::<_, DateTime<Utc>>("valid_from") <= now)
    {
        let current = rows.remove(i);
        rows.insert(0, current);
    }
    Ok(rows)
}

fn listed(rows: &[Row]) -> Result<Reply, ApiError> {
    let terms = rows.iter().map(view).collect::<Result<Vec<_>, _>>()?;
    Ok(Reply::typed(200, &TermsList { terms }))
}

async fn add_version(
    tx: &Tx,
    partner: &str,
    campaign: Option<&str>,
    rule: Option<Value>,
    holdback_days: Option<i32>,
    as_rules: bool,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    tx.execute(
        "INSERT INTO partner_terms (id, partner_id, campaign_id, rule, holdback_days, as_rules, source, valid_from)
         VALUES ($1, $2, $3, $4, $5, $6, 'amendment', $7)",
        &[
            &ulid::Ulid::new().to_string(),
            &partner,
            &campaign,
            &rule,
            &holdback_days,
            &as_rules,
            &now,
        ],
    )
    .await?;
    Ok(())
}

pub fn get_doc() -> Op {
    Op::new("Get a partner's terms")
        .describe("Every version of the partner's terms — `/commission-snapshot`: for all campaigns; `/terms/{campaignId}`: for that campaign — the one in force now first. Per-campaign terms beat all-campaign terms; without either, the campaign's own rule applies.")
        .ok::<TermsList>(200, "The versions (empty when none were ever set).")
        .errors(404, &[ErrorCode::NotFound])
}

pub fn put_doc() -> Op {
    Op::new("Set a partner's terms")
        .describe("Adds a version valid from now on: events from now on are priced by it (an event with an earlier `ts` by the version in force at its `ts`); existing commissions are never re-priced. `commissionType` + `commissionValue` (+ `currency` for fixed terms), or `commissionRules` — not both. `holdbackDays` absent or null: the campaign's holdback.")
        .body::<TermsBody>()
        .ok::<TermsList>(200, "The stored versions, the new one first.")
        .errors(400, crate::commissions::RULE_ERRORS)
        .errors(404, &[ErrorCode::NotFound])
}

pub fn delete_doc() -> Op {
    Op::new("End a partner's terms")
        .describe("Adds a version ending the terms from now on (the history stays): then the partner's all-campaign terms apply again to a campaign whose own terms were ended, else the campaign's own rule. Terms that are not in force are left as they are (`200` all the same).")
        .ok::<Acknowledged>(200, "Ended (or none were in force).")
        .errors(404, &[ErrorCode::NotFound])
}

/// `GET /partners/:id/commission-snapshot`, `GET /partners/:id/terms/:campaignId`
pub async fn get(ctx: Ctx) -> Result<Reply, ApiError> {
    let tx = ctx.tx().await?;
    let (partner, campaign) = target(&ctx, &tx).await?;
    let rows = versions(&tx, &partner, campaign.as_deref(), Utc::now()).await?;
    tx.commit().await?;
    listed(&rows)
}

/// `PUT /partners/:id/commission-snapshot`, `PUT /partners/:id/terms/:campaignId`
pub async fn put(ctx: Ctx) -> Result<Reply, ApiError> {
    let body = ctx.json::<TermsBody>()?.validate()?;
    let tx = ctx.tx().await?;
    let (partner, campaign) = target(&ctx, &tx).await?;
    let now = Utc::now();
    add_version(
        &tx,
        &partner,
        campaign.as_deref(),
        Some(body.rule.to_json()),
        body.holdback_days,
        body.as_rules,
        now,
    )
    .await?;
    let rows = versions(&tx, &partner, campaign.as_deref(), now).await?;
    tx.commit().await?;
    listed(&rows)
}

/// `DELETE /partners/:id/commission-snapshot`, `DELETE /partners/:id/terms/:campaignId`
pub async fn delete(ctx: Ctx) -> Result<Reply, ApiError> {
    let tx = ctx.tx().await?;
    let (partner, campaign) = target(&ctx, &tx).await?;
    let now = Utc::now();
    let rows = versions(&tx, &partner, campaign.as_deref(), now).await?;
    let in_force = rows.first().is_some_and(|r| {
        r.get::<_, DateTime<Utc>>("valid_from") <= now
            && r.get::<_, Option<Value>>("rule").is_some()
    });
    if in_force {
        add_version(&tx, &partner, campaign.as_deref(), None, None, false, now).await?;
    }
    tx.commit().await?;
    Ok(Reply::typed(200, &Acknowledged { ok: true }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn rule(pct: &str) -> CommissionRule {
        CommissionRule::parse(&json!({"type": "percent", "value": pct})).unwrap()
    }

    fn v(specific: bool, hours: i64, pct: Option<&str>, holdback: Option<i32>) -> TermsVersion {
        TermsVersion {
            campaign_specific: specific,
            valid_from: t0() + Duration::hours(hours),
            rule: pct.map(rule),
            holdback_days: holdback,
        }
    }

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn at(hours: i64) -> DateTime<Utc> {
        t0() + Duration::hours(hours)
    }

    #[test]
    fn the_campaign_rule_applies_without_terms() {
        let own = rule("10");
        assert_eq!(rule_in_force(&own, 7, &[], at(0)), (&own, 7));
    }

    #[test]
    fn the_version_in_force_at_the_event_time_applies() {
        let own = rule("10");
        let vs = [
            v(false, 10, Some("20"), None),
            v(false, 20, Some("30"), Some(3)),
        ];
        assert_eq!(rule_in_force(&own, 7, &vs, at(5)), (&own, 7));
        assert_eq!(rule_in_force(&own, 7, &vs, at(10)), (&rule("20"), 7));
        assert_eq!(rule_in_force(&own, 7, &vs, at(19)), (&rule("20"), 7));
        assert_eq!(rule_in_force(&own, 7, &vs, at(25)), (&rule("30"), 3));
    }

    #[test]
    fn per_campaign_terms_beat_all_campaign_terms_and_ending_falls_back() {
        let own = rule("10");
        let vs = [
            v(false, 0, Some("20"), None),
            v(true, 10, Some("40"), Some(0)),
            v(true, 20, None, None),
            v(false, 30, None, None),
        ];
        assert_eq!(rule_in_force(&own, 7, &vs, at(5)), (&rule("20"), 7));
        assert_eq!(rule_in_force(&own, 7, &vs, at(15)), (&rule("40"), 0));
        // The per-campaign terms ended: the all-campaign terms again.
        assert_eq!(rule_in_force(&own, 7, &vs, at(25)), (&rule("20"), 7));
        // Both ended: the campaign's own.
        assert_eq!(rule_in_force(&own, 7, &vs, at(35)), (&own, 7));
    }

    fn body(v: Value) -> Result<NewTerms, ApiError> {
        serde_json::from_value::<TermsBody>(v)
            .map_err(|e| ApiError::invalid_body(e.to_string()))?
            .validate()
    }

    fn field_of(v: Value) -> String {
        let e = body(v.clone())
            .err()
            .unwrap_or_else(|| panic!("{v} passed"));
        assert!(e.status == 400, "{v}");
        e.extra["field"].as_str().unwrap().to_string()
    }

    #[test]
    fn bodies_are_validated_like_campaign_rules_and_name_their_field() {
        let t = body(json!({"commissionType": "fixed", "commissionValue": 5, "currency": "USD", "holdbackDays": 3})).unwrap();
        assert_eq!(
            t.rule.to_json(),
            json!({"type": "fixed", "value": "5.00", "currency": "USD", "recurring": true})
        );
        assert_eq!((t.holdback_days, t.as_rules), (Some(3), false));
        let t = body(json!({"commissionRules": [{"type": "percent", "value": "12.5"}]})).unwrap();
        assert!(t.as_rules && t.holdback_days.is_none());
        for (bad, field) in [
            (json!({}), "commissionType"),
            (
                json!({"commissionType": "bogus", "commissionValue": 1}),
                "commissionType",
            ),
            (json!({"commissionType": "percent"}), "commissionValue"),
            (
                json!({"commissionType": "percent", "commissionValue": "101"}),
                "commissionValue",
            ),
            (
                json!({"commissionType": "percent", "commissionValue": "-1"}),
                "commissionValue",
            ),
            (
                json!({"commissionType": "fixed", "commissionValue": "1"}),
                "currency",
            ),
            (
                json!({"commissionType": "fixed", "commissionValue": "1.001", "currency": "USD"}),
                "commissionValue",
            ),
            (
                json!({"commissionType": "fixed", "commissionValue": "1", "currency": "XYZ"}),
                "currency",
            ),
            (
                json!({"commissionType": "percent", "commissionValue": "1", "currency": "USD"}),
                "currency",
            ),
            (
                json!({"commissionType": "percent", "commissionValue": "1", "recurring": "no"}),
                "recurring",
            ),
            (
                json!({"commissionType": "percent", "commissionValue": "1", "holdbackDays": 366}),
                "holdbackDays",
            ),
            (
                json!({"commissionRules": {"type": "percent", "value": "1"}, "commissionType": "percent"}),
                "commissionType",
            ),
            (
                json!({"commissionRules": {"type": "percent", "value": "1"}, "commissionValue": 1}),
                "commissionValue",
            ),
            (
                json!({"commissionRules": {"type": "percent", "value": "200"}}),
                "commissionRules.value",
            ),
            (json!({"commissionRules": "20%"}), "commissionRules"),
        ] {
            assert_eq!(field_of(bad.clone()), field, "{bad}");
        }
    }
}
