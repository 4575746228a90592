//! Pricing an attributed event under a rule set (pure): which sub-rules apply, given the
//! history of (campaign, partner, user), and what each touch earns under each of them.
//!
//! - `every` applies always; with `recurring: false` it behaves like `first`.
//! - `first` applies only to the first attributed event of its `eventType` for (campaign,
//!   partner, user) — the event being priced is first when no earlier one is known
//!   ([`FirstEvents`]). A type-less `first` (the legacy `recurring: false`) means the user's
//!   first paying event for the campaign (`paid_before`).
//! - `subsequent` applies to every such event but the first.
//! - `recurringMonths N`: only while `ts < anchor + N` calendar months, the anchor being the
//!   first event (this one, when it is the first).
//!
//! Amounts: rule × weight, exact, rounded half-even, with the remainder rule per sub-rule:
//! when all touches share one rule set, each sub-rule's per-touch amounts sum exactly to
//! that sub-rule applied to the undivided amount (rounded), and none is negative. A zero
//! amount makes no commission.

use super::rules::{CommissionRule, SubRule, Trigger};
use crate::money::Currency;
use chrono::{DateTime, Months, Utc};
use rust_decimal::Decimal;
use std::collections::HashMap;

/// The first attributed events of (campaign, partner, user) known so far: the earliest
/// `ts` of each event type, and of any type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirstEvents {
    pub any: Option<DateTime<Utc>>,
    pub by_type: HashMap<String, DateTime<Utc>>,
}

impl FirstEvents {
    /// Counts an attributed event, in the order events are processed: the first one counted
    /// stays the first (and the anchor), even if a later one has an earlier `ts`
    /// (programs.md; refunds never come here).
    pub fn record(&mut self, kind: &str, ts: DateTime<Utc>) {
        self.any.get_or_insert(ts);
        self.record_type(kind, ts);
    }

    /// Counts an attributed event of `kind` for its type only.
    pub fn record_type(&mut self, kind: &str, ts: DateTime<Utc>) {
        self.by_type.entry(kind.to_string()).or_insert(ts);
    }

    /// Whether an event of `kind` would be the first (of its type, and of any type).
    pub fn is_first(&self, kind: &str) -> bool {
        !self.by_type.contains_key(kind)
    }
}

/// The event being priced, as pricing sees it.
#[derive(Debug, Clone, Copy)]
pub struct PricedEvent<'a> {
    pub kind: &'a str,
    pub value: Option<Decimal>,
    pub currency: Currency,
    pub ts: DateTime<Utc>,
}

/// What one touch brings to pricing: its rule set, its weight and its history.
#[derive(Debug, Clone, Copy)]
pub struct TouchTerms<'a> {
    pub rule: &'a CommissionRule,
    pub weight: Decimal,
    /// The user has a paying commission for the campaign already (type-less `first`).
    pub paid_before: bool,
    pub firsts: &'a FirstEvents,
}

/// One commission of a touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priced {
    /// The index of the sub-rule in its rule set.
    pub rule_index: usize,
    pub amount: Decimal,
    pub currency: Currency,
}

/// Whether `sub` applies to `event` given the touch's history.
pub fn applies(
    sub: &SubRule,
    event: &PricedEvent,
    paid_before: bool,
    firsts: &FirstEvents,
) -> bool {
    if sub.event_type.as_deref().is_some_and(|t| t != event.kind) {
        return false;
    }
    let anchor = match &sub.event_type {
        Some(t) => firsts.by_type.get(t).copied(),
        None => firsts.any,
    };
    let first = anchor.is_none();
    let triggered = match sub.trigger {
        Trigger::Every if sub.recurring => true,
        _ if sub.is_first() && sub.event_type.is_none() => !paid_before,
        Trigger::Every | Trigger::First => first,
        Trigger::Subsequent => !first,
    };
    triggered && within(sub.recurring_months, anchor.unwrap_or(event.ts), event.ts)
}

