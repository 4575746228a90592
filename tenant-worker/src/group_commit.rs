//! Group commit: concurrent writes of one tenant share one transaction.
//!
//! The hot writes (clicks, conversion events) cost the database far more per commit and per
//! statement than per row: a commit is a WAL flush and every statement a round trip, a
//! parse/bind/execute and a wake-up of a backend. [`Lanes`] gives every tenant a lane per
//! kind of write; a request hands its job to the lane and waits. The lane takes whatever
//! jobs are waiting (at most [`MAX_BATCH`]) and writes them together — one lookup, one
//! multi-row insert per table, one commit — then answers each job. Nothing waits for a
//! batch to fill: under light load a batch is one job and costs what a direct write would;
//! under load, jobs pile up while the previous batch commits, so batches grow exactly when
//! it pays. A lane has `in_flight` batches going at a time. Where jobs are independent
//! (clicks) they simply overlap. Where a job's outcome can depend on jobs written before it
//! (events: the first-payment rule), batches still overlap, and a batch whose plan touches
//! the plan of the batch ahead waits for that batch's commit and takes what it committed
//! into account ([`Turn`]): exact, as if the jobs had been written one after the other.
//!
//! "2xx = committed" holds: a job's answer is sent only after its batch committed. A
//! batch runs in its own task, so a caller that hangs up does not cancel other callers'
//! writes. When a batch fails as a whole (nothing of it committed), each of its jobs is
//! retried alone, so one poisonous job fails only its own request.
//!
//! How a batch travels to the database (pipelines, multi-row inserts) is [`crate::sql`]'s.

use crate::{error::ApiError, sql::Schema};
use deadpool_postgres::Pool;
use futures::future::BoxFuture;
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};

/// Most jobs in one batch.
pub const MAX_BATCH: usize = 128;
/// Jobs waiting in one lane before submitters wait too (backpressure).
const QUEUE: usize = 4 * MAX_BATCH;
/// An unused lane's task ends after this long.
const IDLE: Duration = Duration::from_secs(30);

/// The result of writing one batch: a result per job, in job order, or `Err` when the batch
/// failed as a whole and nothing of it was committed.
pub type BatchResult<O> = Result<Vec<Result<O, ApiError>>, ApiError>;

/// Writes one batch of jobs of one tenant. Returns only after the batch committed or was
/// rolled back.
pub type WriteFn<J, O, C> =
    for<'a> fn(&'a Pool, &'a Schema, &'a [J], &'a Turn<C>) -> BoxFuture<'a, BatchResult<O>>;

type Pending<J, O> = (J, oneshot::Sender<Result<O, ApiError>>);

/// One lane per tenant for one kind of write. `C` is what a batch hands on to the next one
/// through their [`Turn`]s (nothing, for lanes of independent jobs).
pub struct Lanes<J, O, C = ()> {
    inner: Arc<Inner<J, O, C>>,
}

struct Inner<J, O, C> {
    name: &'static str,
    in_flight: usize,
    idle: Duration,
    pool: Pool,
    write: WriteFn<J, O, C>,
    lanes: Mutex<HashMap<Schema, mpsc::Sender<Pending<J, O>>>>,
}

/// A batch's place in its lane's order, for lanes whose jobs can depend on jobs written
/// before them. A batch reads, then — only if its plan could depend on the batch ahead —
/// [`Turn::wait`]s: for that batch's plan, and, if the plans touch, for its commit. It
/// announces its own plan ([`Turn::planned`]) before it writes and says when it has
/// [`Turn::committed`]. Batches that do not touch write at the same time.
///
/// Such a lane keeps `in_flight` at 2, and a batch ends (frees its slot) only after the one
/// ahead of it ended: so when a batch starts reading, every batch but the one just ahead has
/// ended and is visible to its reads, and that one is covered by its announced plan.
pub struct Turn<C> {
    ahead: Option<watch::Receiver<Stage<C>>>,
    mine: watch::Sender<Stage<C>>,
    committed: AtomicBool,
}

/// How far a batch has got.
enum Stage<C> {
    Reading,
    /// What the batch will hand on if it commits.
    Planned(Arc<C>),
    Ended {
        committed: bool,
        plan: Option<Arc<C>>,
    },
}

/// What a batch learns from [`Turn::wait`].
pub enum Before<C> {
    /// Nothing ahead of this batch can change its plan: its reads stand.
    Nothing,
    /// The batch ahead committed this plan, which this batch's reads may have missed.
    Committed(Arc<C>),
    /// The batch ahead failed (or was written job by job) and has ended: read again.
    Unknown,
}

