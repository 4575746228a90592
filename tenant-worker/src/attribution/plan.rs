//! Planning an event's rows: from an attribution [`Outcome`] to the attribution and
//! commission rows to write ([`Plan`]), and the reply built from them.
//!
//! No I/O (the row ids are generated here, the time is passed in), kept apart from the SQL
//! in [`super::store`], so that a batch can be planned — and each caller's reply serialized —
//! before its turn to write, and the reply stored with the event is exactly the one sent.

use super::{Candidate, Model, Outcome};
use crate::reporting::rollups::{Counted, Deltas, Touch};
use crate::{commissions::pricing::PricedEvent, context::ts, money::Currency};
use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;
use serde_json::{json, Number, Value};
use std::str::FromStr;

/// The facts of one conversion event that attribution needs.
#[derive(Debug, Clone)]
pub struct EventFacts {
    /// Server id, `evt_<ulid>`.
    pub id: String,
    /// The client's id (or `id` when none was given).
    pub event_id: String,
    pub user_id: String,
    pub kind: String,
    pub value: Option<Decimal>,
    pub currency: Currency,
    pub ts: DateTime<Utc>,
}

impl EventFacts {
    /// The event as the reporting rollups count it.
    pub fn counted(&self) -> Counted<'_> {
        Counted {
            kind: &self.kind,
            value: self.value,
            currency: self.currency.code(),
            ts: self.ts,
            user: &self.user_id,
        }
    }
}

/// After `plan` is written, a campaign it paid is no longer "first" for the user's later
/// events (the recurring rule applies to them), and the event counts as an attributed event
/// of its type for each (campaign, partner) it credits (`first`/`subsequent` sub-rules).
pub fn mark_paid(candidates: &mut [Candidate], event: &EventFacts, plan: &Plan) {
    for c in plan.commissions.iter().filter(|c| c.amount > Decimal::ZERO) {
        for cand in candidates
            .iter_mut()
            .filter(|x| x.campaign_id == c.campaign_id)
        {
            cand.paid_before = true;
        }
    }
    for a in &plan.attributions {
        for cand in candidates
            .iter_mut()
            .filter(|x| x.campaign_id == a.campaign_id && x.partner_id == a.partner_id)
        {
            cand.firsts.record(&event.kind, event.ts);
        }
    }
}

/// One attribution row to write.
#[derive(Debug, Clone)]
pub struct PlannedAttribution {
    pub id: String,
    pub model: Model,
    pub click_id: String,
    /// The click's link (not written: reporting's rollups count by it).
    pub link_id: String,
    pub partner_id: String,
    pub campaign_id: String,
    pub weight: Decimal,
}

/// One commission row to write (always `accrued` when planned).
#[derive(Debug, Clone)]
pub struct PlannedCommission {
    pub id: String,
    pub attribution: usize,
    /// The index of the sub-rule that priced it in its rule set.
    pub rule_index: usize,
    pub partner_id: String,
    pub campaign_id: String,
    pub amount: Decimal,
    pub currency: Currency,
    pub holdback_days: i32,
    pub accrued_at: DateTime<Utc>,
    pub mature_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub attributions: Vec<PlannedAttribution>,
    pub commissions: Vec<PlannedCommission>,
    /// The `(campaign, partner, type)` keys ("" for any type) this event is the first
    /// attributed event of, among those its rules ask about (rows of `first_events`).
    pub firsts: Vec<(String, String, String)>,
}