/// Whether `ts` is before `anchor` + `months` calendar months (always, without a limit).
fn within(months: Option<u32>, anchor: DateTime<Utc>, ts: DateTime<Utc>) -> bool {
    match months {
        None => true,
        Some(n) => anchor
            .checked_add_months(Months::new(n))
            .is_none_or(|end| ts < end),
    }
}

/// THE pricing entry point: the commissions of each touch of one event (in touch order),
/// each rule set taken as given (which rule set applies to a touch is the caller's choice).
pub fn price(touches: &[TouchTerms], event: &PricedEvent) -> Vec<Vec<Priced>> {
    let shared = touches.windows(2).all(|w| w[0].rule == w[1].rule);
    let mut out: Vec<Vec<Priced>> = vec![Vec::new(); touches.len()];
    if touches.is_empty() {
        return out;
    }
    // Sub-rule by sub-rule, so that each keeps its own remainder.
    let subs = touches.iter().map(|t| t.rule.subs.len()).max().unwrap_or(0);
    for i in 0..subs {
        let amounts: Vec<Option<(Decimal, Currency)>> = if shared {
            let sub = &touches[0].rule.subs[i];
            let (raw, cur) = sub.price(event.value, event.currency);
            let weights: Vec<Decimal> = touches.iter().map(|t| t.weight).collect();
            split_exact(cur.round(raw), &weights, cur)
                .into_iter()
                .map(|a| Some((a, cur)))
                .collect()
        } else {
            touches
                .iter()
                .map(|t| {
                    let sub = t.rule.subs.get(i)?;
                    let (raw, cur) = sub.price(event.value, event.currency);
                    Some((cur.round(raw * t.weight), cur))
                })
                .collect()
        };
        for ((t, amount), priced) in touches.iter().zip(amounts).zip(out.iter_mut()) {
            let Some((amount, currency)) = amount else {
                continue;
            };
            let sub = &t.rule.subs[i];
            if amount > Decimal::ZERO && applies(sub, event, t.paid_before, t.firsts) {
                priced.push(Priced {
                    rule_index: i,
                    amount,
                    currency,
                });
            }
        }
    }
    out
}

