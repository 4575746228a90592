use super::*;
use crate::commissions::{pricing::PricedEvent, CommissionRule};
use crate::money::Currency;
use proptest::prelude::*;
use serde_json::json;
use std::str::FromStr;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn rule(pct: &str) -> CommissionRule {
    CommissionRule::parse(&json!({"type": "percent", "value": pct})).unwrap()
}

fn click(i: usize, hours_after_t0: i64, model: Model, window_days: i32) -> Candidate {
    Candidate {
        click_id: format!("c{i}"),
        link_id: format!("l{i}"),
        partner_id: format!("p{i}"),
        campaign_id: "camp".into(),
        ts: t0() + Duration::hours(hours_after_t0),
        model,
        window_days,
        holdback_days: 0,
        rule: rule("10"),
        terms: Vec::new(),
        paid_before: false,
        firsts: Default::default(),
    }
}

/// Each touch's single commission (these rules have one sub-rule).
fn split(
    touches: &[Touch],
    value: Option<Decimal>,
    currency: Currency,
) -> Vec<Option<(Decimal, Currency)>> {
    let event = PricedEvent {
        kind: "sale",
        value,
        currency,
        ts: t0(),
    };
    super::split(touches, &event)
        .into_iter()
        .map(|p| {
            assert!(p.len() <= 1);
            p.first().map(|p| (p.amount, p.currency))
        })
        .collect()
}

fn touches_of(o: &Outcome) -> Vec<(String, Decimal)> {
    match o {
        Outcome::Attributed { touches, .. } => touches
            .iter()
            .map(|t| (t.candidate.click_id.clone(), t.weight))
            .collect(),
        _ => vec![],
    }
}

#[test]
fn weights_by_model_for_1_to_6_touches() {
    let table: Vec<(Model, usize, Vec<&str>)> = vec![
        (Model::LastClick, 3, vec!["1"]),
        (Model::FirstClick, 3, vec!["1"]),
        (Model::Linear, 1, vec!["1"]),
        (Model::Linear, 2, vec!["0.5", "0.5"]),
        (Model::Linear, 4, vec!["0.25", "0.25", "0.25", "0.25"]),
        (Model::Position, 1, vec!["1"]),
        (Model::Position, 2, vec!["0.5", "0.5"]),
        (Model::Position, 3, vec!["0.4", "0.2", "0.4"]),
        (Model::Position, 4, vec!["0.4", "0.1", "0.1", "0.4"]),
        (
            Model::Position,
            6,
            vec!["0.4", "0.05", "0.05", "0.05", "0.05", "0.4"],
        ),
    ];
    for (model, n, want) in table {
        let w = model.weights(if matches!(model, Model::LastClick | Model::FirstClick) {
            1
        } else {
            n
        });
        let want: Vec<Decimal> = want.iter().map(|s| d(s)).collect();
        assert_eq!(w, want, "{model:?} n={n}");
    }
    let thirds = Model::Linear.weights(3);
    assert_eq!(thirds.iter().copied().sum::<Decimal>(), Decimal::ONE);
}

#[test]
fn each_model_picks_the_right_touches() {
    for (model, want) in [
        (Model::LastClick, vec!["c4"]),
        (Model::FirstClick, vec!["c0"]),
        (Model::Linear, vec!["c0", "c1", "c2", "c3", "c4"]),
        (Model::Position, vec!["c0", "c1", "c2", "c3", "c4"]),
    ] {
        let clicks: Vec<Candidate> = (0..5).map(|i| click(i, i as i64, model, 30)).collect();
        let o = attribute(true, &clicks, t0() + Duration::hours(10));
        let got: Vec<String> = touches_of(&o).into_iter().map(|(c, _)| c).collect();
        assert_eq!(got, want, "{model:?}");
    }
}

#[test]
fn the_most_recent_eligible_clicks_campaign_decides_the_model() {
    let mut clicks = vec![
        click(0, 0, Model::Linear, 30),
        click(1, 1, Model::FirstClick, 30),
    ];
    let o = attribute(true, &clicks, t0() + Duration::hours(2));
    assert!(matches!(
        o,
        Outcome::Attributed {
            model: Model::FirstClick,
            ..
        }
    ));
    assert_eq!(
        touches_of(&o)[0].0,
        "c0",
        "first click among all eligible clicks"
    );
    clicks[1].ts = t0() + Duration::hours(5); // after the event: not eligible
    let o = attribute(true, &clicks, t0() + Duration::hours(2));
    assert!(matches!(
        o,
        Outcome::Attributed {
            model: Model::Linear,
            ..
        }
    ));
}

