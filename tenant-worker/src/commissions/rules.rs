//! A commission rule set: what an attributed event pays, as 1–10 sub-rules (spec
//! "Compound commission rules"). The legacy single-rule object is one `every` sub-rule.
//!
//! Parsing validates everything the engine needs, so a rule set that is stored can always
//! be evaluated ([`super::pricing`]); every error names its field
//! (`commissionRule[2].eventType`). The stored form is the API form ([`CommissionRule::view`]):
//! the object while the set is a single `every` sub-rule without `eventType`, the array
//! otherwise; both parse back to the same rule set.

use crate::{
    error::{ApiError, ErrorCode},
    money::{parse_decimal, AmountInput, Currency, CurrencyCode, DecimalString},
};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

/// Most sub-rules in one rule set.
pub const MAX_SUB_RULES: usize = 10;
/// Longest `recurringMonths`.
pub const MAX_RECURRING_MONTHS: u32 = 600;
/// Longest `eventType` (the longest event `type`).
const MAX_EVENT_TYPE: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pricing {
    /// Percent of the event's value (0–100).
    Percent(Decimal),
    /// A fixed amount per event, in its own currency.
    Fixed { amount: Decimal, currency: Currency },
}

/// When a sub-rule applies, within the events of its `eventType` (all events without one)
/// for (campaign, partner, user).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Every event.
    Every,
    /// Only the first attributed event. Without `eventType`: the user's first paying event
    /// for the campaign (the legacy `recurring: false`).
    First,
    /// Every event but the first.
    Subsequent,
}

/// One sub-rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubRule {
    pub trigger: Trigger,
    /// Only events of this type; `None`: every type.
    pub event_type: Option<String>,
    pub pricing: Pricing,
    /// `false` on `every`: behaves like `first`. Always true on `first`/`subsequent`.
    pub recurring: bool,
    /// Only while the event's `ts` is before the anchor (the first event) + this many
    /// calendar months.
    pub recurring_months: Option<u32>,
}

impl SubRule {
    /// Whether it applies only to the first event (of its type, or the first paying one).
    pub fn is_first(&self) -> bool {
        self.trigger == Trigger::First || (self.trigger == Trigger::Every && !self.recurring)
    }

    /// Whether pricing it needs the history of (campaign, partner, user, type): the first
    /// attributed event and its `ts`. (A type-less `first` uses the legacy "paid before".)
    pub fn needs_history(&self) -> bool {
        self.recurring_months.is_some()
            || self.trigger == Trigger::Subsequent
            || (self.is_first() && self.event_type.is_some())
    }

    /// The undivided, unrounded amount for an event, in the commission's currency.
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

/// A campaign's (or a partner's terms') rule set: 1–10 sub-rules, in their stored order
/// (a commission's `ruleIndex` is the index of its sub-rule here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommissionRule {
    pub subs: Vec<SubRule>,
}

impl CommissionRule {
    /// [`CommissionRule::parse_field`] of the `commissionRule` field.
    pub fn parse(v: &Value) -> Result<CommissionRule, ApiError> {
        CommissionRule::parse_field(v, "commissionRule")
    }

