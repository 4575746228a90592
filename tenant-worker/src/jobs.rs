//! When the background jobs run, and for which tenant: no job polls every tenant.
//!
//! Three sources put a (tenant, job) into a job's queue:
//! 1. **This worker's own writes**: after a write request of a tenant succeeds, the webhook
//!    pipeline is woken for that tenant at once (its outbox rows committed before the
//!    reply), and a campaign write wakes the auto-approve and reminder jobs ([`after_write`]).
//!    Requests of a tenant reach the worker that rendezvous hashing ranks first, so that is
//!    the worker that has the work; nothing is written to the database for it.
//! 2. **The pending-work set** (`control.pending_work`, [`op_control::pending_work`]): work
//!    due later — a webhook retry, a delivery lease that may run out, the next auto-approve
//!    or reminder time, expired idempotency keys. Every [`POLL`] each worker claims due rows
//!    (`FOR UPDATE SKIP LOCKED`, a lease of [`LEASE`]), runs them, and finishes the claim
//!    with the next due time the pass found. One worker runs a claimed (tenant, job); a
//!    worker that dies leaves its rows to be claimed when their lease ends.
//! 3. **The safety sweep**: every `OP_JOB_SWEEP_SECS` (default 300) one worker (it claims
//!    the sweep's own row) asks every active tenant schema, 200 at a time in one `UNION
//!    ALL` query (CITUS rule 9), whether it has work of each kind, and schedules what it
//!    finds. It covers what the first two miss: a worker killed between a commit and its
//!    pass, work written by an older version, new idempotency keys.
//!
//! An idle worker therefore runs one indexed query per second, whatever the tenant count.
//! The drain stops the claims; the jobs finish their passes; what a queue still holds and
//! the rows this worker claimed are handed back to the pending-work set, due now.

use crate::App;
use chrono::{DateTime, Utc};
use op_control::pending_work::{self, Claimed};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::sync::Notify;

/// How often a worker claims due rows of the pending-work set.
pub const POLL: Duration = Duration::from_secs(1);
/// How long a claim is held before another worker may claim the row again.
pub const LEASE: Duration = Duration::from_secs(60);
/// Rows claimed per poll.
const CLAIM_LIMIT: i64 = 64;
/// Tenant schemas per query of the safety sweep.
const SWEEP_CHUNK: usize = 200;
/// The lowest tenant schema version the sweep asks about (`campaigns.auto_approve`, the
/// newest column its query reads).
const SWEEP_SCHEMA_VERSION: i32 = 11;
/// How soon a failed pass is tried again.
const RETRY_FAILED: Duration = Duration::from_secs(5);

/// A background job that runs per tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Job {
    Webhooks,
    AutoApprove,
    Reminders,
    IdempotencyCleanup,
}

impl Job {
    pub const ALL: [Job; 4] = [
        Job::Webhooks,
        Job::AutoApprove,
        Job::Reminders,
        Job::IdempotencyCleanup,
    ];

