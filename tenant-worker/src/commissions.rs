//! Commissions: how an attributed event is priced (the campaign's [`CommissionRule`]) and
//! the ledger rows that result. The commission API and state machine come with the ledger
//! issue; this module owns the pricing and the row shape.

use crate::{
    context::{ts, ts_opt},
    error::ApiError,
    money::{parse_decimal, Currency},
};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio_postgres::Row;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pricing {
    /// Percent of the event's value (0–100).
    Percent(Decimal),
    /// A fixed amount per event, in its own currency.
    Fixed { amount: Decimal, currency: Currency },
}

/// A campaign's commission rule. `recurring: false` pays only on a user's first paying
/// event for the campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommissionRule {
    pub pricing: Pricing,
    pub recurring: bool,
}

impl CommissionRule {
    /// `{"type":"percent","value":"20","recurring":true}` or
    /// `{"type":"fixed","value":"50.00","currency":"USD"}`; numbers or strings; a
    /// one-element array of such a rule is accepted (the original's wire form).
    pub fn parse(v: &Value) -> Result<CommissionRule, ApiError> {
        let bad = |why: &str| {
            ApiError::invalid_body(format!("commissionRule {why}")).with("field", "commissionRule")
        };
        let obj = match v {
            Value::Array(items) if items.len() == 1 => &items[0],
            Value::Array(_) => {
                return Err(bad(
                    "must be one rule (compound rules are not supported yet)",
                ))
            }
            other => other,
        };
        let Value::Object(map) = obj else {
            return Err(bad("must be an object"));
        };
        for k in map.keys() {
            if !["type", "value", "currency", "recurring"].contains(&k.as_str()) {
                return Err(bad(&format!(
                    "has an unknown field `{}`",
                    crate::context::truncate(k, 32)
                )));
            }
        }
        let recurring = match map.get("recurring") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad("recurring must be a boolean")),
        };
        let value = map.get("value").ok_or_else(|| bad("needs a value"))?;
        let pricing = match map.get("type").and_then(Value::as_str) {
            Some("percent") => {
                let pct = parse_decimal(value, "commissionRule.value")?.normalize();
                if pct.is_sign_negative() || pct > Decimal::ONE_HUNDRED || pct.scale() > 4 {
                    return Err(ApiError::new(
                        400,
                        "invalid_amount",
                        "a percent rule's value must be 0 to 100 with at most 4 decimals",
                    )
                    .with("field", "commissionRule.value"));
                }
                Pricing::Percent(pct)
            }
            Some("fixed") => {
                let code = map
                    .get("currency")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("of type fixed needs a currency"))?;
                let currency = Currency::parse(code)?;
                let amount = crate::money::parse_amount(value, &currency, "commissionRule.value")?;
                Pricing::Fixed { amount, currency }
            }
            _ => return Err(bad("type must be `percent` or `fixed`")),
        };
        Ok(CommissionRule { pricing, recurring })
    }

    pub fn to_json(&self) -> Value {
        match &self.pricing {
            Pricing::Percent(p) => {
                json!({"type": "percent", "value": p.normalize().to_string(), "recurring": self.recurring})
            }
            Pricing::Fixed { amount, currency } => json!({
                "type": "fixed",
                "value": currency.format(*amount),
                "currency": currency.code(),
                "recurring": self.recurring,
            }),
        }
    }

    /// The undivided, unrounded commission for an event, in the commission's currency.
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

pub const COLUMNS: &str = "id, attribution_id, event_id, client_event_id, partner_id, campaign_id, amount, currency, status, holdback_days, accrued_at, mature_at, approved_at, paid_at, reversed_at, payout_id, refund_of, adjusts_commission_id";

/// The API shape of a commission row.
pub fn to_json(row: &Row) -> Value {
    let currency: String = row.get("currency");
    let amount: Decimal = row.get("amount");
    let amount = Currency::parse(&currency).map_or(amount.to_string(), |c| c.format(amount));
    json!({
        "id": row.get::<_, String>("id"),
        "attributionId": row.get::<_, Option<String>>("attribution_id"),
        "eventId": row.get::<_, String>("client_event_id"),
        "partnerId": row.get::<_, String>("partner_id"),
        "campaignId": row.get::<_, String>("campaign_id"),
        "programId": row.get::<_, String>("campaign_id"),
        "amount": amount,
        "currency": currency,
        "status": row.get::<_, String>("status"),
        "holdbackDays": row.get::<_, i32>("holdback_days"),
        "accruedAt": ts(row.get("accrued_at")),
        "matureAt": ts(row.get("mature_at")),
        "approvedAt": ts_opt(row.get("approved_at")),
        "paidAt": ts_opt(row.get("paid_at")),
        "reversedAt": ts_opt(row.get("reversed_at")),
        "payoutId": row.get::<_, Option<String>>("payout_id"),
        "refundOf": row.get::<_, Option<String>>("refund_of"),
        "adjustsCommissionId": row.get::<_, Option<String>>("adjusts_commission_id"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_rule_shapes() {
        let r = CommissionRule::parse(&json!({"type": "percent", "value": "20"})).unwrap();
        assert!(r.recurring);
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
    fn pricing() {
        let usd = Currency::parse("USD").unwrap();
        let pct = CommissionRule::parse(&json!({"type": "percent", "value": "12.5"})).unwrap();
        assert_eq!(
            pct.price(Some(Decimal::new(9999, 2)), usd).0,
            Decimal::new(12498750, 6)
        );
        assert_eq!(pct.price(None, usd).0, Decimal::ZERO);
        let fixed =
            CommissionRule::parse(&json!({"type": "fixed", "value": "1000", "currency": "JPY"}))
                .unwrap();
        let (amt, cur) = fixed.price(Some(Decimal::ONE), usd);
        assert_eq!((amt, cur.code()), (Decimal::new(1000, 0), "JPY"));
    }
}
