//! The background jobs' pending work across a drain (operate.md, "background jobs release
//! their leases"): what a draining worker holds but never started goes to another worker
//! at once, a pass still running keeps its claim, and a worker claims only what its queues
//! have room for. Each test has a cluster of its own (the shared stack's workers would
//! claim the rows) and holds a tenant's auto-approve pass with a table lock, so what runs
//! where is decided by the test, not by timing.

use crate::harness::{procs, *};
use serde_json::json;
use std::time::{Duration, Instant};

/// Worker settings: a pass that is not woken comes back only after minutes (auto-approve
/// interval, safety sweep), far beyond what the tests wait.
fn env(database_url: &str) -> Vec<(&str, &str)> {
    vec![
        ("DATABASE_URL", database_url),
        ("OP_DRAIN_SECS", "10"),
        ("OP_AUTO_APPROVE_INTERVAL_SECS", "300"),
        ("OP_JOB_SWEEP_SECS", "300"),
    ]
}

/// A tenant with an `autoApprove` campaign (no holdback) and, with `commission`, one accrued
/// commission that is due for approval: its id.
async fn auto_tenant(base: &str, commission: bool) -> (Tenant, String, Option<String>) {
    let t = Tenant::on(base).await;
    let c = t
        .campaign(json!({"autoApprove": true, "holdbackDays": 0}))
        .await;
    let mut id = None;
    if commission {
        let link = t.partner_link(&c.id).await;
        t.identified_click(&link, "u-1").await;
        let e = t
            .event(json!({"userId": "u-1", "type": "sale", "value": "10.00"}))
            .await
            .expect(201);
        id = Some(commission_of(&e.body));
    }
    (t, c.id, id)
}

fn commissions_of(t: &Tenant) -> String {
    format!("\"{}\".commissions", op_control::schema::schema_name(&t.id))
}

/// Holds `ACCESS EXCLUSIVE` locks on the commissions of `tenants` in a transaction of its
/// own connection: an auto-approve pass of those tenants waits at its first read of them.
async fn lock_commissions(database_url: &str, tenants: &[&Tenant]) -> tokio_postgres::Client {
    let conn = openpartner::connect(database_url).await.expect("connect");
    let tables: Vec<String> = tenants.iter().map(|t| commissions_of(t)).collect();
    conn.batch_execute(&format!(
        "BEGIN; LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
        tables.join(", ")
    ))
    .await
    .expect("lock");
    conn
}

/// Waits until a pass waits for the lock on the commissions of one of `tenants`: which one.
async fn blocked_pass(db: &tokio_postgres::Client, tenants: &[&Tenant]) -> String {
    poll(15, Duration::from_millis(20), || async {
        for t in tenants {
            let n: i64 = db
                .query_one(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = $1::text::regclass",
                    &[&commissions_of(t)],
                )
                .await
                .expect("pg_locks")
                .get(0);
            if n > 0 {
                return Ok(t.id.clone());
            }
        }
        Err("no pass waits for a tenant's commissions".to_string())
    })
    .await
}

async fn status_of(db: &tokio_postgres::Client, t: &Tenant, commission: &str) -> String {
    db.query_one(
        &format!("SELECT status FROM {} WHERE id = $1", commissions_of(t)),
        &[&commission],
    )
    .await
    .expect("commission")
    .get(0)
}

/// The tenant's auto-approve row of the pending-work set: (claimed_by, due_at).
async fn auto_approve_row(
    db: &tokio_postgres::Client,
    t: &Tenant,
) -> (Option<String>, chrono::DateTime<chrono::Utc>) {
    let r = db
        .query_one(
            "SELECT claimed_by, due_at FROM control.pending_work
              WHERE tenant_id = $1 AND job = 'auto_approve'",
            &[&t.id],
        )
        .await
        .expect("the tenant's auto-approve row");
    (r.get(0), r.get(1))
}

/// The worker ends its drain within `OP_DRAIN_SECS` and exits 0.
async fn exits_drained(worker: &mut procs::Proc) {
    let status = worker
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("exits within OP_DRAIN_SECS");
    assert!(status.success(), "{status:?}: {}", worker.log_text());
}

