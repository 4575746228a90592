//! The arithmetic of a refund (or chargeback): how much of its event it refunds, and what it
//! takes back from each of the event's commissions. Pure, property-tested below; the
//! locking, reads and writes around it are [`super::refunds::handle`]'s.
//!
//! An event's refunds share out its value (a value-less event counts as a value of 1, all
//! taken by its first refund). A refund without a value takes what remains; one larger than
//! what remains — or of nothing, or of an event with nothing left — is an over-refund. The
//! refund that takes what remains takes everything left of each commission, so a fully
//! refunded event nets exactly zero; an earlier one takes the same fraction of each
//! commission, rounded half-even to the currency's minor unit (never more than is left).

use crate::money::Currency;
use rust_decimal::Decimal;

/// The refunds an event had before this one, as its refund rows say.
#[derive(Debug, Clone, Copy, Default)]
pub struct Earlier {
    /// The sum of their values (a value-less one counting 0); `None` when there are none.
    pub value_sum: Option<Decimal>,
    /// One of them took everything: it had no value, or the event has none.
    pub whole: bool,
}

/// What one refund takes of its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// The value this refund takes (for a value-less event, the 1 that stands for it).
    pub this: Decimal,
    /// It takes all that remains: the event is fully refunded with it.
    pub completes: bool,
    /// Nothing was refunded before.
    pub first: bool,
    /// `this` as a fraction of the event's value.
    fraction: Decimal,
}

/// Refused: the refund is larger than what remains of the event, or takes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverRefund {
    /// What remains refundable (never negative).
    pub remaining: Decimal,
}

/// The share of the event a refund of `value` takes, given the event's value (`original`)
/// and its earlier refunds. A value counts only when the event has one.
pub fn share(
    original: Option<Decimal>,
    earlier: Earlier,
    value: Option<Decimal>,
) -> Result<Share, OverRefund> {
    let total = original.unwrap_or(Decimal::ONE);
    let before = if earlier.whole {
        total
    } else {
        earlier.value_sum.unwrap_or_default()
    };
    let remaining = total - before;
    let this = match (value, original) {
        (Some(v), Some(_)) => v,
        _ => remaining,
    };
    if remaining <= Decimal::ZERO || this > remaining || this <= Decimal::ZERO {
        return Err(OverRefund {
            remaining: remaining.max(Decimal::ZERO),
        });
    }
    Ok(Share {
        this,
        completes: this == remaining,
        first: before.is_zero(),
        fraction: this / total,
    })
}

/// A commission of the refunded event, as it stands.
#[derive(Debug, Clone, Copy)]
pub struct Standing<'a> {
    pub status: &'a str,
    pub amount: Decimal,
    /// The sum of its adjustments so far (earlier refunds' takes are negative).
    pub adjusted: Decimal,
    pub currency: Currency,
}

/// What a refund does to one commission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Nothing: reversed already, nothing left, or a share that rounds to zero.
    Nothing,
    /// Untouched and unpaid, and the refund takes everything: reverse the commission itself.
    Reverse,
    /// A negative adjustment of `amount` (the take, positive) in `status`: `accrued` beside
    /// an accrued commission (approved together with it), else `approved` — a clawback of
    /// money paid or approved for payment, netted by the next payout.
    Adjust {
        amount: Decimal,
        status: &'static str,
    },
}

/// Whether a refund may take anything from a commission in `status` (a reversed one has
/// nothing to give, whatever its adjustments).
pub fn refundable(status: &str) -> bool {
    status != "reversed"
}

impl Share {
    /// What this refund takes from commission `c`.
    pub fn take(&self, c: &Standing) -> Take {
        let left = c.amount + c.adjusted;
        if !refundable(c.status) || left <= Decimal::ZERO {
            return Take::Nothing;
        }
        if self.completes && self.first && c.status != "paid" {
            return Take::Reverse;
        }
        let amount = if self.completes {
            left
        } else {
            c.currency.round(c.amount * self.fraction).min(left)
        };
        if amount.is_zero() {
            return Take::Nothing;
        }
        let status = if c.status == "accrued" {
            "accrued"
        } else {
            "approved"
        };
        Take::Adjust { amount, status }
    }
}

#[cfg(test)]
mod tests;