    /// One rule object (`{"type":"percent","value":"20","recurring":true}`,
    /// `{"type":"fixed","value":"50.00","currency":"USD"}`; numbers or strings) or an array
    /// of 1–10 of them, each with optional `trigger`, `eventType`, `recurringMonths`.
    /// Errors name their field under `field` (`commissionRule[1].eventType`).
    pub fn parse_field(v: &Value, field: &str) -> Result<CommissionRule, ApiError> {
        let subs = match v {
            Value::Array(items) => {
                if items.is_empty() || items.len() > MAX_SUB_RULES {
                    return Err(invalid_rule(
                        field,
                        format!("{field} must hold 1 to {MAX_SUB_RULES} rules"),
                    ));
                }
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| parse_sub_rule(item, &format!("{field}[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?
            }
            other => vec![parse_sub_rule(other, field)?],
        };
        Ok(CommissionRule { subs })
    }

    /// The event types whose first event the rule set needs (`None`: of any type), each once.
    pub fn history_types(&self) -> Vec<Option<&str>> {
        let mut types: Vec<Option<&str>> = Vec::new();
        for s in self.subs.iter().filter(|s| s.needs_history()) {
            let t = s.event_type.as_deref();
            if !types.contains(&t) {
                types.push(t);
            }
        }
        types
    }

    /// Whether a sub-rule pays only a user's first paying event for the campaign (the
    /// legacy rule: a type-less `first`, or `every` with `recurring: false`).
    pub fn has_first_payment(&self) -> bool {
        self.subs
            .iter()
            .any(|s| s.is_first() && s.event_type.is_none())
    }

    /// The canonical form, as stored and as the API shows it: the object for a single
    /// `every` sub-rule without `eventType`, the array otherwise.
    pub fn view(&self) -> CommissionRuleView {
        match self.subs.as_slice() {
            [one] if one.trigger == Trigger::Every && one.event_type.is_none() => {
                CommissionRuleView::Single(single_view(one))
            }
            subs => CommissionRuleView::Compound(subs.iter().map(sub_view).collect()),
        }
    }

    /// The flat form of the original's per-partner terms (`commissionType`,
    /// `commissionValue`, `currency`, `recurring`): only for a rule shown as the object
    /// (a single `every` rule without `eventType`); `None` for a compound rule.
    pub fn flat(&self) -> Option<(&'static str, DecimalString, Option<String>, bool)> {
        match self.view() {
            CommissionRuleView::Single(v) => Some((
                match v.kind {
                    RuleType::Percent => "percent",
                    RuleType::Fixed => "fixed",
                },
                v.value,
                v.currency,
                v.recurring,
            )),
            CommissionRuleView::Compound(_) => None,
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.view()).unwrap_or_default()
    }
}

fn invalid_rule(field: &str, detail: String) -> ApiError {
    ApiError::new(400, ErrorCode::InvalidRule, detail).with("field", field)
}

fn parse_sub_rule(v: &Value, field: &str) -> Result<SubRule, ApiError> {
    let bad = |key: &str, why: &str| {
        let f = match key {
            "" => field.to_string(),
            k => format!("{field}.{k}"),
        };
        ApiError::invalid_body(format!("{f} {why}")).with("field", f)
    };
    let Value::Object(map) = v else {
        return Err(bad("", "must be an object"));
    };
    for k in map.keys() {
        if ![
            "trigger",
            "eventType",
            "type",
            "value",
            "currency",
            "recurring",
            "recurringMonths",
        ]
        .contains(&k.as_str())
        {
            let k = crate::context::truncate(k, 32);
            return Err(bad(&k, "is not a field of a commission rule"));
        }
    }
    let present = |k: &str| map.get(k).filter(|v| !v.is_null());
    let trigger = match present("trigger") {
        None => Trigger::Every,
        Some(Value::String(s)) if s == "every" => Trigger::Every,
        Some(Value::String(s)) if s == "first" => Trigger::First,
        Some(Value::String(s)) if s == "subsequent" => Trigger::Subsequent,
        Some(_) => {
            return Err(invalid_rule(
                &format!("{field}.trigger"),
                format!("{field}.trigger must be every, first or subsequent"),
            ))
        }
    };
    let event_type = match present("eventType") {
        None => None,
        Some(Value::String(s))
            if !s.trim().is_empty()
                && s.chars().count() <= MAX_EVENT_TYPE
                && !s.chars().any(char::is_control) =>
        {
            Some(s.trim().to_string())
        }
        Some(_) => {
            return Err(bad(
                "eventType",
                "must be a non-empty string of at most 64 characters",
            ))
        }
    };
    let recurring = match present("recurring") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(bad("recurring", "must be a boolean")),
    };
    let recurring_months = match present("recurringMonths") {
        None => None,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(m) if (1..=u64::from(MAX_RECURRING_MONTHS)).contains(&m) => Some(m as u32),
            _ => {
                return Err(invalid_rule(
                    &format!("{field}.recurringMonths"),
                    format!("{field}.recurringMonths must be a whole number from 1 to {MAX_RECURRING_MONTHS}"),
                ))
            }
        },
        Some(_) => {
            return Err(invalid_rule(
                &format!("{field}.recurringMonths"),
                format!("{field}.recurringMonths must be a whole number from 1 to {MAX_RECURRING_MONTHS}"),
            ))
        }
    };
    if recurring_months.is_some() && recurring == Some(false) {
        return Err(invalid_rule(
            &format!("{field}.recurring"),
            format!("{field}.recurringMonths needs recurring (it implies recurring: true)"),
        ));
    }
    if trigger != Trigger::Every && recurring == Some(false) {
        return Err(invalid_rule(
            &format!("{field}.recurring"),
            format!("{field}.recurring: false applies to `every` rules only (use trigger `first`)"),
        ));
    }
    if trigger == Trigger::Subsequent && event_type.is_none() {
        return Err(invalid_rule(
            &format!("{field}.eventType"),
            format!("{field}.eventType is required by a `subsequent` rule"),
        ));
    }
    let value = present("value").ok_or_else(|| bad("value", "is required"))?;
    let value_field = format!("{field}.value");
    let pricing = match map.get("type").and_then(Value::as_str) {
        Some("percent") => {
            if map.contains_key("currency") {
                return Err(invalid_rule(
                    &format!("{field}.currency"),
                    format!("{field}.currency applies to fixed rules only"),
                ));
            }
            let pct = parse_decimal(value, &value_field)?.normalize();
            if pct.is_sign_negative() || pct > Decimal::ONE_HUNDRED || pct.scale() > 4 {
                return Err(ApiError::new(
                    400,
                    ErrorCode::InvalidAmount,
                    format!("{value_field} must be 0 to 100 with at most 4 decimals"),
                )
                .with("field", value_field));
            }
            Pricing::Percent(pct)
        }
        Some("fixed") => {
            let currency_field = format!("{field}.currency");
            let code = match present("currency") {
                Some(Value::String(c)) => c,
                _ => {
                    return Err(bad(
                        "currency",
                        "is required by a fixed rule (an ISO 4217 code)",
                    ))
                }
            };
            let currency =
                Currency::parse(code).map_err(|e| e.with("field", currency_field.as_str()))?;
            let amount = crate::money::parse_amount(value, &currency, &value_field)?;
            Pricing::Fixed { amount, currency }
        }
        _ => return Err(bad("type", "must be `percent` or `fixed`")),
    };
    Ok(SubRule {
        trigger,
        event_type,
        pricing,
        recurring: recurring.unwrap_or(true),
        recurring_months,
    })
}