#[test]
fn windows_and_edge_times() {
    let c = vec![click(0, 0, Model::LastClick, 7)];
    // Exactly at the click and exactly at the end of the window: in.
    assert_eq!(attribute(true, &c, t0()).status(), "attributed");
    assert_eq!(
        attribute(true, &c, t0() + Duration::days(7)).status(),
        "attributed"
    );
    // One millisecond later: out.
    assert_eq!(
        attribute(
            true,
            &c,
            t0() + Duration::days(7) + Duration::milliseconds(1)
        )
        .status(),
        "outside_window"
    );
    // An event before the click cannot be credited to it.
    assert_eq!(
        attribute(true, &c, t0() - Duration::seconds(1)).status(),
        "outside_window"
    );
    assert_eq!(attribute(false, &c, t0()).status(), "no_identity");
    assert_eq!(attribute(true, &[], t0()).status(), "no_click");
    // Per-campaign windows: each click is judged by its own campaign's window.
    let mixed = vec![
        click(0, 0, Model::Linear, 1),
        click(1, 24, Model::Linear, 30),
    ];
    let o = attribute(true, &mixed, t0() + Duration::days(2) + Duration::hours(1));
    assert_eq!(touches_of(&o).len(), 1);
}

#[test]
fn split_puts_the_rounding_remainder_on_the_last_touch() {
    let usd = Currency::parse("USD").unwrap();
    let clicks: Vec<Candidate> = (0..3)
        .map(|i| click(i, i as i64, Model::Linear, 30))
        .collect();
    let Outcome::Attributed { touches, .. } = attribute(true, &clicks, t0() + Duration::hours(5))
    else {
        panic!()
    };
    // 10% of 100.00 = 10.00 over 3 touches: 3.33 + 3.33 + 3.34.
    let amounts: Vec<Decimal> = split(&touches, Some(d("100.00")), usd)
        .into_iter()
        .map(|a| a.unwrap().0)
        .collect();
    assert_eq!(amounts, vec![d("3.33"), d("3.33"), d("3.34")]);
    // A value-less event under a percent rule: attributions stay, no commission.
    assert!(split(&touches, None, usd).iter().all(Option::is_none));
}

#[test]
fn non_recurring_rules_pay_only_the_first_time() {
    let usd = Currency::parse("USD").unwrap();
    let mut c = click(0, 0, Model::LastClick, 30);
    c.rule = CommissionRule::parse(
        &json!({"type": "fixed", "value": "50", "currency": "USD", "recurring": false}),
    )
    .unwrap();
    let touches = vec![Touch {
        candidate: c.clone(),
        weight: Decimal::ONE,
    }];
    assert_eq!(
        split(&touches, Some(d("10")), usd)[0],
        Some((d("50.00"), usd))
    );
    c.paid_before = true;
    let touches = vec![Touch {
        candidate: c,
        weight: Decimal::ONE,
    }];
    assert_eq!(split(&touches, Some(d("10")), usd)[0], None);
}

proptest! {
    #[test]
    fn weights_sum_to_one(n in 1usize..40, m in 0usize..4) {
        let model = [Model::LastClick, Model::FirstClick, Model::Linear, Model::Position][m];
        let w = model.weights(n);
        prop_assert_eq!(w.iter().copied().sum::<Decimal>(), Decimal::ONE);
        prop_assert!(w.iter().all(|x| *x > Decimal::ZERO));
    }

    #[test]
    fn per_touch_amounts_sum_exactly_to_the_undivided_amount(
        n in 1usize..12,
        m in 2usize..4,
        cents in 0i64..10_000_000_000,
        pct_bp in 1u32..10_000,
        cur in 0usize..4,
    ) {
        let model = [Model::LastClick, Model::FirstClick, Model::Linear, Model::Position][m];
        let currency = Currency::parse(["USD", "JPY", "KWD", "EUR"][cur]).unwrap();
        let value = Decimal::new(cents, currency.exponent);
        let pct = Decimal::new(pct_bp as i64, 2);
        let clicks: Vec<Candidate> = (0..n).map(|i| {
            let mut c = click(i, i as i64, model, 365);
            c.rule = CommissionRule::parse(&json!({"type": "percent", "value": pct.to_string()})).unwrap();
            c
        }).collect();
        let Outcome::Attributed { touches, .. } = attribute(true, &clicks, t0() + Duration::hours(n as i64)) else {
            return Err(TestCaseError::fail("not attributed"));
        };
        let undivided = currency.round(value * pct / Decimal::ONE_HUNDRED);
        let parts = split(&touches, Some(value), currency);
        let sum: Decimal = parts.iter().flatten().map(|(a, _)| *a).sum();
        prop_assert_eq!(sum, undivided);
        for (a, _) in parts.iter().flatten() {
            prop_assert!(a.scale() <= currency.exponent);
            prop_assert!(*a >= Decimal::ZERO);
        }
    }
}