    /// The name in `control.pending_work.job`.
    pub fn name(self) -> &'static str {
        match self {
            Job::Webhooks => "webhooks",
            Job::AutoApprove => "auto_approve",
            Job::Reminders => "campaign_reminders",
            Job::IdempotencyCleanup => "idempotency_cleanup",
        }
    }

    fn from_name(name: &str) -> Option<Job> {
        Job::ALL.into_iter().find(|j| j.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The job name of the safety sweep's row.
const SWEEP: &str = "sweep";

/// What a job's queue holds for one tenant: run it, and (when it came from the pending-work
/// set) finish that claim.
pub struct Due {
    pub tenant_id: String,
    pub claim: Option<Claimed>,
}

/// The queues of this worker's jobs.
#[derive(Default)]
pub struct Queues {
    queues: [Queue; 4],
}

#[derive(Default)]
struct Queue {
    due: Mutex<HashMap<String, Option<Claimed>>>,
    notify: Notify,
}

impl Queues {
    /// Puts `job` of `tenant_id` in its queue now.
    pub fn wake(&self, tenant_id: &str, job: Job) {
        self.push(tenant_id.to_string(), job, None);
    }

    fn push(&self, tenant_id: String, job: Job, claim: Option<Claimed>) {
        let q = &self.queues[job.index()];
        {
            let mut due = q.due.lock().expect("queue lock");
            match due.get_mut(&tenant_id) {
                // Already queued: keep the claim so it gets finished.
                Some(held) => {
                    if held.is_none() {
                        *held = claim;
                    }
                }
                None => {
                    due.insert(tenant_id, claim);
                }
            }
        }
        q.notify.notify_one();
    }

    /// Waits until `job` has something queued (or returns at once if it has).
    pub async fn ready(&self, job: Job) {
        let q = &self.queues[job.index()];
        if !q.due.lock().expect("queue lock").is_empty() {
            return;
        }
        q.notify.notified().await;
    }

    /// Everything queued for `job`, emptying its queue.
    pub fn take(&self, job: Job) -> Vec<Due> {
        let q = &self.queues[job.index()];
        q.due
            .lock()
            .expect("queue lock")
            .drain()
            .map(|(tenant_id, claim)| Due { tenant_id, claim })
            .collect()
    }
}

/// After a successful write request of `tenant_id` on the route `pattern`: wake what may
/// have work because of it.
pub fn after_write(app: &App, tenant_id: &str, pattern: &str) {
    app.jobs.wake(tenant_id, Job::Webhooks);
    if pattern.starts_with("/campaigns") || pattern.starts_with("/programs") {
        app.jobs.wake(tenant_id, Job::AutoApprove);
        app.jobs.wake(tenant_id, Job::Reminders);
    }
}

/// Records `job` of `tenant_id` as due at `at` in the pending-work set: whichever worker
/// claims it then (the claimer polls every [`POLL`]) runs it. No timer of our own beside
/// it: that would run the pass twice, and pile up sleeping tasks under failing deliveries.
pub async fn schedule(app: &Arc<App>, tenant_id: &str, job: Job, at: DateTime<Utc>) {
    if let Err(e) =
        pending_work::schedule(&app.pool, &[(tenant_id.to_string(), job.name(), at)]).await
    {
        tracing::warn!(error = %e, job = job.name(), "pending work: cannot schedule");
    }
}

/// Ends a pass: finishes its claim with the next due time, or (a pass woken on this worker)
/// schedules that time if there is one.
pub async fn done(app: &Arc<App>, job: Job, due: &Due, next: Option<DateTime<Utc>>) {
    let result = match &due.claim {
        Some(claim) => pending_work::finish(&app.pool, claim, next).await,
        None => match next {
            Some(at) => {
                pending_work::schedule(&app.pool, &[(due.tenant_id.clone(), job.name(), at)]).await
            }
            None => Ok(()),
        },
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, job = job.name(), "pending work: cannot finish a pass");
    }
}

/// A pass that failed: tried again soon (by whichever worker claims it).
pub async fn failed(app: &Arc<App>, job: Job, due: &Due) {
    let again = Utc::now() + chrono::Duration::from_std(RETRY_FAILED).expect("small");
    done(app, job, due, Some(again)).await;
}

/// Runs `pass` for every tenant queued for `job` until the drain starts; `pass` returns
/// when the tenant has more of this work due (None: nothing known).
pub fn spawn_job<F>(app: Arc<App>, job: Job, pass: F) -> tokio::task::JoinHandle<()>
where
    F: Fn(
            Arc<App>,
            String,
        ) -> futures::future::BoxFuture<
            'static,
            Result<Option<DateTime<Utc>>, crate::error::ApiError>,
        > + Send
        + 'static,
{
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = app.jobs.ready(job) => {}
                _ = app.drain.started() => break,
            }
            for due in app.jobs.take(job) {
                match pass(app.clone(), due.tenant_id.clone()).await {
                    Ok(next) => done(&app, job, &due, next).await,
                    Err(e) => {
                        tracing::warn!(tenant_id = %due.tenant_id, job = job.name(), error = %e.detail, "background job: tenant pass failed");
                        failed(&app, job, &due).await;
                    }
                }
                if app.drain.is_draining() {
                    break;
                }
            }
        }
    })
}