fn value_of(p: &Pricing) -> (DecimalString, Option<String>) {
    match p {
        Pricing::Percent(p) => (DecimalString(p.normalize().to_string()), None),
        Pricing::Fixed { amount, currency } => (
            DecimalString(currency.format(*amount)),
            Some(currency.code().to_string()),
        ),
    }
}

fn kind_of(p: &Pricing) -> RuleType {
    match p {
        Pricing::Percent(_) => RuleType::Percent,
        Pricing::Fixed { .. } => RuleType::Fixed,
    }
}

fn single_view(s: &SubRule) -> SingleRuleView {
    let (value, currency) = value_of(&s.pricing);
    SingleRuleView {
        kind: kind_of(&s.pricing),
        value,
        currency,
        recurring: s.recurring,
        recurring_months: s.recurring_months,
    }
}

fn sub_view(s: &SubRule) -> SubRuleView {
    let (value, currency) = value_of(&s.pricing);
    SubRuleView {
        trigger: match s.trigger {
            Trigger::Every => TriggerName::Every,
            Trigger::First => TriggerName::First,
            Trigger::Subsequent => TriggerName::Subsequent,
        },
        event_type: s.event_type.clone(),
        kind: kind_of(&s.pricing),
        value,
        currency,
        recurring: s.recurring,
        recurring_months: s.recurring_months,
    }
}