impl<C> Turn<C> {
    fn new(ahead: Option<watch::Receiver<Stage<C>>>) -> (Turn<C>, watch::Receiver<Stage<C>>) {
        let (mine, rx) = watch::channel(Stage::Reading);
        let turn = Turn {
            ahead,
            mine,
            committed: AtomicBool::new(false),
        };
        (turn, rx)
    }

    /// A turn with nothing ahead and nobody waiting (a job retried alone).
    fn solo() -> Turn<C> {
        Turn::new(None).0
    }

    /// Waits until this batch may write, given the plan of the batch ahead: `depends` says
    /// whether this batch's plan could change by it.
    pub async fn wait(&self, depends: impl Fn(&C) -> bool) -> Before<C> {
        let Some(ahead) = &self.ahead else {
            return Before::Nothing;
        };
        let mut ahead = ahead.clone();
        let plan = {
            let Ok(stage) = ahead.wait_for(|s| !matches!(s, Stage::Reading)).await else {
                return Before::Unknown;
            };
            match &*stage {
                Stage::Reading => unreachable!("waited for a later stage"),
                Stage::Planned(plan) => plan.clone(),
                Stage::Ended {
                    committed: true,
                    plan: Some(plan),
                } => match depends(plan) {
                    true => return Before::Committed(plan.clone()),
                    false => return Before::Nothing,
                },
                Stage::Ended { .. } => return Before::Unknown,
            }
        };
        if !depends(&plan) {
            return Before::Nothing;
        }
        let committed = match ahead.wait_for(|s| matches!(s, Stage::Ended { .. })).await {
            Ok(stage) => matches!(
                &*stage,
                Stage::Ended {
                    committed: true,
                    ..
                }
            ),
            Err(_) => false,
        };
        match committed {
            true => Before::Committed(plan),
            false => Before::Unknown,
        }
    }

    /// Announces what this batch will hand on if it commits; call before writing.
    pub fn planned(&self, plan: C) {
        self.mine.send_replace(Stage::Planned(Arc::new(plan)));
    }

    /// This batch committed what it announced.
    pub fn committed(&self) {
        self.committed.store(true, Ordering::Release);
    }

    /// Ends the turn once the batch ahead has ended.
    async fn end(self) {
        if let Some(mut ahead) = self.ahead {
            // An error means the batch ahead is gone (its task ended): ended all the same.
            let _ = ahead.wait_for(|s| matches!(s, Stage::Ended { .. })).await;
        }
        let plan = match &*self.mine.borrow() {
            Stage::Planned(plan) => Some(plan.clone()),
            _ => None,
        };
        self.mine.send_replace(Stage::Ended {
            committed: self.committed.load(Ordering::Acquire),
            plan,
        });
    }
}

