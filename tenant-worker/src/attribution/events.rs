//! `POST /attribution/events`: conversion events in, attributions and commissions out.
//!
//! The hot path is group-committed ([`crate::group_commit`]): concurrent events of a tenant
//! are attributed and written together by [`write_events`] — one candidate read, one
//! multi-row insert per table, one commit — and each caller is answered after that commit.
//!
//! In reading order: [`ingest`] parses the body ([`super::input`]) and submits the event to
//! its tenant's [`lane`]; [`write_events`] reads the batch's candidate clicks
//! ([`super::store`]), attributes and plans every event ([`super::attribute`],
//! [`super::plan`]) and writes the rows `store` builds for the plans.
//!
//! A client `eventId` (alias `externalEventId`) makes the call idempotent: a repeat — even a
//! concurrent one, which waits on the unique index — writes nothing and gets the first reply
//! back. Refunds and chargebacks take the slower, locked path in [`super::refunds`].

use super::{
    attribute,
    input::{parse, EventBody, EventInput},
    plan::{mark_paid, EventFacts, EventReply, Plan},
    refunds::{self, RefundReply},
    store, Candidate, Outcome,
};
use crate::{
    context::{Ctx, Reply},
    error::{ApiError, ErrorCode},
    group_commit::{BatchResult, Before, Lanes, Turn},
    openapi::Op,
    reporting::rollups,
    sql::{pipeline, rollback, send, Rows, Schema, Statement},
    webhooks::subscriptions,
};
use chrono::{DateTime, Utc};
use deadpool_postgres::{Object, Pool};
use futures::future::BoxFuture;
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use tokio_postgres::{error::SqlState, types::ToSql, Row};