/// A commission rule as stored and shown: the object form while the rule set is a single
/// `every` rule without `eventType`, else the array of its sub-rules (in `ruleIndex` order).
#[derive(Serialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
#[serde(untagged)]
#[schemars(rename = "CommissionRule")]
pub enum CommissionRuleView {
    /// One rule paying on every event (or, with `recurring: false`, on the first only).
    Single(SingleRuleView),
    /// A compound rule: each applying sub-rule makes one commission.
    Compound(Vec<SubRuleView>),
}

/// `percent` or `fixed`.
#[derive(Serialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RuleType {
    Percent,
    Fixed,
}

/// `every`, `first` or `subsequent`.
#[derive(Serialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TriggerName {
    Every,
    First,
    Subsequent,
}

/// The object form of a single rule.
#[derive(Serialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "CommissionRuleObjectView")]
pub struct SingleRuleView {
    #[serde(rename = "type")]
    kind: RuleType,
    /// Percent: 0 to 100, at most 4 decimals (`"12.5"`); fixed: in `currency`, with its
    /// minor-unit decimals (`"50.00"`).
    value: DecimalString,
    /// Fixed rules only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<CurrencyCode>")]
    currency: Option<String>,
    /// False: pays only on a user's first paying event for the campaign.
    recurring: bool,
    /// Pays only while the event is within this many calendar months of the first one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 600))]
    recurring_months: Option<u32>,
}

/// One sub-rule of a compound rule.
#[derive(Serialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "CommissionSubRule")]
pub struct SubRuleView {
    trigger: TriggerName,
    /// Only events of this type; absent: every type.
    #[serde(skip_serializing_if = "Option::is_none")]
    event_type: Option<String>,
    #[serde(rename = "type")]
    kind: RuleType,
    /// Percent: 0 to 100, at most 4 decimals (`"12.5"`); fixed: in `currency`, with its
    /// minor-unit decimals (`"50.00"`).
    value: DecimalString,
    /// Fixed rules only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<CurrencyCode>")]
    currency: Option<String>,
    /// False (on `every` only): pays only the first event.
    recurring: bool,
    /// Pays only while the event is within this many calendar months of the first one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 600))]
    recurring_months: Option<u32>,
}