/// A second worker on the same database, not behind any gateway: it only claims pending
/// work. Returns once it runs.
async fn other_worker(env: &[(&str, &str)], logs: &procs::LogDir) -> procs::Proc {
    let (w, _) = procs::worker("jobs-b", env, &logs.file("b.log"));
    let start = Instant::now();
    while !w.log_text().contains("worker listening") {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{}",
            w.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w
}

/// The tenant's auto-approve row falls due: worker A claims it, and its pass waits for the
/// lock the returned connection holds. The row's lease.
async fn held_pass(
    db: &tokio_postgres::Client,
    database_url: &str,
    t: &Tenant,
) -> (tokio_postgres::Client, chrono::DateTime<chrono::Utc>) {
    // Once the campaign's own pass recorded its next visit (the row exists, not claimed).
    poll(10, Duration::from_millis(20), || async {
        let n: i64 = db
            .query_one(
                "SELECT count(*) FROM control.pending_work
                  WHERE tenant_id = $1 AND job = 'auto_approve' AND claimed_by IS NULL",
                &[&t.id],
            )
            .await
            .unwrap()
            .get(0);
        (n == 1)
            .then_some(())
            .ok_or("no auto-approve row for the tenant".to_string())
    })
    .await;
    let lock = lock_commissions(database_url, &[t]).await;
    db.execute(
        "UPDATE control.pending_work SET due_at = now() WHERE tenant_id = $1 AND job = 'auto_approve'",
        &[&t.id],
    )
    .await
    .unwrap();
    blocked_pass(db, &[t]).await;
    let (by, lease) = auto_approve_row(db, t).await;
    assert_eq!(by.as_deref(), Some("jobs-a"));
    (lock, lease)
}

/// A pass still running when its worker drains keeps its claim — no other worker is handed
/// the row to run beside it — and finishes it before the worker exits.
#[tokio::test]
async fn a_draining_worker_keeps_the_claim_of_a_pass_still_running() {
    let logs = procs::LogDir::new("jobs-running");
    let (pg, database_url) = procs::own_cluster(&logs).await;
    let env = env(&database_url);
    let mut a = procs::pair("jobs-a", &env, &logs).await;
    let db = openpartner::connect(&database_url).await.unwrap();
    let (t, _, commission) = auto_tenant(&a.base, true).await;
    let commission = commission.unwrap();
    assert_eq!(status_of(&db, &t, &commission).await, "accrued");
    let (lock, lease) = held_pass(&db, &database_url, &t).await;

    // Another worker is there to take whatever A hands back; A drains.
    let _b = other_worker(&env, &logs).await;
    a.worker.signal(libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    // The pass still runs: its row is still A's claim, untouched.
    assert_eq!(
        auto_approve_row(&db, &t).await,
        (Some("jobs-a".to_string()), lease),
        "the row of a running pass was handed to another worker"
    );

    // The pass goes on: A approves, finishes its claim (next visit in 300 s) and exits.
    lock.batch_execute("COMMIT").await.unwrap();
    exits_drained(&mut a.worker).await;
    assert_eq!(status_of(&db, &t, &commission).await, "approved");
    let (by, next) = auto_approve_row(&db, &t).await;
    assert_eq!(by, None);
    assert!(
        next > chrono::Utc::now() + chrono::Duration::seconds(200),
        "finished with the next visit: {next}"
    );
    drop(pg);
}

/// A worker claims no more rows than its queues have room for (64 tenants waiting), however
/// many are due: a claim does not wait in a local queue until its lease runs out and another
/// worker claims and runs the row a second time. The rest stay for other workers.
#[tokio::test]
async fn a_worker_claims_only_what_its_queues_have_room_for() {
    let logs = procs::LogDir::new("jobs-room");
    let (pg, database_url) = procs::own_cluster(&logs).await;
    let env = env(&database_url);
    let a = procs::pair("jobs-a", &env, &logs).await;
    let db = openpartner::connect(&database_url).await.unwrap();
    let (t, _, _) = auto_tenant(&a.base, false).await;
    let (lock, _) = held_pass(&db, &database_url, &t).await;

    // 100 rows fall due while A's auto-approve job is busy.
    let fake: Vec<String> = (0..100).map(|_| ulid::Ulid::new().to_string()).collect();
    db.execute(
        "INSERT INTO control.pending_work (tenant_id, job, due_at)
         SELECT unnest($1::text[]), 'auto_approve', now()",
        &[&fake],
    )
    .await
    .unwrap();
    let claimed = || async {
        column::<i64>(
            &db,
            "SELECT count(*) FILTER (WHERE claimed_by = 'jobs-a') FROM control.pending_work
              WHERE tenant_id = ANY($1)",
            &[&fake],
        )
        .await[0]
    };
    wait_until("A claims", 5, || async { claimed().await > 0 }).await;
    // Several more polls (one a second) while the job is still busy.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(claimed().await, 64, "claims beyond the queues' room");
    lock.batch_execute("COMMIT").await.unwrap();
    drop(pg);
}

/// Tenants a draining worker's job took but never started, woken by its own requests, are
/// handed to the pending-work set when the drain ends, and another worker runs them within
/// seconds (not at the next safety sweep or visit, minutes away).
#[tokio::test]
async fn work_a_draining_worker_took_but_never_started_runs_on_another_worker_at_once() {
    let logs = procs::LogDir::new("jobs-untaken");
    let (pg, database_url) = procs::own_cluster(&logs).await;
    let env = env(&database_url);
    let mut a = procs::pair("jobs-a", &env, &logs).await;
    let db = openpartner::connect(&database_url).await.unwrap();
    let (t0, c0, _) = auto_tenant(&a.base, false).await;
    let (t1, c1, k1) = auto_tenant(&a.base, true).await;
    let (t2, c2, k2) = auto_tenant(&a.base, true).await;
    let (k1, k2) = (k1.unwrap(), k2.unwrap());

    // A's auto-approve job is held in tenant 0's pass; campaign writes of tenants 1 and 2
    // queue both behind it (woken by A's own requests: no pending-work row is due).
    let lock0 = lock_commissions(&database_url, &[&t0]).await;
    let lock12 = lock_commissions(&database_url, &[&t1, &t2]).await;
    t0.patch_campaign(&c0, json!({"name": "C0"})).await;
    blocked_pass(&db, &[&t0]).await;
    t1.patch_campaign(&c1, json!({"name": "C1"})).await;
    t2.patch_campaign(&c2, json!({"name": "C2"})).await;
    let _b = other_worker(&env, &logs).await;
    // Tenant 0's pass ends; the job takes tenants 1 and 2 and the first one's pass waits.
    lock0.batch_execute("COMMIT").await.unwrap();
    let running = blocked_pass(&db, &[&t1, &t2]).await;

    // A drains while that pass runs; the pass then ends, and the other tenant, taken but
    // never started, is what A holds.
    a.worker.signal(libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let drained = Instant::now();
    lock12.batch_execute("COMMIT").await.unwrap();
    for (t, k) in [(&t1, &k1), (&t2, &k2)] {
        poll(10, Duration::from_millis(50), || async {
            match status_of(&db, t, k).await.as_str() {
                "approved" => Ok(()),
                s => Err(format!(
                    "the commission of {} ({}) is {s}",
                    t.id,
                    if t.id == running {
                        "the running pass"
                    } else {
                        "the untaken tenant"
                    }
                )),
            }
        })
        .await;
    }
    assert!(
        drained.elapsed() < Duration::from_secs(10),
        "{:?}",
        drained.elapsed()
    );
    exits_drained(&mut a.worker).await;
    drop(pg);
}

/// A request still in flight when its worker drains may wake a job after the job loops have
/// stopped: that work is handed over when the drain ends, and another worker runs it within
/// seconds.
#[tokio::test]
async fn work_woken_by_a_request_finished_during_the_drain_runs_on_another_worker() {
    let logs = procs::LogDir::new("jobs-late");
    let (pg, database_url) = procs::own_cluster(&logs).await;
    let env = env(&database_url);
    let mut a = procs::pair("jobs-a", &env, &logs).await;
    let db = openpartner::connect(&database_url).await.unwrap();
    let (t, campaign, commission) = auto_tenant(&a.base, true).await;
    let commission = commission.unwrap();
    // (The campaign's own pass is over: it recorded the next visit, minutes away.)
    wait_until("the campaign's pass recorded its next visit", 10, || async {
        !column::<i64>(
            &db,
            "SELECT 1::bigint FROM control.pending_work WHERE tenant_id = $1 AND job = 'auto_approve'",
            &[&t.id],
        )
        .await
        .is_empty()
    })
    .await;
    assert_eq!(status_of(&db, &t, &commission).await, "accrued");

    // A campaign write waits on a lock of the test's, in flight on A.
    let campaigns = format!("\"{}\".campaigns", op_control::schema::schema_name(&t.id));
    let lock = openpartner::connect(&database_url).await.unwrap();
    lock.batch_execute(&format!(
        "BEGIN; LOCK TABLE {campaigns} IN ACCESS EXCLUSIVE MODE"
    ))
    .await
    .unwrap();
    let write = {
        let api = t.api.clone();
        let path = format!("/campaigns/{campaign}");
        tokio::spawn(async move { api.patch(&path, json!({"name": "Late"})).await.code() })
    };
    wait_until("the write waits for the lock", 10, || async {
        column::<i64>(
            &db,
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = $1::text::regclass",
            &[&campaigns],
        )
        .await[0]
            > 0
    })
    .await;
    let _b = other_worker(&env, &logs).await;

    // A drains (its job loops stop at once); then the write goes through and wakes the
    // auto-approve job of the tenant on A.
    a.worker.signal(libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(500)).await;
    lock.batch_execute("COMMIT").await.unwrap();
    assert_eq!(write.await.unwrap(), 200, "{}", a.worker.log_text());
    exits_drained(&mut a.worker).await;
    // B approves, well before the next visit or sweep.
    poll(8, Duration::from_millis(50), || async {
        match status_of(&db, &t, &commission).await.as_str() {
            "approved" => Ok(()),
            s => Err(format!("the commission is {s}")),
        }
    })
    .await;
    drop(pg);
}