/// What `POST /attribution/events` answers: a conversion event's attribution, or what a
/// refund took back. A repeated `eventId` answers the stored reply of the first event with
/// that id, whichever kind it was.
#[derive(JsonSchema)]
#[schemars(untagged)]
#[allow(dead_code)]
enum EventAnswer {
    Event(EventReply<'static>),
    Refund(RefundReply),
}

pub fn ingest_doc() -> Op {
    Op::new("Record a conversion event, refund or chargeback")
        .describe("Attributes the event to the partners whose clicks the user made (the model of the most recent eligible click's campaign) and accrues their commissions. `type: refund` or `chargeback` with `metadata.refundOf` (the refunded event's `eventId`) takes back that event's commissions instead: without `value`, or with all that remains, everything left; with a smaller `value` the same fraction of each. A client `eventId` (alias `externalEventId`) makes the call idempotent: the same `eventId` again answers the first reply with `200` and creates nothing.")
        .body::<EventBody>()
        .ok::<EventAnswer>(201, "A new event: its attribution, or what the refund took back.")
        .ok::<EventAnswer>(200, "The `eventId` was taken: the first event's reply, nothing created.")
        .errors(400, &[ErrorCode::InvalidCurrency, ErrorCode::InvalidAmount])
        .errors(404, &[ErrorCode::NotFound])
        .errors(409, &[ErrorCode::OverRefund, ErrorCode::Conflict])
}

/// `POST /attribution/events`
pub async fn ingest(ctx: Ctx) -> Result<Reply, ApiError> {
    let input = parse(&ctx)?;
    if input.is_refund() {
        return refunds::handle(ctx, input).await;
    }
    let schema = ctx.tenant()?.schema.clone();
    let written = ctx.app.event_lane.submit(&schema, input).await?;
    Ok(match written {
        Written::Created(body) => Reply::json_text(201, body),
        Written::Replayed(body) => Reply::json_text(200, body),
    })
}

/// The event lanes of a worker, one per tenant: batches of conversion events (not
/// refunds) written by [`write_events`], in turns that carry what each batch pays ([`Paid`]).
pub type Lane = Lanes<EventInput, Written, Paid>;

/// Builds the event lanes.
pub fn lane(pool: Pool) -> Lane {
    // Two batches at a time, in turn order (group_commit::Turn): a batch that would pay a
    // first payment the batch ahead also pays waits for that batch's commit. Not more: a
    // batch's reads may miss only the one batch ahead of it.
    Lanes::new("events", 2, pool, write_events)
}

/// What became of one event.
pub enum Written {
    /// New: its attributions and commissions were written with it. The reply, as JSON text.
    Created(Vec<u8>),
    /// Its `eventId` was already taken: the first copy's reply (JSON text), nothing written.
    Replayed(Vec<u8>),
}

/// Writes a batch of (non-refund) events of one tenant (the event lane of
/// [`crate::group_commit`]) in two round trips whatever the batch size: one read of every
/// user's candidate clicks, then `BEGIN`, the events (`ON CONFLICT (event_id) DO NOTHING
/// RETURNING`: the ones returned are new), everything derived from them and `COMMIT`,
/// pipelined ([`Batch::insert`]).
///
/// Batches overlap: the read, and unless the batch ahead pays a first payment this batch
/// would pay too, or credits a (user, campaign, partner) whose first event this batch's
/// compound rules still ask about, the write ([`Turn`], [`Paid`]). So the first-payment
/// rule and the `first`/`subsequent`/`recurringMonths` sub-rules hold exactly, as if all
/// events had come one after the other; the `first_events` rows the batch writes make a
/// first priced concurrently by another writer fail the batch instead (it is then written
/// again job by job, from fresh reads). Outbox rows are left out while no
/// endpoint subscribes to them, which the transaction proves ([`subscriptions`]).
///
/// Events are inserted in `eventId` order, so two batches holding the same ids cannot
/// deadlock; a concurrent copy of an event waits on the unique index until the first one
/// commits or rolls back. Copies of one `eventId` inside a batch are answered like a replay
/// of the first. The user's earlier events in the same batch count as "paid before" for the
/// recurring rule, exactly as if they had come one after the other.
pub fn write_events<'a>(
    pool: &'a Pool,
    schema: &'a Schema,
    jobs: &'a [EventInput],
    turn: &'a Turn<Paid>,
) -> BoxFuture<'a, BatchResult<Written>> {
    Box::pin(async move {
        let conn = pool.get().await?;
        let mut users: Vec<&str> = jobs.iter().map(|j| j.facts.user_id.as_str()).collect();
        users.sort_unstable();
        users.dedup();
        // Read and plan while the batch ahead may still be writing. Its commissions matter
        // only to a user's first payment on a campaign that pays only the first one: only
        // then, and only if the batch ahead plans to pay that very pair, wait for its
        // commit (and take it into account).
        let mut candidates = store::candidates_for(&conn, schema, &users, None).await?;
        let outbox = subscriptions::anyone_listens(&conn, schema, &OUTBOX_TYPES).await?;
        let first_payments = Paid::first_payments(jobs, &candidates);
        let before = match first_payments.is_empty() {
            true => Before::Nothing,
            false => turn.wait(|ahead| ahead.overlaps(&first_payments)).await,
        };
        let mut batch = match before {
            Before::Nothing => Batch::plan(schema, jobs, candidates, outbox),
            Before::Committed(paid) => {
                paid.apply(&mut candidates);
                Batch::plan(schema, jobs, candidates, outbox)
            }
            Before::Unknown => {
                let fresh = store::candidates_for(&conn, schema, &users, None).await?;
                Batch::plan(schema, jobs, fresh, outbox)
            }
        };
        turn.planned(batch.paid());
        let mut written = batch.insert(&conn).await;
        if matches!(written, Ok(None)) {
            // An endpoint subscribes now: write again, with the outbox rows.
            rollback(&conn).await;
            subscriptions::remember(schema, true);
            batch.with_outbox();
            written = batch.insert(&conn).await;
        }
        let new = match written {
            Ok(Some(new)) => new,
            Ok(None) => {
                rollback(&conn).await;
                return Err(ApiError::internal());
            }
            Err(e) => {
                rollback(&conn).await;
                return Err(e);
            }
        };
        turn.committed();
        batch.replies(&conn, &new).await
    })
}

/// Reads the results of a batch's fence and event inserts: `None` if the fence failed
/// (someone subscribes), else the `eventId`s the inserts returned (the new events).
fn fenced_events(
    results: &mut impl Iterator<Item = Result<Vec<Row>, tokio_postgres::Error>>,
    fence: usize,
    events: usize,
) -> Result<Option<HashSet<String>>, ApiError> {
    for r in results.by_ref().take(fence) {
        match r {
            Err(e) if subscriptions::is_fence_error(&e) => return Ok(None),
            r => r.map(drop)?,
        }
    }
    let mut new = HashSet::new();
    for r in results.by_ref().take(events) {
        new.extend(r?.iter().map(|row| row.get::<_, String>(0)));
    }
    Ok(Some(new))
}

/// The webhook event types of an event batch's outbox rows (and `*`, which takes all).
const OUTBOX_TYPES: [&str; 3] = ["*", "attribution.created", "commission.accrued"];