impl Plan {
    /// Turns an outcome into rows (ids generated here, so the reply can be built before writing).
    pub fn new(event: &EventFacts, outcome: &Outcome, now: DateTime<Utc>) -> Plan {
        let Outcome::Attributed { model, touches } = outcome else {
            return Plan::default();
        };
        let priced = PricedEvent {
            kind: &event.kind,
            value: event.value,
            currency: event.currency,
            ts: event.ts,
        };
        let amounts = super::split(touches, &priced);
        let mut plan = Plan::default();
        for (i, (t, priced)) in touches.iter().zip(amounts).enumerate() {
            plan.attributions.push(PlannedAttribution {
                id: ulid::Ulid::new().to_string(),
                model: *model,
                click_id: t.candidate.click_id.clone(),
                link_id: t.candidate.link_id.clone(),
                partner_id: t.candidate.partner_id.clone(),
                campaign_id: t.candidate.campaign_id.clone(),
                weight: t.weight,
            });
            for t_kind in t.candidate.rule.history_types() {
                let first = match t_kind {
                    Some(k) => (k == event.kind && t.candidate.firsts.is_first(k)).then_some(k),
                    None => t.candidate.firsts.any.is_none().then_some(""),
                };
                let Some(k) = first else { continue };
                let key = (
                    t.candidate.campaign_id.clone(),
                    t.candidate.partner_id.clone(),
                    k.to_string(),
                );
                if !plan.firsts.contains(&key) {
                    plan.firsts.push(key);
                }
            }
            for p in priced {
                plan.commissions.push(PlannedCommission {
                    id: ulid::Ulid::new().to_string(),
                    attribution: i,
                    rule_index: p.rule_index,
                    partner_id: t.candidate.partner_id.clone(),
                    campaign_id: t.candidate.campaign_id.clone(),
                    amount: p.amount,
                    currency: p.currency,
                    holdback_days: t.candidate.holdback_days,
                    accrued_at: now,
                    mature_at: now + Duration::days(i64::from(t.candidate.holdback_days)),
                });
            }
        }
        plan
    }

    /// Adds to `deltas` what writing this plan for `event` changes in the reporting rollups
    /// (`refunded`: the event's refunds so far): its attributions and its new commissions.
    pub fn count(&self, event: &EventFacts, refunded: Option<Decimal>, deltas: &mut Deltas) {
        let touches: Vec<Touch> = self
            .attributions
            .iter()
            .map(|a| Touch {
                partner: a.partner_id.clone(),
                link: a.link_id.clone(),
                campaign: a.campaign_id.clone(),
                weight: a.weight,
            })
            .collect();
        deltas.event(&event.counted(), &touches, refunded, 1);
        for c in &self.commissions {
            deltas.commission(
                &c.partner_id,
                c.accrued_at,
                &c.campaign_id,
                c.currency.code(),
                "accrued",
                c.amount,
            );
        }
    }

    /// The reply of `POST /attribution/events` (stored with the event for idempotent replays).
    pub fn reply(&self, event: &EventFacts, outcome: &Outcome) -> Vec<u8> {
        let touches = self
            .attributions
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let mine = || self.commissions.iter().filter(move |c| c.attribution == i);
                let commission = mine().next();
                TouchReply {
                    amount: commission.map(|c| c.currency.format(c.amount)),
                    attribution_id: &a.id,
                    campaign_id: &a.campaign_id,
                    click_id: &a.click_id,
                    commission_id: commission.map(|c| c.id.as_str()),
                    commissions: mine()
                        .map(|c| CommissionReply {
                            amount: c.currency.format(c.amount),
                            commission_id: &c.id,
                            currency: c.currency.code(),
                            rule_index: c.rule_index,
                        })
                        .collect(),
                    currency: commission.map(|c| c.currency.code()),
                    partner_id: &a.partner_id,
                    weight: weight_json(a.weight),
                }
            })
            .collect();
        let model = match outcome {
            Outcome::Attributed { model, .. } => Some(model.as_str()),
            _ => None,
        };
        let reply = EventReply {
            attribution: AttributionReply {
                model,
                status: outcome.status(),
                touches,
            },
            event_id: &event.event_id,
            id: &event.id,
            ok: true,
        };
        serde_json::to_vec(&reply).unwrap_or_default()
    }
}

fn weight_json(w: Decimal) -> Value {
    Number::from_str(&w.normalize().to_string()).map_or(Value::Null, Value::Number)
}

pub fn attribution_json(event: &EventFacts, a: &PlannedAttribution) -> Value {
    json!({
        "id": a.id,
        "eventId": event.event_id,
        "model": a.model.as_str(),
        "clickId": a.click_id,
        "partnerId": a.partner_id,
        "campaignId": a.campaign_id,
        "programId": a.campaign_id,
        "weight": weight_json(a.weight),
    })
}