/// The claimer: every [`POLL`], claims due rows of the pending-work set into the queues
/// (and runs the safety sweep when its row is due). At the drain it stops, and hands back
/// whatever was queued or claimed.
pub fn spawn(app: Arc<App>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // The sweep's row exists from the first start on, due at once: a fresh deployment
        // (or the first start after the upgrade from polling jobs) looks at every tenant.
        ensure_sweep(&app).await;
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = app.drain.started() => break,
            }
            let lease = Utc::now() + chrono::Duration::from_std(LEASE).expect("small");
            let claimed =
                match pending_work::claim(&app.pool, &app.config.worker_id, CLAIM_LIMIT, lease)
                    .await
                {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "pending work: claim failed");
                        continue;
                    }
                };
            for c in claimed {
                if c.job == SWEEP {
                    let app = app.clone();
                    // The sweep runs beside the claims (it may take seconds at 10k tenants).
                    tokio::spawn(async move { sweep(&app, c).await });
                    continue;
                }
                // A job this version does not know (a newer one wrote it) is left alone: its
                // claim runs out and a worker that knows it takes it.
                if let Some(job) = Job::from_name(&c.job) {
                    app.jobs.push(c.tenant_id.clone(), job, Some(c));
                }
            }
        }
        hand_back(&app).await;
    })
}

/// Creates the sweep's row, due now, unless it exists.
async fn ensure_sweep(app: &App) {
    let result = async {
        let conn = app.pool.get().await?;
        conn.execute(
            "INSERT INTO control.pending_work (tenant_id, job, due_at) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id, job) DO NOTHING",
            &[&pending_work::NO_TENANT, &SWEEP, &Utc::now()],
        )
        .await?;
        Ok::<_, crate::error::ApiError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e.detail, "pending work: cannot set up the sweep");
    }
}

/// The drain's part: the tenants still queued become due now in the pending-work set, and
/// the rows this worker claimed are released.
async fn hand_back(app: &App) {
    let now = Utc::now();
    let mut due = Vec::new();
    for job in Job::ALL {
        for d in app.jobs.take(job) {
            due.push((d.tenant_id, job.name(), now));
        }
    }
    if let Err(e) = pending_work::schedule(&app.pool, &due).await {
        tracing::warn!(error = %e, "pending work: cannot hand back the queued work");
    }
    if let Err(e) = pending_work::release(&app.pool, &app.config.worker_id).await {
        tracing::warn!(error = %e, "pending work: cannot release the claims");
    }
}

/// The safety sweep: every active tenant schema, a chunk per query; what has work is
/// scheduled due now. Then the sweep's row comes back in `OP_JOB_SWEEP_SECS`.
async fn sweep(app: &Arc<App>, claim: Claimed) {
    let started = std::time::Instant::now();
    let found = sweep_tenants(app).await;
    let every = chrono::Duration::seconds(app.config.job_sweep_secs as i64);
    let next = match &found {
        Ok(n) => {
            tracing::info!(
                tenants_with_work = n,
                ms = started.elapsed().as_millis() as u64,
                "background jobs: safety sweep done"
            );
            Utc::now() + every
        }
        Err(e) => {
            tracing::warn!(error = %e.detail, "background jobs: safety sweep failed");
            Utc::now() + chrono::Duration::from_std(RETRY_FAILED).expect("small")
        }
    };
    if let Err(e) = pending_work::finish(&app.pool, &claim, Some(next)).await {
        tracing::warn!(error = %e, "pending work: cannot finish the sweep");
    }
}