/// A commission rule on input: one rule object, or an array of 1 to 10 (a compound rule;
/// each applying sub-rule makes one commission). (The schema of what
/// [`CommissionRule::parse`] accepts.)
#[derive(JsonSchema)]
#[schemars(rename = "CommissionRuleInput")]
#[allow(dead_code)]
#[serde(untagged)]
pub enum CommissionRuleInput {
    Rule(RuleInput),
    /// A compound rule: 1 to 10 sub-rules (more → `invalid_rule`).
    Compound(#[schemars(length(min = 1, max = 10))] Vec<RuleInput>),
}

/// One rule object on input. Numbers or strings; an unknown field is refused; a combination
/// the engine cannot evaluate is `invalid_rule`.
#[derive(JsonSchema)]
#[schemars(rename = "CommissionRuleObject")]
#[allow(dead_code)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum RuleInput {
    /// A percent of the event's value.
    #[serde(rename_all = "camelCase")]
    Percent {
        /// 0 to 100, at most 4 decimals (else `invalid_amount`).
        #[schemars(with = "PercentInput")]
        value: Value,
        /// Default `every`. `first`: only the first attributed event of `eventType` for
        /// (campaign, partner, user); without `eventType`, the user's first paying event
        /// for the campaign. `subsequent` (needs `eventType`): every such event but the
        /// first.
        trigger: Option<TriggerName>,
        /// Only events of this type (required by `subsequent`).
        #[schemars(
            length(min = 1, max = 64),
            regex(
                pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
            )
        )]
        event_type: Option<String>,
        /// Default true. False (on `every` only): pays only on the first event.
        recurring: Option<bool>,
        /// 1 to 600: pays only while the event is within this many calendar months of the
        /// first one (implies `recurring: true`; with `recurring: false`, `invalid_rule`).
        #[schemars(range(min = 1, max = 600))]
        recurring_months: Option<u32>,
    },
    /// A fixed amount per event, in its own currency.
    #[serde(rename_all = "camelCase")]
    Fixed {
        #[schemars(with = "AmountInput")]
        value: Value,
        /// Validated (`invalid_currency`).
        #[schemars(with = "CurrencyCode")]
        currency: String,
        /// Default `every`. `first`: only the first attributed event of `eventType` for
        /// (campaign, partner, user); without `eventType`, the user's first paying event
        /// for the campaign. `subsequent` (needs `eventType`): every such event but the
        /// first.
        trigger: Option<TriggerName>,
        /// Only events of this type (required by `subsequent`).
        #[schemars(
            length(min = 1, max = 64),
            regex(
                pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
            )
        )]
        event_type: Option<String>,
        /// Default true. False (on `every` only): pays only on the first event.
        recurring: Option<bool>,
        /// 1 to 600: pays only while the event is within this many calendar months of the
        /// first one (implies `recurring: true`; with `recurring: false`, `invalid_rule`).
        #[schemars(range(min = 1, max = 600))]
        recurring_months: Option<u32>,
    },
}

/// A percent on input: a JSON number or decimal string from 0 to 100, at most 4 decimals.
pub struct PercentInput;