/// Splits a rounded `total` by `weights` (summing to 1): each share rounded half-even, the
/// last taking the remainder, so the shares sum exactly to `total`. Should that remainder
/// be negative (many shares all rounded up), the shares are cumulative differences
/// instead (`round(total × w₁…ᵢ) − round(total × w₁…ᵢ₋₁)`): still exact, never negative.
pub fn split_exact(total: Decimal, weights: &[Decimal], cur: Currency) -> Vec<Decimal> {
    let n = weights.len();
    if n == 0 {
        return vec![];
    }
    let mut shares: Vec<Decimal> = weights[..n - 1]
        .iter()
        .map(|w| cur.round(total * *w))
        .collect();
    let given: Decimal = shares.iter().copied().sum();
    if given <= total {
        shares.push(total - given);
        return shares;
    }
    let mut shares = Vec::with_capacity(n);
    let (mut cumulative, mut before) = (Decimal::ZERO, Decimal::ZERO);
    for (i, w) in weights.iter().enumerate() {
        cumulative += *w;
        let upto = match i + 1 == n {
            true => total,
            false => cur.round(total * cumulative).min(total),
        };
        let upto = upto.max(before);
        shares.push(upto - before);
        before = upto;
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn at(day: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("{day}T00:00:00Z"))
            .unwrap()
            .with_timezone(&Utc)
    }

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    fn event<'a>(kind: &'a str, value: &str, ts: DateTime<Utc>) -> PricedEvent<'a> {
        PricedEvent {
            kind,
            value: Some(d(value)),
            currency: usd(),
            ts,
        }
    }

    fn one_touch(
        rule: &CommissionRule,
        paid: bool,
        firsts: &FirstEvents,
        e: &PricedEvent,
    ) -> Vec<(usize, Decimal)> {
        let t = TouchTerms {
            rule,
            weight: Decimal::ONE,
            paid_before: paid,
            firsts,
        };
        price(&[t], e)[0]
            .iter()
            .map(|p| (p.rule_index, p.amount))
            .collect()
    }

    #[test]
    fn triggers_per_event_type() {
        let rule = CommissionRule::parse(&json!([
            {"trigger": "first", "eventType": "sale", "type": "fixed", "value": 10, "currency": "USD"},
            {"trigger": "subsequent", "eventType": "sale", "type": "percent", "value": 10},
            {"type": "percent", "value": 1},
            {"trigger": "every", "eventType": "signup", "type": "fixed", "value": 2, "currency": "USD"},
        ]))
        .unwrap();
        let mut firsts = FirstEvents::default();
        let e1 = event("sale", "100", at("2026-01-31"));
        assert_eq!(
            one_touch(&rule, false, &firsts, &e1),
            vec![(0, d("10.00")), (2, d("1.00"))]
        );
        firsts.record("sale", e1.ts);
        let e2 = event("sale", "50", at("2026-02-01"));
        assert_eq!(
            one_touch(&rule, true, &firsts, &e2),
            vec![(1, d("5.00")), (2, d("0.50"))]
        );
        // Another type: its own first, the `every` rules only.
        let s = event("signup", "0", at("2026-02-02"));
        assert_eq!(one_touch(&rule, true, &firsts, &s), vec![(3, d("2.00"))]);
    }

    #[test]
    fn recurring_months_are_calendar_months_of_the_anchor() {
        let rule = CommissionRule::parse(&json!([
            {"trigger": "every", "eventType": "invoice.paid", "type": "percent", "value": 10, "recurringMonths": 1},
        ]))
        .unwrap();
        let mut firsts = FirstEvents::default();
        let anchor = at("2026-01-31");
        assert_eq!(
            one_touch(&rule, false, &firsts, &event("invoice.paid", "10", anchor)).len(),
            1
        );
        firsts.record("invoice.paid", anchor);
        // Jan 31 + 1 calendar month = Feb 28 (chrono clamps to the month's end).
        let inside = at("2026-02-27");
        let edge = at("2026-02-28");
        assert_eq!(
            one_touch(&rule, true, &firsts, &event("invoice.paid", "10", inside)).len(),
            1
        );
        assert!(one_touch(&rule, true, &firsts, &event("invoice.paid", "10", edge)).is_empty());
        // Events counted after the first never move the anchor, not even one with an
        // earlier `ts` (a late arrival: programs.md, "first" is decided when processed).
        firsts.record("invoice.paid", at("2026-02-10"));
        firsts.record("invoice.paid", at("2026-01-02"));
        assert_eq!(firsts.by_type["invoice.paid"], anchor);
        assert_eq!(firsts.any, Some(anchor));
    }

    #[test]
    fn legacy_non_recurring_is_the_first_paying_event() {
        let rule = CommissionRule::parse(
            &json!({"type": "fixed", "value": 5, "currency": "USD", "recurring": false}),
        )
        .unwrap();
        let firsts = FirstEvents::default();
        let e = event("sale", "10", at("2026-03-01"));
        assert_eq!(one_touch(&rule, false, &firsts, &e), vec![(0, d("5.00"))]);
        assert!(one_touch(&rule, true, &firsts, &e).is_empty());
        // Typed `every` with recurring false behaves like `first` of that type.
        let typed = CommissionRule::parse(&json!([{"eventType": "sale", "type": "fixed", "value": 5, "currency": "USD", "recurring": false}])).unwrap();
        let mut seen = FirstEvents::default();
        assert_eq!(one_touch(&typed, true, &seen, &e).len(), 1);
        seen.record("sale", e.ts);
        assert!(one_touch(&typed, false, &seen, &e).is_empty());
    }

    #[test]
    fn the_remainder_never_goes_negative() {
        // Six linear shares of 0.09 each round up to 0.02: the plain remainder would be -0.01.
        let w = vec![Decimal::ONE / Decimal::from(6); 6];
        let mut w = w;
        let others: Decimal = w[..5].iter().copied().sum();
        w[5] = Decimal::ONE - others;
        let shares = split_exact(d("0.09"), &w, usd());
        assert_eq!(shares.iter().copied().sum::<Decimal>(), d("0.09"));
        assert!(shares.iter().all(|s| *s >= Decimal::ZERO), "{shares:?}");
        // The usual case keeps the usual split: the last takes the remainder.
        let third = Decimal::ONE / Decimal::from(3);
        let w = vec![third, third, Decimal::ONE - third - third];
        assert_eq!(
            split_exact(d("10.00"), &w, usd()),
            vec![d("3.33"), d("3.33"), d("3.34")]
        );
    }

    fn weights(model: usize, n: usize) -> Vec<Decimal> {
        let m = [
            crate::attribution::Model::LastClick,
            crate::attribution::Model::Linear,
            crate::attribution::Model::Position,
        ][model];
        match m {
            crate::attribution::Model::LastClick => vec![Decimal::ONE],
            m => m.weights(n),
        }
    }

    proptest! {
        #[test]
        fn each_sub_rule_splits_exactly_and_never_negative(
            n in 1usize..12,
            model in 0usize..3,
            cents in 0i64..10_000_000_000,
            pcts in proptest::collection::vec(0u32..10_000, 1..4),
            fixed_cents in 0i64..100_000,
            cur in 0usize..4,
            first in any::<bool>(),
        ) {
            let currency = Currency::parse(["USD", "JPY", "KWD", "EUR"][cur]).unwrap();
            let value = Decimal::new(cents, currency.exponent);
            let mut subs: Vec<serde_json::Value> = pcts.iter().map(|bp| json!({"type": "percent", "value": Decimal::new(i64::from(*bp), 2).to_string()})).collect();
            subs.push(json!({"trigger": "first", "eventType": "sale", "type": "fixed", "value": Decimal::new(fixed_cents, 2).to_string(), "currency": "EUR"}));
            let rule = CommissionRule::parse(&serde_json::Value::Array(subs)).unwrap();
            let w = weights(model, n);
            let mut firsts = FirstEvents::default();
            if !first {
                firsts.record("sale", at("2020-01-01"));
            }
            let touches: Vec<TouchTerms> = w.iter().map(|w| TouchTerms { rule: &rule, weight: *w, paid_before: false, firsts: &firsts }).collect();
            let e = PricedEvent { kind: "sale", value: Some(value), currency, ts: at("2026-06-01") };
            let priced = price(&touches, &e);
            for (i, sub) in rule.subs.iter().enumerate() {
                let (raw, c) = sub.price(Some(value), currency);
                let undivided = c.round(raw);
                let parts: Vec<&Priced> = priced.iter().flatten().filter(|p| p.rule_index == i).collect();
                let sum: Decimal = parts.iter().map(|p| p.amount).sum();
                let applies = sub.trigger != Trigger::First || first;
                prop_assert_eq!(sum, if applies { undivided } else { Decimal::ZERO });
                for p in parts {
                    prop_assert!(p.amount > Decimal::ZERO, "zero amounts make no commission");
                    prop_assert!(p.amount.scale() <= c.exponent);
                    prop_assert_eq!(p.currency, c);
                }
            }
        }

        #[test]
        fn split_exact_sums_and_is_never_negative(
            n in 1usize..20,
            model in 1usize..3,
            cents in 0i64..100_000,
        ) {
            let usd = usd();
            let total = Decimal::new(cents, 2);
            let shares = split_exact(total, &weights(model, n), usd);
            prop_assert_eq!(shares.len(), n);
            prop_assert_eq!(shares.iter().copied().sum::<Decimal>(), total);
            prop_assert!(shares.iter().all(|s| *s >= Decimal::ZERO));
        }
    }
}