async fn sweep_tenants(app: &Arc<App>) -> Result<usize, crate::error::ApiError> {
    // A connection of its own, closed after the sweep: the backend that read every tenant
    // schema holds catalog cache entries for all of them, and a pooled connection would
    // carry that memory into the requests it serves afterwards.
    let conn = op_control::db::connect(&app.config.database_url)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "background jobs: the sweep cannot connect");
            crate::error::ApiError::internal()
        })?;
    let tenants: Vec<String> = conn
        .query(
            "SELECT id FROM control.tenants WHERE status = 'active' AND schema_version >= $1 ORDER BY id",
            &[&SWEEP_SCHEMA_VERSION],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut found = 0;
    for chunk in tenants.chunks(SWEEP_CHUNK) {
        let parts: Vec<String> = chunk
            .iter()
            .filter_map(|id| Some((id, op_control::schema::Schema::of_tenant(id)?)))
            // No parameters: through Citus, a parameter shared by the parts of a
            // cross-schema UNION ALL cannot be planned.
            .map(|(id, s)| {
                format!(
                    "SELECT * FROM (SELECT '{id}'::text,
                        EXISTS (SELECT 1 FROM {s}.outbox WHERE dispatched_at IS NULL)
                          OR EXISTS (SELECT 1 FROM {s}.webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= now()
                                       AND (locked_until IS NULL OR locked_until < now())) AS w,
                        EXISTS (SELECT 1 FROM {s}.campaigns WHERE auto_approve) AS a,
                        EXISTS (SELECT 1 FROM {s}.campaigns WHERE ends_at > now() AND end_reminder_for IS DISTINCT FROM ends_at) AS r,
                        EXISTS (SELECT 1 FROM {s}.idempotency_keys WHERE created_at < now() - interval '{retention}') AS i) x
                      WHERE w OR a OR r OR i",
                    retention = crate::idempotency::RETENTION
                )
            })
            .collect();
        if parts.is_empty() {
            continue;
        }
        let rows = conn.query(parts.join(" UNION ALL ").as_str(), &[]).await?;
        let now = Utc::now();
        // Work waiting now (deliveries, expired keys) is due now; the timed jobs only get a
        // row if they have none: the time their own pass chose (the auto-approve interval,
        // a reminder's date) stays.
        let (mut due, mut timed) = (Vec::new(), Vec::new());
        for r in &rows {
            let id: String = r.get(0);
            for (col, job, is_timed) in [
                (1, Job::Webhooks, false),
                (2, Job::AutoApprove, true),
                (3, Job::Reminders, true),
                (4, Job::IdempotencyCleanup, false),
            ] {
                if r.get::<_, bool>(col) {
                    let into = if is_timed { &mut timed } else { &mut due };
                    into.push((id.clone(), job.name(), now));
                }
            }
        }
        found += rows.len();
        pending_work::schedule(&app.pool, &due).await?;
        pending_work::ensure(&app.pool, &timed).await?;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(tenant: &str) -> Claimed {
        Claimed {
            tenant_id: tenant.into(),
            job: Job::Webhooks.name().into(),
            lease: Utc::now(),
        }
    }

    #[test]
    fn a_queue_holds_a_tenant_once_and_keeps_its_claim() {
        let q = Queues::default();
        q.wake("A", Job::Webhooks);
        q.push("A".into(), Job::Webhooks, Some(claim("A")));
        q.wake("A", Job::Webhooks);
        q.wake("B", Job::AutoApprove);
        let due = q.take(Job::Webhooks);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].tenant_id, "A");
        assert!(due[0].claim.is_some(), "the claim is finished by the pass");
        assert!(q.take(Job::Webhooks).is_empty());
        assert_eq!(q.take(Job::AutoApprove).len(), 1);
    }

    #[test]
    fn job_names_round_trip() {
        for j in Job::ALL {
            assert_eq!(Job::from_name(j.name()), Some(j));
            assert_eq!(Job::ALL[j.index()], j);
        }
        assert_eq!(Job::from_name(SWEEP), None);
    }

    #[tokio::test]
    async fn ready_returns_once_something_is_queued() {
        let q = std::sync::Arc::new(Queues::default());
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move { q.ready(Job::Reminders).await })
        };
        tokio::task::yield_now().await;
        q.wake("A", Job::Reminders);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .unwrap();
        // Already queued: at once.
        tokio::time::timeout(Duration::from_secs(1), q.ready(Job::Reminders))
            .await
            .expect("at once");
    }
}