impl JsonSchema for PercentInput {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PercentInput".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A percent from 0 to 100 with at most 4 decimals: a JSON number or a decimal string (else `invalid_amount`).",
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 100},
                {"type": "string", "pattern": "^[0-9]{1,3}(\\.[0-9]{1,4})?$"},
            ],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(v: Value) -> (String, String) {
        let e = CommissionRule::parse(&v).unwrap_err();
        (
            e.code.as_str().to_string(),
            e.extra["field"].as_str().unwrap_or_default().to_string(),
        )
    }

    #[test]
    fn parses_the_documented_rule_shapes() {
        let r = CommissionRule::parse(&json!({"type": "percent", "value": "20"})).unwrap();
        assert!(r.subs[0].recurring);
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
    fn compound_rules_round_trip_in_their_form() {
        let input = json!([
            {"trigger": "first", "eventType": "signup", "type": "fixed", "value": 10, "currency": "EUR"},
            {"trigger": "subsequent", "eventType": "invoice.paid", "type": "percent", "value": "5", "recurringMonths": 12},
            {"type": "percent", "value": 1},
        ]);
        let r = CommissionRule::parse(&input).unwrap();
        let stored = r.to_json();
        assert_eq!(
            stored,
            json!([
                {"trigger": "first", "eventType": "signup", "type": "fixed", "value": "10.00", "currency": "EUR", "recurring": true},
                {"trigger": "subsequent", "eventType": "invoice.paid", "type": "percent", "value": "5", "recurring": true, "recurringMonths": 12},
                {"trigger": "every", "type": "percent", "value": "1", "recurring": true},
            ])
        );
        assert_eq!(CommissionRule::parse(&stored).unwrap(), r, "reads back");
        // A single `every` rule without eventType is shown as the object, whatever its input.
        let one = CommissionRule::parse(
            &json!([{"trigger": "every", "type": "percent", "value": 3, "recurringMonths": 6}]),
        )
        .unwrap();
        assert_eq!(
            one.to_json(),
            json!({"type": "percent", "value": "3", "recurring": true, "recurringMonths": 6})
        );
        assert_eq!(CommissionRule::parse(&one.to_json()).unwrap(), one);
        // A single typed `every` rule stays an array; so does the imported type-less first.
        let typed =
            CommissionRule::parse(&json!([{"eventType": "sale", "type": "percent", "value": 3}]))
                .unwrap();
        assert!(typed.to_json().is_array());
        let first =
            CommissionRule::parse(&json!([{"trigger": "first", "type": "percent", "value": 3}]))
                .unwrap();
        assert!(first.has_first_payment() && first.history_types().is_empty());
        assert!(first.to_json().is_array());
    }

    #[test]
    fn every_error_names_its_field() {
        let cases = [
            (
                json!([{"trigger": "subsequent", "type": "percent", "value": 1}]),
                "invalid_rule",
                "commissionRule[0].eventType",
            ),
            (
                json!([{"type": "percent", "value": 1}, {"type": "percent", "value": 1, "currency": "USD"}]),
                "invalid_rule",
                "commissionRule[1].currency",
            ),
            (
                json!([{"type": "percent", "value": 1, "recurringMonths": 0}]),
                "invalid_rule",
                "commissionRule[0].recurringMonths",
            ),
            (
                json!([{"type": "percent", "value": 1, "recurringMonths": 601}]),
                "invalid_rule",
                "commissionRule[0].recurringMonths",
            ),
            (
                json!([{"type": "percent", "value": 1, "recurringMonths": 1.5}]),
                "invalid_rule",
                "commissionRule[0].recurringMonths",
            ),
            (
                json!([{"type": "percent", "value": 1, "recurringMonths": 3, "recurring": false}]),
                "invalid_rule",
                "commissionRule[0].recurring",
            ),
            (
                json!([{"trigger": "first", "eventType": "x", "type": "percent", "value": 1, "recurring": false}]),
                "invalid_rule",
                "commissionRule[0].recurring",
            ),
            (
                json!([{"trigger": "sometimes", "type": "percent", "value": 1}]),
                "invalid_rule",
                "commissionRule[0].trigger",
            ),
            (
                json!([{"type": "percent", "value": 1}, {"type": "percent", "value": 1, "eventType": ""}]),
                "invalid_body",
                "commissionRule[1].eventType",
            ),
            (
                json!([{"type": "percent", "value": 1}, {"type": "percent", "value": 101}]),
                "invalid_amount",
                "commissionRule[1].value",
            ),
            (
                json!([{"type": "fixed", "value": 1, "currency": "ZZZ"}]),
                "invalid_currency",
                "commissionRule[0].currency",
            ),
            (
                json!([{"type": "fixed", "value": 1}]),
                "invalid_body",
                "commissionRule[0].currency",
            ),
            (
                json!([{"type": "fixed", "value": 1, "currency": "USD", "bogus": 1}]),
                "invalid_body",
                "commissionRule[0].bogus",
            ),
            (
                json!([{"type": "fixed", "currency": "USD"}]),
                "invalid_body",
                "commissionRule[0].value",
            ),
            (
                json!([{"value": 1}]),
                "invalid_body",
                "commissionRule[0].type",
            ),
            (json!([1]), "invalid_body", "commissionRule[0]"),
            (
                json!({"type": "percent", "value": 1, "currency": "USD"}),
                "invalid_rule",
                "commissionRule.currency",
            ),
            (json!([]), "invalid_rule", "commissionRule"),
            (
                Value::Array(vec![json!({"type": "percent", "value": 1}); 11]),
                "invalid_rule",
                "commissionRule",
            ),
        ];
        for (v, code, field) in cases {
            assert_eq!(
                field_of(v.clone()),
                (code.to_string(), field.to_string()),
                "{v}"
            );
        }
        assert!(CommissionRule::parse(&Value::Array(vec![
            json!({"type": "percent", "value": 1});
            10
        ]))
        .is_ok());
    }
}
