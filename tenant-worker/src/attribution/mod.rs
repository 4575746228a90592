//! Attribution: which partners a conversion event is credited to, and with what weight.
//!
//! The engine here is pure (no I/O): given the user's candidate clicks (already filtered of
//! flagged clicks and revoked partners) and the event time, it decides the outcome, the model
//! (the most recent eligible click's campaign's), the touches and their weights, and splits
//! the commission exactly. The handlers around it live in [`events`], [`identify`],
//! [`refunds`] and [`rederive`]; they read their input with [`input`], turn an outcome into
//! rows and a reply with [`plan`] (pure too) and read and write with [`store`] (SQL only).

pub mod events;
pub mod identify;
pub mod input;
pub mod plan;
pub mod rederive;
pub mod refund_math;
pub mod refunds;
pub mod store;

use crate::{
    commissions::{
        pricing::{self, FirstEvents, Priced, PricedEvent, TouchTerms},
        CommissionRule,
    },
    error::ApiError,
    terms::{self, TermsVersion},
};
use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    LastClick,
    FirstClick,
    Linear,
    Position,
}

impl Model {
    pub fn parse(s: &str) -> Result<Model, ApiError> {
        match s {
            "last_click" => Ok(Model::LastClick),
            "first_click" => Ok(Model::FirstClick),
            "linear" => Ok(Model::Linear),
            "position" => Ok(Model::Position),
            _ => Err(ApiError::invalid_body(
                "attributionModel must be last_click, first_click, linear or position",
            )
            .with("field", "attributionModel")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Model::LastClick => "last_click",
            Model::FirstClick => "first_click",
            Model::Linear => "linear",
            Model::Position => "position",
        }
    }

    /// Weights of `n` time-ordered touches; they sum to exactly 1 (the last one takes the
    /// remainder of the division).
    pub fn weights(self, n: usize) -> Vec<Decimal> {
        if n == 0 {
            return vec![];
        }
        let raw: Vec<Decimal> = match (self, n) {
            (Model::LastClick | Model::FirstClick, _) | (_, 1) => vec![Decimal::ONE],
            (Model::Linear, n) => vec![Decimal::ONE / Decimal::from(n); n],
            (Model::Position, 2) => vec![Decimal::new(5, 1); 2],
            (Model::Position, n) => {
                let middle = Decimal::new(2, 1) / Decimal::from(n - 2);
                let mut w = vec![middle; n];
                w[0] = Decimal::new(4, 1);
                w[n - 1] = Decimal::new(4, 1);
                w
            }
        };
        let mut w = raw;
        let last = w.len() - 1;
        let others: Decimal = w[..last].iter().copied().sum();
        w[last] = Decimal::ONE - others;
        w.into_iter().map(|d| d.normalize()).collect()
    }
}

/// A click the user made that could earn credit, with its campaign's terms and its
/// partner's ([`Candidate::priced_at`] picks the ones in force at an event's time).
#[derive(Debug, Clone)]
pub struct Candidate {
    pub click_id: String,
    /// The click's link (reporting credits an event to the link of the click it touched).
    pub link_id: String,
    pub partner_id: String,
    pub campaign_id: String,
    pub ts: DateTime<Utc>,
    pub model: Model,
    pub window_days: i32,
    /// The campaign's holdback; in a [`Touch`], the one in force at the event's time.
    pub holdback_days: i32,
    /// The campaign's rule; in a [`Touch`], the one in force at the event's time.
    pub rule: CommissionRule,
    /// The partner's terms for this campaign and for all campaigns, every version.
    pub terms: Vec<TermsVersion>,
    /// The user already has a paying commission for this campaign (for non-recurring rules).
    pub paid_before: bool,
    /// The first attributed events of (campaign, partner, user) so far (read only for the
    /// types its rules ask about: [`Candidate::history_types`]).
    pub firsts: FirstEvents,
}

impl Candidate {
    /// This click with the rule and holdback in force for its (partner, campaign) at `at`
    /// ([`terms::rule_in_force`]): what prices a touch of an event at `at`.
    pub fn priced_at(&self, at: DateTime<Utc>) -> Candidate {
        let (rule, holdback_days) =
            terms::rule_in_force(&self.rule, self.holdback_days, &self.terms, at);
        Candidate {
            click_id: self.click_id.clone(),
            link_id: self.link_id.clone(),
            partner_id: self.partner_id.clone(),
            campaign_id: self.campaign_id.clone(),
            ts: self.ts,
            model: self.model,
            window_days: self.window_days,
            holdback_days,
            rule: rule.clone(),
            terms: Vec::new(),
            paid_before: self.paid_before,
            firsts: self.firsts.clone(),
        }
    }