/// What a batch hands on to the next one: the (user, campaign) pairs it pays a positive
/// commission for, and the (user, campaign, partner) triples it credits with the type and
/// `ts` of each event (the first events of `first`/`subsequent`/`recurringMonths`
/// sub-rules). Built from candidates, the same shape says what a batch's plan depends on:
/// first payments still open, and triples whose rules need a first event not yet known.
#[derive(Default)]
pub struct Paid {
    pairs: HashSet<(String, String)>,
    credited: HashMap<Triple, Vec<(String, DateTime<Utc>)>>,
}

/// (user, campaign, partner).
type Triple = (String, String, String);

impl Paid {
    /// What the plan of `jobs` depends on, given their users' candidates.
    fn first_payments(
        jobs: &[EventInput],
        candidates: &HashMap<String, (bool, Vec<Candidate>)>,
    ) -> Paid {
        let mut open = Paid::default();
        for (user, (_, cands)) in candidates {
            for c in cands
                .iter()
                .filter(|c| c.may_pay_first_only() && !c.paid_before)
            {
                open.pairs.insert((user.clone(), c.campaign_id.clone()));
            }
        }
        for job in jobs {
            let Some((_, cands)) = candidates.get(&job.facts.user_id) else {
                continue;
            };
            let kind = job.facts.kind.as_str();
            for c in cands.iter().filter(|c| {
                c.history_types().into_iter().any(|t| match t {
                    None => c.firsts.any.is_none(),
                    Some(t) => t == kind && c.firsts.is_first(t),
                })
            }) {
                let key = (
                    job.facts.user_id.clone(),
                    c.campaign_id.clone(),
                    c.partner_id.clone(),
                );
                open.credited.entry(key).or_default();
            }
        }
        open
    }

    fn is_empty(&self) -> bool {
        self.pairs.is_empty() && self.credited.is_empty()
    }

    fn overlaps(&self, other: &Paid) -> bool {
        let (small, large) = match self.pairs.len() <= other.pairs.len() {
            true => (self, other),
            false => (other, self),
        };
        small.pairs.iter().any(|pair| large.pairs.contains(pair))
            || self.credited.keys().any(|k| other.credited.contains_key(k))
    }

    /// Takes what the batch ahead committed into `candidates`: its paid pairs are paid
    /// before, its credited events earlier attributed events.
    fn apply(&self, candidates: &mut HashMap<String, (bool, Vec<Candidate>)>) {
        for (user, (_, cands)) in candidates.iter_mut() {
            for c in cands.iter_mut() {
                if self.pairs.contains(&(user.clone(), c.campaign_id.clone())) {
                    c.paid_before = true;
                }
                let key = (user.clone(), c.campaign_id.clone(), c.partner_id.clone());
                for (kind, ts) in self.credited.get(&key).into_iter().flatten() {
                    c.firsts.record(kind, *ts);
                }
            }
        }
    }
}

/// An event's outcome, rows and reply (JSON text).
type Planned = (Outcome, Plan, Vec<u8>);

/// A batch of events, attributed and priced, ready to write.
struct Batch<'a> {
    schema: &'a Schema,
    jobs: &'a [EventInput],
    /// Per job: its outcome, rows and reply — or the index of the earlier job with the same
    /// `eventId`.
    plans: Vec<Result<Planned, usize>>,
    /// The first copy of each `eventId`, in `eventId` order (the insert order).
    order: Vec<usize>,
    events: Rows,
    /// Whether the outbox rows are written: false when nobody seemed to subscribe, which
    /// the write then proves ([`subscriptions::fence`]).
    outbox: bool,
    /// The derived rows of all of them (built before the batch's turn to write).
    derived: Vec<Rows>,
    /// Whether any rule of the batch's candidates asks about first events (only then does
    /// the batch hand on what it credits).
    history: bool,
    /// The attribution locks of the users this batch prices a first event for
    /// ([`store::user_lock_keys`]): the write holds them, so identify's backlog and rederive,
    /// which read and write a user's history under the same lock, never interleave with a
    /// first being written. Events that are not first write no `first_events` row and take
    /// no lock: once a user's firsts are known, batches of that user write side by side.
    locks: Vec<i64>,
    /// Whether the batch writes its reporting rollups ([`rollups::in_event_lane`]).
    rollups: bool,
}

