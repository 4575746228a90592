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
//! A claim is made only while the local queues have room (fewer than [`CLAIM_LIMIT`]
//! claims waiting), so claims do not pile up behind local work. That bounds how many wait,
//! not how long: a claim still waiting when its [`LEASE`] ends (behind a long pass) may be
//! claimed and run by another worker as well — harmless, as every pass re-reads what is due
//! under its tenant's lock, but wasted work.
//!
//! The drain stops the claims and the jobs (each finishes the pass it is in, and puts the
//! tenants it took but did not start back in its queue); the server finishes its requests,
//! which may still wake jobs. Only then — the last step before exit — [`hand_back`] makes
//! what the queues hold due now in the pending-work set, claims this worker never started
//! included, and another worker runs it within a second. A pass still running at the drain
//! bound keeps its claim until the lease ends.

use crate::App;
use chrono::{DateTime, Utc};
use op_control::pending_work::{self, Claimed};
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};
use tokio::sync::Notify;

/// How often a worker claims due rows of the pending-work set.
pub const POLL: Duration = Duration::from_secs(1);
/// How long a claim is held before another worker may claim the row again.
pub const LEASE: Duration = Duration::from_secs(60);
/// The most claims waiting for a pass on this worker ([`Queues::claims_waiting`]) after a
/// poll: a poll claims only up to it, so claims do not wait in a long local queue until
/// their [`LEASE`] runs out and another worker claims the rows again.
const CLAIM_LIMIT: usize = 64;
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
    /// Claims taken out of a queue by a job ([`Queues::take`]) whose pass has not started.
    taken: AtomicUsize,
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
            let held = due.entry(tenant_id).or_default();
            // Already queued: keep a claim so it gets finished, and of two claims of the row
            // the newest — the row holds its lease; the older one's finish would miss it.
            if let Some(new) = claim {
                if held.as_ref().is_none_or(|old| old.lease <= new.lease) {
                    *held = Some(new);
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

    /// Everything queued for `job`, emptying its queue: a pass starts for each tenant as the
    /// job takes it from the [`Taken`]; what it leaves there (the drain broke its loop) goes
    /// back into the queue.
    pub fn take(&self, job: Job) -> Taken<'_> {
        let dues: Vec<Due> = {
            let mut queued = self.queues[job.index()].due.lock().expect("queue lock");
            // Counted as taken before the queue lets go of them: [`Queues::claims_waiting`]
            // may count a claim twice for a moment, never miss one.
            let claims = queued.values().filter(|c| c.is_some()).count();
            self.taken.fetch_add(claims, Ordering::SeqCst);
            queued
                .drain()
                .map(|(tenant_id, claim)| Due { tenant_id, claim })
                .collect()
        };
        Taken {
            queues: self,
            job,
            dues: dues.into_iter(),
        }
    }

    /// How many claims of the pending-work set wait for a pass on this worker: queued, or
    /// taken by a job whose pass for them has not started. The claimer claims only what
    /// the queues have room for. Tenants woken by this worker's own requests do not count:
    /// under request load they would fill the room and stop the claims (retries, leases,
    /// the safety sweep's own row) altogether.
    pub fn claims_waiting(&self) -> usize {
        let queued: usize = self
            .queues
            .iter()
            .map(|q| {
                let due = q.due.lock().expect("queue lock");
                due.values().filter(|c| c.is_some()).count()
            })
            .sum();
        queued + self.taken.load(Ordering::SeqCst)
    }

    /// Marks the pass of `due` under way, until [`Pass::ended`].
    pub fn pass_of(&self, job: Job, due: &Due) -> Pass<'_> {
        Pass {
            queues: self,
            job,
            woken: due.claim.is_none().then(|| due.tenant_id.clone()),
        }
    }

    /// Everything still queued, of every job, emptying the queues (the drain's end).
    fn take_all(&self) -> Vec<(Job, Due)> {
        Job::ALL
            .into_iter()
            .flat_map(|job| {
                self.queues[job.index()]
                    .due
                    .lock()
                    .expect("queue lock")
                    .drain()
                    .map(|(tenant_id, claim)| (job, Due { tenant_id, claim }))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// A pass under way ([`Queues::pass_of`]). Dropped before [`Pass::ended`] — its job was
/// aborted at the drain bound in the middle of it — a woken tenant goes back into the queue,
/// for [`hand_back`] to make due now; a claimed one keeps its claim until the lease ends
/// (the row holds it; nothing else would).
pub struct Pass<'a> {
    queues: &'a Queues,
    job: Job,
    woken: Option<String>,
}

impl Pass<'_> {
    /// The pass ran to its end (and recorded what it found).
    pub fn ended(mut self) {
        self.woken = None;
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        if let Some(tenant_id) = self.woken.take() {
            self.queues.wake(&tenant_id, self.job);
        }
    }
}

/// The tenants a job took out of its queue; iterating starts their passes one by one.
/// Dropped before the end (the job's loop broke off at the drain), it puts the tenants it
/// still holds back into the queue, claims included, for the drain to hand back.
pub struct Taken<'a> {
    queues: &'a Queues,
    job: Job,
    dues: std::vec::IntoIter<Due>,
}