impl<J: Send + Sync + 'static, O: Send + 'static, C: Send + Sync + 'static> Lanes<J, O, C> {
    pub fn new(
        name: &'static str,
        in_flight: usize,
        pool: Pool,
        write: WriteFn<J, O, C>,
    ) -> Lanes<J, O, C> {
        Lanes {
            inner: Arc::new(Inner {
                name,
                in_flight: in_flight.max(1),
                idle: IDLE,
                pool,
                write,
                lanes: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Writes `job` in the next batch of `schema`'s lane; returns once that batch committed.
    pub async fn submit(&self, schema: &Schema, job: J) -> Result<O, ApiError> {
        let (tx, rx) = oneshot::channel();
        let mut pending = (job, tx);
        loop {
            let lane = self.lane(schema);
            match lane.send(pending).await {
                Ok(()) => break,
                // The lane retired between our lookup and our send: take a fresh one.
                Err(mpsc::error::SendError(back)) => {
                    pending = back;
                    let mut lanes = self.inner.lanes.lock().unwrap_or_else(|e| e.into_inner());
                    if lanes.get(schema).is_some_and(|l| l.same_channel(&lane)) {
                        lanes.remove(schema);
                    }
                }
            }
        }
        rx.await.map_err(|_| {
            tracing::error!(lane = self.inner.name, "a batch ended without answering");
            ApiError::unavailable("the write was interrupted; retry")
        })?
    }

    fn lane(&self, schema: &Schema) -> mpsc::Sender<Pending<J, O>> {
        let mut lanes = self.inner.lanes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = lanes.get(schema) {
            return l.clone();
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        lanes.insert(schema.clone(), tx.clone());
        tokio::spawn(run_lane(self.inner.clone(), schema.clone(), rx));
        tx
    }
}

async fn run_lane<J: Send + Sync + 'static, O: Send + 'static, C: Send + Sync + 'static>(
    inner: Arc<Inner<J, O, C>>,
    schema: Schema,
    mut rx: mpsc::Receiver<Pending<J, O>>,
) {
    let slots = Arc::new(Semaphore::new(inner.in_flight));
    // The stage of the batch started last: the next batch's batch ahead.
    let mut last: Option<watch::Receiver<Stage<C>>> = None;
    loop {
        let first = match tokio::time::timeout(inner.idle, rx.recv()).await {
            Ok(Some(job)) => job,
            Ok(None) => return,
            Err(_idle) => {
                {
                    let mut lanes = inner.lanes.lock().unwrap_or_else(|e| e.into_inner());
                    if !rx.is_empty() {
                        continue;
                    }
                    lanes.remove(&schema);
                }
                // Submitters still holding this lane's sender now fail to send and take a
                // new lane; whatever they sent before the close is written here.
                rx.close();
                let mut rest = Vec::new();
                while let Ok(job) = rx.try_recv() {
                    rest.push(job);
                }
                if !rest.is_empty() {
                    let (turn, _) = Turn::new(last.take());
                    write_batch(&inner, &schema, rest, turn).await;
                }
                return;
            }
        };
        // Waiting for a slot is what lets the next batch fill up.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (turn, stage) = Turn::new(last.take());
        last = Some(stage);
        let (inner, schema) = (inner.clone(), schema.clone());
        tokio::spawn(async move {
            write_batch(&inner, &schema, batch, turn).await;
            drop(slot);
        });
    }
}

/// A job written alone, again from fresh reads while it fails in a way that may pass when
/// tried again (a concurrent writer won a race it read too early for), a few times at most.
async fn write_alone<J, O, C>(
    inner: &Inner<J, O, C>,
    schema: &Schema,
    job: &J,
) -> Result<O, ApiError> {
    const ATTEMPTS: usize = 3;
    let mut attempt = 1;
    loop {
        let alone = Turn::solo();
        let one = (inner.write)(&inner.pool, schema, std::slice::from_ref(job), &alone).await;
        match one {
            Ok(mut r) if r.len() == 1 => return r.remove(0),
            Ok(_) => return Err(ApiError::internal()),
            Err(e) if e.is_retryable() && attempt < ATTEMPTS => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Writes `batch`, answers its jobs and ends its turn. A batch that failed is written job
/// by job before its turn ends (the next batch, if it depends on it, reads again).
async fn write_batch<J, O, C>(
    inner: &Inner<J, O, C>,
    schema: &Schema,
    batch: Vec<Pending<J, O>>,
    turn: Turn<C>,
) {
    let (jobs, replies): (Vec<J>, Vec<_>) = batch.into_iter().unzip();
    let outcome = (inner.write)(&inner.pool, schema, &jobs, &turn).await;
    let results = match outcome {
        Ok(results) if results.len() == jobs.len() => results,
        Ok(_) => {
            tracing::error!(
                lane = inner.name,
                "a batch answered the wrong number of jobs"
            );
            jobs.iter().map(|_| Err(ApiError::internal())).collect()
        }
        Err(e) if jobs.len() == 1 && !e.is_retryable() => vec![Err(e)],
        Err(e) => {
            tracing::warn!(lane = inner.name, jobs = jobs.len(), error = %e.detail, "batch failed; writing its jobs one by one");
            // The batch's turn has not ended: a batch that depends on it waits for these.
            let mut results = Vec::with_capacity(jobs.len());
            for job in &jobs {
                results.push(write_alone(inner, schema, job).await);
            }
            results
        }
    };
    for (reply, result) in replies.into_iter().zip(results) {
        let _ = reply.send(result); // the caller may have hung up; the write stands
    }
    turn.end().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn tenant() -> Schema {
        Schema::of_tenant(&ulid::Ulid::new().to_string()).unwrap()
    }

    static LARGEST_BATCH: AtomicUsize = AtomicUsize::new(0);
    static BATCHES: AtomicUsize = AtomicUsize::new(0);

    /// A batch fails as a whole if it holds a negative job; the others are doubled. Slow
    /// enough that submitters pile up behind a batch.
    fn double<'a>(
        _: &'a Pool,
        _: &'a Schema,
        jobs: &'a [i64],
        _: &'a Turn<()>,
    ) -> BoxFuture<'a, BatchResult<i64>> {
        Box::pin(async move {
            LARGEST_BATCH.fetch_max(jobs.len(), Ordering::SeqCst);
            BATCHES.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            if jobs.iter().any(|j| *j < 0) {
                return Err(ApiError::invalid_body("negative"));
            }
            Ok(jobs.iter().map(|j| Ok(j * 2)).collect())
        })
    }

    #[tokio::test]
    async fn concurrent_jobs_share_batches_and_a_poisonous_job_fails_alone() {
        // The pool is never used by `double` (nor connected: deadpool connects lazily).
        let pool = op_control::db::pool("postgres://nobody@127.0.0.1:1/none", 1).unwrap();
        let lanes = Arc::new(Lanes::new("test", 1, pool, double));
        let (t1, t2) = (tenant(), tenant());
        let results = futures::future::join_all((0..200i64).map(|i| {
            let (lanes, t1) = (lanes.clone(), t1.clone());
            let job = if i == 150 { -1 } else { i };
            async move { (job, lanes.submit(&t1, job).await) }
        }))
        .await;
        for (job, r) in results {
            match job {
                -1 => assert_eq!(r.unwrap_err().code, crate::error::ErrorCode::InvalidBody),
                j => assert_eq!(r.unwrap(), j * 2, "every job gets its own answer"),
            }
        }
        assert!(
            LARGEST_BATCH.load(Ordering::SeqCst) > 1,
            "jobs were batched"
        );
        assert!(
            BATCHES.load(Ordering::SeqCst) < 200,
            "fewer writes than jobs, retries included"
        );
        // Another tenant has its own lane.
        assert_eq!(lanes.submit(&t2, 21).await.unwrap(), 42);
    }

    #[tokio::test]
    async fn idle_lanes_retire_and_come_back_on_demand() {
        let pool = op_control::db::pool("postgres://nobody@127.0.0.1:1/none", 1).unwrap();
        let mut lanes = Lanes::new("test", 2, pool, double);
        Arc::get_mut(&mut lanes.inner).unwrap().idle = Duration::from_millis(50);
        let t = tenant();
        assert_eq!(lanes.submit(&t, 1).await.unwrap(), 2);
        assert_eq!(lanes.inner.lanes.lock().unwrap().len(), 1);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            lanes.inner.lanes.lock().unwrap().len(),
            0,
            "the idle lane retired"
        );
        assert_eq!(
            lanes.submit(&t, 2).await.unwrap(),
            4,
            "and a new one serves"
        );
    }

    /// Polls `f` briefly: whether it finished (then its output).
    async fn finishes<T>(f: tokio::task::JoinHandle<T>) -> Result<T, tokio::task::JoinHandle<T>> {
        tokio::time::sleep(Duration::from_millis(30)).await;
        match f.is_finished() {
            true => Ok(f.await.unwrap()),
            false => Err(f),
        }
    }

    #[tokio::test]
    async fn a_batch_waits_only_for_a_plan_it_depends_on() {
        let (first, first_stage) = Turn::<Vec<u32>>::new(None);
        let (independent, _) = Turn::new(Some(first_stage.clone()));
        let (dependent, _) = Turn::new(Some(first_stage));
        let independent = tokio::spawn(async move {
            matches!(independent.wait(|p| p.contains(&9)).await, Before::Nothing)
        });
        let dependent = tokio::spawn(async move {
            match dependent.wait(|p| p.contains(&2)).await {
                Before::Committed(plan) => Some((*plan).clone()),
                _ => None,
            }
        });
        // Nobody can decide before the batch ahead has planned.
        let independent = finishes(independent).await.expect_err("waits for the plan");
        first.planned(vec![1, 2]);
        // A plan that does not touch this batch's: write at once, no wait for the commit.
        assert!(finishes(independent)
            .await
            .expect("did not wait for the commit"));
        // One that does: wait for the commit and take its plan into account.
        let dependent = finishes(dependent).await.expect_err("waits for the commit");
        first.committed();
        first.end().await;
        assert_eq!(dependent.await.unwrap(), Some(vec![1, 2]));
    }

    #[tokio::test]
    async fn a_failed_batch_ahead_means_read_again_and_turns_end_in_order() {
        let (first, first_stage) = Turn::<Vec<u32>>::new(None);
        let (second, second_stage) = Turn::new(Some(first_stage));
        first.planned(vec![1]);
        let waiting = tokio::spawn(async move {
            let before = second.wait(|p| p.contains(&1)).await;
            assert!(
                matches!(before, Before::Unknown),
                "ahead failed: read again"
            );
            second.committed();
            second.end().await;
        });
        let mut second_stage = second_stage;
        // The second batch cannot end before the first did (slots are freed in order).
        let waiting = finishes(waiting).await.expect_err("first still running");
        assert!(matches!(*second_stage.borrow(), Stage::Reading));
        first.end().await; // not committed: failed
        waiting.await.unwrap();
        let ended = second_stage
            .wait_for(|s| matches!(s, Stage::Ended { .. }))
            .await
            .map(|s| {
                matches!(
                    *s,
                    Stage::Ended {
                        committed: true,
                        ..
                    }
                )
            })
            .unwrap();
        assert!(ended);
        // Nothing ahead: nothing to wait for.
        assert!(matches!(
            Turn::<Vec<u32>>::solo().wait(|_| true).await,
            Before::Nothing
        ));
    }
}