impl<'a> Batch<'a> {
    /// Attributes and prices every job, given each user's candidates.
    fn plan(
        schema: &'a Schema,
        jobs: &'a [EventInput],
        mut candidates: HashMap<String, (bool, Vec<Candidate>)>,
        outbox: bool,
    ) -> Batch<'a> {
        let now = Utc::now();
        let mut first_of: HashMap<&str, usize> = HashMap::new();
        let mut plans = Vec::with_capacity(jobs.len());
        for (i, job) in jobs.iter().enumerate() {
            let event = &job.facts;
            if let Some(&first) = first_of.get(event.event_id.as_str()) {
                plans.push(Err(first));
                continue;
            }
            first_of.insert(&event.event_id, i);
            let (has_identity, cands) = candidates
                .entry(event.user_id.clone())
                .or_insert((false, Vec::new()));
            let outcome = attribute(*has_identity, cands, event.ts);
            let plan = Plan::new(event, &outcome, now);
            mark_paid(cands, event, &plan);
            let response = plan.reply(event, &outcome);
            plans.push(Ok((outcome, plan, response)));
        }
        let history = candidates
            .values()
            .any(|(_, cands)| cands.iter().any(|c| !c.history_types().is_empty()));
        let locks = store::user_lock_keys(
            schema,
            jobs.iter()
                .zip(&plans)
                .filter(|(_, p)| p.as_ref().is_ok_and(|(_, plan, _)| !plan.firsts.is_empty()))
                .map(|(job, _)| job.facts.user_id.as_str()),
        );
        let mut order: Vec<usize> = (0..jobs.len()).filter(|&i| plans[i].is_ok()).collect();
        order.sort_by(|&a, &b| jobs[a].facts.event_id.cmp(&jobs[b].facts.event_id));
        let mut events = store::event_rows(schema);
        for &i in &order {
            if let Ok((outcome, _, response)) = &plans[i] {
                let job = &jobs[i];
                store::push_event(&mut events, &job.facts, &job.metadata, outcome, response);
            }
        }
        let mut batch = Batch {
            schema,
            jobs,
            plans,
            order,
            events,
            outbox,
            derived: Vec::new(),
            history,
            locks,
            rollups: rollups::in_event_lane(),
        };
        batch.derived = batch.derived_rows(|_| true);
        batch
    }

    /// Someone subscribes after all: write the outbox rows too.
    fn with_outbox(&mut self) {
        self.outbox = true;
        self.derived = self.derived_rows(|_| true);
    }

    /// What the batch pays, if all of it is new (copies of stored events pay nothing, so
    /// this may say more than was written; never less).
    fn paid(&self) -> Paid {
        let mut paid = Paid::default();
        for (job, plan) in self.jobs.iter().zip(&self.plans) {
            if let Ok((_, plan, _)) = plan {
                let user = &job.facts.user_id;
                for c in plan.commissions.iter().filter(|c| c.amount > Decimal::ZERO) {
                    paid.pairs.insert((user.clone(), c.campaign_id.clone()));
                }
                for a in plan.attributions.iter().filter(|_| self.history) {
                    let key = (user.clone(), a.campaign_id.clone(), a.partner_id.clone());
                    paid.credited
                        .entry(key)
                        .or_default()
                        .push((job.facts.kind.clone(), job.facts.ts));
                }
            }
        }
        paid
    }

    /// Writes the batch; returns the `eventId`s that were new, or `None` when the batch
    /// left out the outbox rows and an endpoint subscribes after all (nothing written).
    ///
    /// Optimistic first: `BEGIN`, the events, every planned derived row and `COMMIT` in one
    /// round trip. A copy of an already stored event is skipped by `ON CONFLICT`, and if it
    /// had derived rows they fail on their foreign key to the event that was not written,
    /// which rolls the whole transaction back; then [`Batch::insert_carefully`] writes the
    /// batch again.
    async fn insert(&self, conn: &Object) -> Result<Option<HashSet<String>>, ApiError> {
        let (key, types) = (subscriptions::lock_key(self.schema), OUTBOX_TYPES.to_vec());
        let fence = self.fence(&key, &types);
        let event_stmts = self.events.statements();
        let mut stmts = fence.clone();
        stmts.extend(event_stmts.iter().cloned());
        stmts.extend(self.derived.iter().flat_map(Rows::statements));
        let out = send(conn, &stmts, true, true).await?;
        out.began?;
        let mut results = out.results.into_iter();
        let Some(new) = fenced_events(&mut results, fence.len(), event_stmts.len())? else {
            return Ok(None);
        };
        match results.find_map(Result::err) {
            None => {
                out.committed?;
                Ok(Some(new))
            }
            Some(e)
                if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION)
                    && new.len() < self.order.len() =>
            {
                tracing::debug!(
                    events = self.order.len(),
                    new = new.len(),
                    "a batch held copies of stored events; writing it again"
                );
                self.insert_carefully(conn, &fence).await
            }
            // Another writer priced a first event this batch priced too (its reads missed
            // that commit): the lane writes the jobs again alone, from fresh reads.
            Some(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(ApiError::unavailable(
                "a concurrent event of the same user was priced as the first; retry",
            )
            .with("retryable", true)),
            Some(e) => Err(e.into()),
        }
    }

    /// The statements before the events: the ones proving that nobody subscribes (for a
    /// batch without outbox rows), then the users' attribution locks.
    fn fence<'s>(&'s self, key: &'s i64, types: &'s (dyn ToSql + Sync)) -> Vec<Statement<'s>> {
        let mut stmts: Vec<Statement<'s>> = match self.outbox {
            true => Vec::new(),
            false => subscriptions::fence(self.schema, key, types).into(),
        };
        if !self.locks.is_empty() {
            stmts.push((store::LOCK_USERS.to_string(), vec![&self.locks]));
        }
        stmts
    }

    /// [`Batch::insert`] when some events were already stored: insert the events and learn
    /// which are new (round trip 1), then write only their derived rows and commit (2).
    async fn insert_carefully(
        &self,
        conn: &Object,
        fence: &[Statement<'_>],
    ) -> Result<Option<HashSet<String>>, ApiError> {
        let mut first = fence.to_vec();
        first.extend(self.events.statements());
        let out = send(conn, &first, true, false).await?;
        out.began?;
        let mut results = out.results.into_iter();
        let Some(new) = fenced_events(&mut results, fence.len(), usize::MAX)? else {
            return Ok(None);
        };
        let derived = self.derived_rows(|id| new.contains(id));
        let stmts: Vec<Statement> = derived.iter().flat_map(Rows::statements).collect();
        pipeline(conn, &stmts, false, true).await?;
        Ok(Some(new))
    }

    /// The derived rows of the events whose `eventId` is `wanted`.
    fn derived_rows(&self, wanted: impl Fn(&str) -> bool) -> Vec<Rows> {
        let items: Vec<(&EventFacts, &Plan)> = self
            .order
            .iter()
            .filter(|&&i| wanted(self.event_id(i)))
            .filter_map(|&i| {
                let (_, plan, _) = self.plans[i].as_ref().ok()?;
                Some((&self.jobs[i].facts, plan))
            })
            .collect();
        // First events inserted plainly: a concurrent writer's first of the same key fails
        // this batch, which is then written again job by job from fresh reads.
        store::derived_rows(self.schema, &items, true, self.outbox, "", self.rollups)
    }

    fn event_id(&self, i: usize) -> &str {
        &self.jobs[i].facts.event_id
    }

    /// Each job's answer once the batch committed: new events their own reply, copies the
    /// stored reply of the first (one read for all of them).
    async fn replies(&self, conn: &Object, new: &HashSet<String>) -> BatchResult<Written> {
        let taken: Vec<&str> = self
            .order
            .iter()
            .map(|&i| self.event_id(i))
            .filter(|id| !new.contains(*id))
            .collect();
        let mut stored = HashMap::new();
        if !taken.is_empty() {
            let sql = format!(
                "SELECT event_id, response FROM {}.events WHERE event_id = ANY($1::text[])",
                self.schema
            );
            let stmt = conn.prepare_cached(&sql).await?;
            for r in conn.query(&stmt, &[&taken]).await? {
                let reply = serde_json::to_vec(&r.get::<_, Value>(1)).unwrap_or_default();
                stored.insert(r.get::<_, String>(0), reply);
            }
        }
        let first_answer = |i: usize| -> Result<Written, ApiError> {
            match (&self.plans[i], new.contains(self.event_id(i))) {
                (Ok((_, _, response)), true) => Ok(Written::Created(response.clone())),
                _ => match stored.get(self.event_id(i)) {
                    Some(first) => Ok(Written::Replayed(first.clone())),
                    None => Err(ApiError::unavailable("concurrent event; retry")),
                },
            }
        };
        Ok((0..self.jobs.len())
            .map(|i| match self.plans[i] {
                Ok(_) => first_answer(i),
                Err(first) => match first_answer(first)? {
                    Written::Created(body) | Written::Replayed(body) => Ok(Written::Replayed(body)),
                },
            })
            .collect())
    }
}