impl Iterator for Taken<'_> {
    type Item = Due;

    fn next(&mut self) -> Option<Due> {
        let due = self.dues.next()?;
        if due.claim.is_some() {
            self.queues.taken.fetch_sub(1, Ordering::SeqCst);
        }
        Some(due)
    }
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        for due in self.dues.by_ref() {
            let claimed = due.claim.is_some();
            self.queues.push(due.tenant_id, self.job, due.claim);
            if claimed {
                self.queues.taken.fetch_sub(1, Ordering::SeqCst);
            }
        }
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

/// Runs `pass` for every tenant queued for `job` until the drain starts (the pass under way
/// is finished; the tenants taken but not started go back into the queue, for
/// [`hand_back`]); `pass` returns when the tenant has more of this work due (None: nothing
/// known).
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
            // The drain first: tenants a broken-off loop put back make `ready` ready at once.
            tokio::select! {
                biased;
                _ = app.drain.started() => break,
                _ = app.jobs.ready(job) => {}
            }
            for due in app.jobs.take(job) {
                let under_way = app.jobs.pass_of(job, &due);
                match pass(app.clone(), due.tenant_id.clone()).await {
                    Ok(next) => done(&app, job, &due, next).await,
                    Err(e) => {
                        tracing::warn!(tenant_id = %due.tenant_id, job = job.name(), error = %e.detail, "background job: tenant pass failed");
                        failed(&app, job, &due).await;
                    }
                }
                under_way.ended();
                if app.drain.is_draining() {
                    break;
                }
            }
        }
    })
}

/// The claimer: every [`POLL`], claims due rows of the pending-work set into the queues —
/// as many as they have room for below [`CLAIM_LIMIT`] — and runs the safety sweep when its
/// row is due. It stops at the drain; what is still queued then is handed back by
/// [`hand_back`], once nothing can queue more.
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
            let room = CLAIM_LIMIT.saturating_sub(app.jobs.claims_waiting());
            if room == 0 {
                continue;
            }
            let lease = Utc::now() + chrono::Duration::from_std(LEASE).expect("small");
            let claimed =
                match pending_work::claim(&app.pool, &app.config.worker_id, room as i64, lease)
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

