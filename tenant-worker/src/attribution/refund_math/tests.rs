use super::*;
use proptest::prelude::*;
use std::str::FromStr;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// A USD event of `value` with commissions of `(status, amount)`, not refunded yet.
fn usd_event(value: &str, commissions: &[(&'static str, &str)]) -> Event {
    Event {
        value: Some(d(value)),
        currency: Currency::parse("USD").unwrap(),
        commissions: commissions
            .iter()
            .map(|&(status, amount)| Commission::new(status, d(amount)))
            .collect(),
        refunds: vec![],
    }
}

fn adjust(amount: &str, status: &'static str) -> Take {
    Take::Adjust {
        amount: d(amount),
        status,
    }
}

/// One commission of the refunded event, as the database would hold it.
#[derive(Debug, Clone)]
struct Commission {
    status: &'static str,
    amount: Decimal,
    adjusted: Decimal,
    reversed: bool,
}

impl Commission {
    fn new(status: &'static str, amount: Decimal) -> Commission {
        Commission {
            status,
            amount,
            adjusted: Decimal::ZERO,
            reversed: false,
        }
    }

    fn left(&self) -> Decimal {
        match self.reversed {
            true => Decimal::ZERO,
            false => self.amount + self.adjusted,
        }
    }
}

/// An event and its refunds, refunded the way `refunds::handle` does it: the earlier
/// refunds as its two reads give them, a take per commission, the refund's stored value.
#[derive(Debug, Clone)]
struct Event {
    value: Option<Decimal>,
    currency: Currency,
    commissions: Vec<Commission>,
    /// The stored values of the refunds taken so far.
    refunds: Vec<Option<Decimal>>,
}

impl Event {
    fn earlier(&self) -> Earlier {
        Earlier {
            value_sum: (!self.refunds.is_empty())
                .then(|| self.refunds.iter().map(|v| v.unwrap_or_default()).sum()),
            whole: self
                .refunds
                .iter()
                .any(|v| v.is_none() || self.value.is_none()),
        }
    }

    fn refund(&mut self, value: Option<Decimal>) -> Result<(Share, Vec<Take>), OverRefund> {
        let share = share(self.value, self.earlier(), value)?;
        let mut takes = Vec::new();
        for c in &mut self.commissions {
            let standing = Standing {
                status: if c.reversed { "reversed" } else { c.status },
                amount: c.amount,
                adjusted: c.adjusted,
                currency: self.currency,
            };
            let take = share.take(&standing);
            match take {
                Take::Nothing => {}
                Take::Reverse => c.reversed = true,
                Take::Adjust { amount, .. } => c.adjusted -= amount,
            }
            takes.push(take);
        }
        self.refunds.push(self.value.map(|_| share.this));
        Ok((share, takes))
    }

    fn refunded(&self) -> Decimal {
        self.refunds.iter().map(|v| v.unwrap_or_default()).sum()
    }
}

#[test]
fn three_partial_refunds_take_the_commission_to_exactly_zero() {
    let mut e = usd_event("100.00", &[("accrued", "10.00")]);
    for _ in 0..2 {
        let (_, takes) = e.refund(Some(d("33.33"))).unwrap();
        assert_eq!(takes, vec![adjust("3.33", "accrued")]);
    }
    let (last, takes) = e.refund(Some(d("33.34"))).unwrap();
    assert!(last.completes);
    assert_eq!(takes, vec![adjust("3.34", "accrued")]);
    assert_eq!(e.commissions[0].left(), Decimal::ZERO);
    assert_eq!(
        e.refund(Some(d("0.01"))),
        Err(OverRefund {
            remaining: Decimal::ZERO
        })
    );
}

#[test]
fn a_partial_take_is_capped_by_what_is_left() {
    // 30% of 0.05 is 0.015, half-even 0.02: twice, and then only 0.01 is left.
    let mut e = usd_event("10.00", &[("paid", "0.05")]);
    for want in ["0.02", "0.02", "0.01"] {
        let (_, takes) = e.refund(Some(d("3.00"))).unwrap();
        assert_eq!(takes, vec![adjust(want, "approved")]);
    }
    let (last, takes) = e.refund(None).unwrap();
    assert!(last.completes);
    assert_eq!(takes, vec![Take::Nothing]);
}

#[test]
fn a_whole_first_refund_reverses_unpaid_commissions_and_claws_back_paid_ones() {
    let mut e = usd_event(
        "80.00",
        &[("accrued", "8.00"), ("approved", "4.00"), ("paid", "2.00")],
    );
    let (share, takes) = e.refund(None).unwrap();
    assert!(share.completes && share.first);
    assert_eq!(share.this, d("80.00"));
    let clawback = adjust("2.00", "approved");
    assert_eq!(takes, vec![Take::Reverse, Take::Reverse, clawback]);
}

#[test]
fn a_refund_larger_than_the_event_or_of_nothing_is_refused() {
    let ten = Some(d("10.00"));
    let none = Earlier::default();
    let over = |remaining: &str| {
        Err(OverRefund {
            remaining: d(remaining),
        })
    };
    assert_eq!(share(ten, none, Some(d("10.01"))), over("10.00"));
    assert_eq!(share(ten, none, Some(d("0"))), over("10.00"));
    assert_eq!(share(Some(d("0")), none, None), over("0"));
    // Earlier refunds worth more than the event (stored before a correction): nothing left.
    let beyond = Earlier {
        value_sum: Some(d("12.00")),
        whole: false,
    };
    assert_eq!(share(ten, beyond, None), over("0"));
}

/// A refund value: none, exactly what remains, one minor unit more, zero, or some part.
fn refund_value(kind: u8, part: u64, e: &Event) -> Option<Decimal> {
    let value = e.value?;
    let unit = Decimal::new(1, e.currency.exponent);
    let remaining = value - e.refunded();
    match kind {
        0 => None,
        1 => Some(remaining),
        2 => Some(remaining + unit),
        3 => Some(Decimal::ZERO),
        _ => {
            let units = (remaining / unit).trunc().max(Decimal::ONE);
            Some(unit * (Decimal::from(part) % units + Decimal::ONE))
        }
    }
}

fn event_strategy() -> impl Strategy<Value = Event> {
    // Commissions of a few minor units too, where the rounding of partial takes adds up.
    let commission = (0usize..3, prop_oneof![1i64..20, 1i64..10_000_000]);
    (
        0usize..3,
        prop::option::weighted(0.85, 1i64..1_000_000_000),
        prop::collection::vec(commission, 1..5),
    )
        .prop_map(|(cur, value, commissions)| {
            let currency = Currency::parse(["USD", "JPY", "KWD"][cur]).unwrap();
            Event {
                value: value.map(|units| Decimal::new(units, currency.exponent)),
                currency,
                commissions: commissions
                    .into_iter()
                    .map(|(s, units)| {
                        let status = ["accrued", "approved", "paid"][s];
                        Commission::new(status, Decimal::new(units, currency.exponent))
                    })
                    .collect(),
                refunds: vec![],
            }
        })
}

proptest! {
    /// Takes never exceed what is left of a commission, are in its minor unit, and a
    /// partial refund takes its fraction of the commission rounded half-even (less only
    /// where less is left).
    #[test]
    fn takes_never_exceed_what_remains(
        mut e in event_strategy(),
        refunds in prop::collection::vec((0u8..8, any::<u64>()), 1..8),
    ) {
        for (kind, part) in refunds {
            let value = refund_value(kind, part, &e);
            let before: Vec<Decimal> = e.commissions.iter().map(Commission::left).collect();
            let Ok((share, takes)) = e.refund(value) else { continue };
            for ((c, take), left) in e.commissions.iter().zip(&takes).zip(before) {
                prop_assert!(c.left() >= Decimal::ZERO);
                let Take::Adjust { amount, .. } = *take else { continue };
                prop_assert!(amount > Decimal::ZERO && amount <= left);
                prop_assert!(amount.scale() <= e.currency.exponent);
                if !share.completes {
                    let exact = c.amount * share.this / e.value.unwrap_or(Decimal::ONE);
                    let half_unit = Decimal::new(5, e.currency.exponent + 1);
                    prop_assert!(amount == left || (amount - exact).abs() <= half_unit);
                    prop_assert_eq!(amount, e.currency.round(exact).min(left));
                }
            }
        }
    }

    /// Repeated refunds never take more than the event's value nor more than a commission's
    /// amount; each is refused exactly when it is larger than what remains or takes nothing,
    /// and the refusal says what remains.
    #[test]
    fn repeated_refunds_never_exceed_the_original(
        mut e in event_strategy(),
        refunds in prop::collection::vec((0u8..8, any::<u64>()), 1..8),
    ) {
        let total = e.value.unwrap_or(Decimal::ONE);
        for (kind, part) in refunds {
            let value = refund_value(kind, part, &e);
            let remaining = match (e.value, e.refunds.is_empty()) {
                (Some(v), _) if !e.refunds.contains(&None) => v - e.refunded(),
                (None, true) => Decimal::ONE,
                _ => Decimal::ZERO,
            };
            let this = value.unwrap_or(remaining);
            let refused = remaining <= Decimal::ZERO || this > remaining || this <= Decimal::ZERO;
            match e.refund(value) {
                Ok((share, _)) => {
                    prop_assert!(!refused);
                    prop_assert_eq!(share.this, this);
                    prop_assert_eq!(share.completes, this == remaining);
                }
                Err(over) => {
                    prop_assert!(refused);
                    prop_assert_eq!(over.remaining, remaining.max(Decimal::ZERO));
                }
            }
            prop_assert!(e.value.is_none() || e.refunded() <= total);
            for c in &e.commissions {
                prop_assert!(-c.adjusted <= c.amount);
            }
        }
    }

    /// The refund that completes the event takes everything left of every commission, so
    /// the takes of all its refunds add up to each commission exactly; after it, nothing
    /// more can be refunded.
    #[test]
    fn a_full_refund_takes_everything(
        mut e in event_strategy(),
        partial in prop::collection::vec((4u8..8, any::<u64>()), 0..5),
        last_without_value in any::<bool>(),
    ) {
        // A value-less event has no partial refunds: its first refund takes it all.
        let partial = if e.value.is_some() { partial } else { vec![] };
        for (kind, part) in partial {
            let value = refund_value(kind, part, &e);
            if e.value.is_some() && value == e.value.map(|v| v - e.refunded()) {
                break; // would complete: the last refund below does that
            }
            let _ = e.refund(value);
        }
        let first = e.refunds.is_empty();
        let last = match last_without_value {
            true => None,
            false => refund_value(1, 0, &e),
        };
        let (share, takes) = e.refund(last).map_err(|o| TestCaseError::fail(format!("{o:?}")))?;
        prop_assert!(share.completes);
        for (c, take) in e.commissions.iter().zip(&takes) {
            prop_assert_eq!(c.left(), Decimal::ZERO);
            let reversed = *take == Take::Reverse;
            prop_assert_eq!(reversed, first && c.status != "paid");
            if !c.reversed {
                // The takes of every refund sum exactly to the commission.
                prop_assert_eq!(-c.adjusted, c.amount);
            }
        }
        prop_assert_eq!(e.refund(None).map(|_| ()), Err(OverRefund { remaining: Decimal::ZERO }));
    }
}