    /// Whether some rule that may price this click pays only a user's first event.
    pub fn may_pay_first_only(&self) -> bool {
        self.rule.has_first_payment() || terms::any_first_only(&self.terms)
    }

    /// The event types whose first event some rule that may price this click asks about
    /// (`None`: of any type), each once.
    pub fn history_types(&self) -> Vec<Option<&str>> {
        let mut types = self.rule.history_types();
        for rule in self.terms.iter().filter_map(|v| v.rule.as_ref()) {
            for t in rule.history_types() {
                if !types.contains(&t) {
                    types.push(t);
                }
            }
        }
        types
    }
}

#[derive(Debug, Clone)]
pub struct Touch {
    pub candidate: Candidate,
    pub weight: Decimal,
}

#[derive(Debug, Clone)]
pub enum Outcome {
    NoIdentity,
    NoClick,
    OutsideWindow,
    Attributed { model: Model, touches: Vec<Touch> },
}

impl Outcome {
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::NoIdentity => "no_identity",
            Outcome::NoClick => "no_click",
            Outcome::OutsideWindow => "outside_window",
            Outcome::Attributed { .. } => "attributed",
        }
    }
}

/// Decides the outcome. `candidates` must be ordered by `(ts, click_id)`. Each touch
/// carries the rule and holdback in force at `event_ts` ([`Candidate::priced_at`]).
pub fn attribute(has_identity: bool, candidates: &[Candidate], event_ts: DateTime<Utc>) -> Outcome {
    if !has_identity {
        return Outcome::NoIdentity;
    }
    if candidates.is_empty() {
        return Outcome::NoClick;
    }
    let eligible: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.ts <= event_ts && c.ts >= event_ts - Duration::days(i64::from(c.window_days)))
        .collect();
    let Some(latest) = eligible.last() else {
        return Outcome::OutsideWindow;
    };
    let model = latest.model;
    let chosen: Vec<&Candidate> = match model {
        Model::LastClick => vec![latest],
        Model::FirstClick => vec![eligible[0]],
        Model::Linear | Model::Position => eligible.clone(),
    };
    let weights = model.weights(chosen.len());
    Outcome::Attributed {
        model,
        touches: chosen
            .into_iter()
            .zip(weights)
            .map(|(c, weight)| Touch {
                candidate: c.priced_at(event_ts),
                weight,
            })
            .collect(),
    }
}

/// The commissions of each touch ([`pricing::price`]: one per applying sub-rule, rounded
/// half-even, none when zero; the attribution stays either way). When all touches share one
/// rule, each sub-rule's amounts sum exactly to that sub-rule applied to the undivided
/// amount.
pub fn split(touches: &[Touch], event: &PricedEvent) -> Vec<Vec<Priced>> {
    let terms: Vec<TouchTerms> = touches
        .iter()
        .map(|t| TouchTerms {
            rule: &t.candidate.rule,
            weight: t.weight,
            paid_before: t.candidate.paid_before,
            firsts: &t.candidate.firsts,
        })
        .collect();
    pricing::price(&terms, event)
}

#[cfg(test)]
mod tests;