/// The drain's last step, once the job tasks and the server have ended (nothing can queue
/// more): what the queues still hold — tenants woken by this worker's requests, claims it
/// made but never started, a job loop's untaken tenants — is due now in the pending-work
/// set, for the other workers' next claim (within [`POLL`]). A claimed row is given back
/// only while it still holds this claim: a pass still running (the drain bound cut it off)
/// keeps its row until its lease ends, so no other worker runs it beside it.
pub async fn hand_back(app: &App) {
    let now = Utc::now();
    let (mut woken, mut claimed) = (Vec::new(), Vec::new());
    for (job, due) in app.jobs.take_all() {
        match due.claim {
            Some(claim) => claimed.push(claim),
            None => woken.push((due.tenant_id, job.name(), now)),
        }
    }
    if let Err(e) = pending_work::schedule(&app.pool, &woken).await {
        tracing::warn!(error = %e, "pending work: cannot hand back the queued work");
    }
    match pending_work::release(&app.pool, &app.config.worker_id, &claimed).await {
        Ok(n) => tracing::info!(
            woken = woken.len(),
            released = n,
            "pending work: queued work handed back"
        ),
        Err(e) => tracing::warn!(error = %e, "pending work: cannot release the claims"),
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
                        {auto_approve} AS a,
                        EXISTS (SELECT 1 FROM {s}.campaigns WHERE ends_at > now() AND end_reminder_for IS DISTINCT FROM ends_at) AS r,
                        EXISTS (SELECT 1 FROM {s}.idempotency_keys WHERE created_at < now() - interval '{retention}') AS i) x
                      WHERE w OR a OR r OR i",
                    retention = crate::idempotency::RETENTION,
                    auto_approve = crate::campaigns::any_auto_approves(&s),
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

    fn claim(tenant: &str, lease_secs: i64) -> Claimed {
        Claimed {
            tenant_id: tenant.into(),
            job: Job::Webhooks.name().into(),
            lease: DateTime::from_timestamp(lease_secs, 0).unwrap(),
        }
    }

    fn take(q: &Queues, job: Job) -> Vec<Due> {
        q.take(job).collect()
    }

    #[test]
    fn a_queue_holds_a_tenant_once_and_keeps_its_claim() {
        let q = Queues::default();
        q.wake("A", Job::Webhooks);
        q.push("A".into(), Job::Webhooks, Some(claim("A", 100)));
        q.wake("A", Job::Webhooks);
        q.wake("B", Job::AutoApprove);
        assert_eq!(q.claims_waiting(), 1, "A's claim; B was woken here");
        let due = take(&q, Job::Webhooks);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].tenant_id, "A");
        assert!(due[0].claim.is_some(), "the claim is finished by the pass");
        assert!(take(&q, Job::Webhooks).is_empty());
        assert_eq!(take(&q, Job::AutoApprove).len(), 1);
        assert_eq!(q.claims_waiting(), 0);
    }

    #[test]
    fn a_row_claimed_again_while_queued_keeps_the_newest_claim() {
        let q = Queues::default();
        q.push("A".into(), Job::Webhooks, Some(claim("A", 100)));
        q.push("A".into(), Job::Webhooks, Some(claim("A", 200)));
        // Out of order (cannot happen from one claimer, but the row holds the later lease).
        q.push("A".into(), Job::Webhooks, Some(claim("A", 150)));
        q.wake("A", Job::Webhooks);
        let due = take(&q, Job::Webhooks);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].claim.as_ref().unwrap().lease.timestamp(), 200);
    }

    #[test]
    fn taken_tenants_count_as_waiting_until_started_and_untaken_ones_go_back() {
        let q = Queues::default();
        for t in ["A", "B", "C"] {
            q.push(t.into(), Job::AutoApprove, Some(claim(t, 100)));
        }
        q.wake("D", Job::Reminders);
        assert_eq!(q.claims_waiting(), 3, "D was woken here, not claimed");
        let mut taken = q.take(Job::AutoApprove);
        assert_eq!(q.claims_waiting(), 3, "taken, not started");
        let first = taken.next().expect("one");
        assert_eq!(q.claims_waiting(), 2, "A pass started");
        // Meanwhile B (or C) is claimed again, with a newer lease.
        let other = ["A", "B", "C"]
            .into_iter()
            .find(|t| *t != first.tenant_id)
            .unwrap();
        q.push(other.into(), Job::AutoApprove, Some(claim(other, 300)));
        // The loop breaks off (the drain): the two untaken go back, claims kept, the
        // newest claim winning.
        drop(taken);
        assert_eq!(q.claims_waiting(), 2);
        let mut back = take(&q, Job::AutoApprove);
        back.sort_by(|a, b| a.tenant_id.cmp(&b.tenant_id));
        assert_eq!(back.len(), 2);
        assert!(back.iter().all(|d| d.tenant_id != first.tenant_id));
        for d in &back {
            let lease = d.claim.as_ref().expect("claim kept").lease.timestamp();
            assert_eq!(lease, if d.tenant_id == other { 300 } else { 100 });
        }
        let all = q.take_all();
        assert_eq!(all.len(), 1);
        assert_eq!(
            (all[0].0, all[0].1.tenant_id.as_str()),
            (Job::Reminders, "D")
        );
        assert_eq!(q.claims_waiting(), 0);
    }

    #[test]
    fn a_woken_pass_cut_off_goes_back_and_a_claimed_one_keeps_its_claim() {
        let q = Queues::default();
        q.wake("W", Job::Webhooks);
        q.push("C".into(), Job::Webhooks, Some(claim("C", 100)));
        let dues = take(&q, Job::Webhooks);
        for due in &dues {
            drop(q.pass_of(Job::Webhooks, due)); // cut off: never ended
        }
        let back = take(&q, Job::Webhooks);
        assert_eq!(
            back.len(),
            1,
            "only the woken tenant: the claim is the row's"
        );
        assert_eq!(
            (back[0].tenant_id.as_str(), back[0].claim.is_none()),
            ("W", true)
        );
        q.pass_of(Job::Webhooks, &back[0]).ended();
        assert!(
            take(&q, Job::Webhooks).is_empty(),
            "an ended pass leaves nothing"
        );
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