pub fn commission_json(event: &EventFacts, plan: &Plan, c: &PlannedCommission) -> Value {
    json!({
        "id": c.id,
        "attributionId": plan.attributions[c.attribution].id,
        "eventId": event.event_id,
        "partnerId": c.partner_id,
        "campaignId": c.campaign_id,
        "programId": c.campaign_id,
        "amount": c.currency.format(c.amount),
        "currency": c.currency.code(),
        "status": "accrued",
        "holdbackDays": c.holdback_days,
        "accruedAt": ts(c.accrued_at),
        "matureAt": ts(c.mature_at),
        "approvedAt": null,
        "paidAt": null,
        "reversedAt": null,
        "payoutId": null,
        "refundOf": null,
        "ruleIndex": c.rule_index,
    })
}

// The reply to a new event, serialized once: stored with the event (replays read it back)
// and sent. Fields in alphabetical order, the order of a reply read back from the database.

/// The answer to a conversion event (not a refund).
#[derive(Serialize, JsonSchema)]
pub struct EventReply<'a> {
    attribution: AttributionReply<'a>,
    /// The client's `eventId`, or `id` when none was given.
    #[serde(rename = "eventId")]
    event_id: &'a str,
    /// The server's id of the event (`evt_<ulid>`).
    id: &'a str,
    ok: bool,
}

/// Who the event is credited to.
#[derive(Serialize, JsonSchema)]
struct AttributionReply<'a> {
    /// The attribution model (that of the most recent eligible click's campaign); null
    /// unless `attributed`.
    #[schemars(schema_with = "model_or_null")]
    model: Option<&'static str>,
    /// `attributed`; else why not: `no_identity` (the user was never identified),
    /// `no_click` (none of the user's clicks can earn credit) or `outside_window` (none falls
    /// within its campaign's attribution window before the event).
    #[schemars(schema_with = "outcome")]
    status: &'static str,
    /// One per credited click, in time order; empty unless `attributed`.
    touches: Vec<TouchReply<'a>>,
}

/// One credited click.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct TouchReply<'a> {
    /// The touch's (first) commission (exact decimal string); null when the touch earns none.
    #[schemars(schema_with = "decimal_or_null")]
    amount: Option<String>,
    attribution_id: &'a str,
    campaign_id: &'a str,
    click_id: &'a str,
    /// Null when the touch earns no commission; its first commission's otherwise.
    commission_id: Option<&'a str>,
    /// Every commission of the touch: one per applying sub-rule of a compound rule, in
    /// `ruleIndex` order (`amount`, `commissionId` and `currency` above are the first's).
    commissions: Vec<CommissionReply<'a>>,
    /// ISO 4217 code of `amount`; null when the touch earns no commission.
    currency: Option<&'a str>,
    partner_id: &'a str,
    /// The touch's share of the credit; the weights of an event sum to 1.
    #[schemars(schema_with = "weight")]
    weight: Value,
}

/// One commission of a touch.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct CommissionReply<'a> {
    /// Exact decimal string.
    #[schemars(regex(pattern = "^[0-9]+(\\.[0-9]+)?$"))]
    amount: String,
    commission_id: &'a str,
    /// ISO 4217.
    currency: &'a str,
    /// The index of the sub-rule that priced it (0 for a single rule).
    rule_index: usize,
}

fn model_or_null(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": ["string", "null"], "enum": ["last_click", "first_click", "linear", "position", null]})
}

fn outcome(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "enum": ["attributed", "no_identity", "no_click", "outside_window"]})
}

/// An exact decimal amount as the API writes it (`"12.50"`, `"-3.00"`, `"1000"`), or null.
pub fn decimal_or_null(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": ["string", "null"], "pattern": "^-?[0-9]+(\\.[0-9]+)?$"})
}

fn weight(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "number", "minimum": 0, "maximum": 1})
}
