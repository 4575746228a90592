//! The pending-work set of the background jobs (`control.pending_work`): which tenant has
//! which job due when. Workers [`claim`] due rows (a lease: the row's `due_at` moves to the
//! lease's end, so a worker that dies mid-pass leaves the row to be claimed again), run the
//! tenant's pass and [`finish`] (the row goes, or comes back at the next due time the pass
//! found). Anything that learns of future work [`schedule`]s it; an earlier time wins. A
//! draining worker [`release`]s the claims it made and never started.
//!
//! Only background jobs write here, never a request (CITUS rule 6). Times are computed in
//! Rust and bound, except the claim's `due_at <= now()`.

use crate::ControlError;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

/// The tenant id of rows that name no tenant (the safety sweep's own row).
pub const NO_TENANT: &str = "*";

/// One claimed row: run `job` for `tenant_id`, then [`finish`] with `lease`.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub tenant_id: String,
    pub job: String,
    /// The `due_at` the claim set (its lease's end): [`finish`] deletes the row only if it
    /// still holds this value, i.e. nobody scheduled something earlier meanwhile.
    pub lease: DateTime<Utc>,
}

const SCHEDULE: &str = "INSERT INTO control.pending_work (tenant_id, job, due_at)
     SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
     ON CONFLICT (tenant_id, job) DO UPDATE
        SET due_at = LEAST(pending_work.due_at, EXCLUDED.due_at), claimed_by = NULL";

/// Records that `job` of each tenant is due at its time (an earlier time already recorded
/// stays). One statement for the lot. A row some worker holds is taken out of its claim, so
/// that claim's [`finish`] leaves it: work scheduled during a pass is never finished away
/// (at worst it is looked at when the lease would have ended, earlier than needed).
pub async fn schedule(
    db: &Pool,
    due: &[(String, &str, DateTime<Utc>)],
) -> Result<(), ControlError> {
    write(db, SCHEDULE, due).await
}

/// Records `job` of each tenant as due at its time only where nothing is recorded yet: a
/// time the job's own pass chose (an interval, a reminder's date) stays.
pub async fn ensure(db: &Pool, due: &[(String, &str, DateTime<Utc>)]) -> Result<(), ControlError> {
    write(db, ENSURE, due).await
}

const ENSURE: &str = "INSERT INTO control.pending_work (tenant_id, job, due_at)
     SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
     ON CONFLICT (tenant_id, job) DO NOTHING";

async fn write(
    db: &Pool,
    sql: &str,
    due: &[(String, &str, DateTime<Utc>)],
) -> Result<(), ControlError> {
    if due.is_empty() {
        return Ok(());
    }
    let mut tenants = Vec::with_capacity(due.len());
    let mut jobs = Vec::with_capacity(due.len());
    let mut times = Vec::with_capacity(due.len());
    // One row per key in a statement (ON CONFLICT cannot touch a row twice).
    let mut seen = std::collections::HashMap::new();
    for (t, j, at) in due {
        let e = seen.entry((t.as_str(), *j)).or_insert(*at);
        if *at < *e {
            *e = *at;
        }
    }
    for ((t, j), at) in seen {
        tenants.push(t.to_string());
        jobs.push(j.to_string());
        times.push(at);
    }
    let conn = db.get().await?;
    conn.execute(sql, &[&tenants, &jobs, &times]).await?;
    Ok(())
}

/// Claims up to `limit` due rows for `worker` until `lease_until`.
pub async fn claim(
    db: &Pool,
    worker: &str,
    limit: i64,
    lease_until: DateTime<Utc>,
) -> Result<Vec<Claimed>, ControlError> {
    let conn = db.get().await?;
    let rows = conn
        .query(
            "UPDATE control.pending_work p SET due_at = $2, claimed_by = $1
              WHERE (p.tenant_id, p.job) IN (
                    SELECT tenant_id, job FROM control.pending_work
                     WHERE due_at <= now() ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED)
              RETURNING p.tenant_id, p.job, p.due_at",
            &[&worker, &lease_until, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Claimed {
            tenant_id: r.get(0),
            job: r.get(1),
            lease: r.get(2),
        })
        .collect())
}

/// Ends a claim in one statement: the row goes — or, when the pass found more work for
/// later, moves to `next` — unless someone scheduled work meanwhile (the row is no longer
/// claimed, see [`schedule`]) or the lease ran out and another claim took it; then `next`
/// is merged into the row as any schedule is.
pub async fn finish(
    db: &Pool,
    claimed: &Claimed,
    next: Option<DateTime<Utc>>,
) -> Result<(), ControlError> {
    let key: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
        [&claimed.tenant_id, &claimed.job, &claimed.lease];
    let conn = db.get().await?;
    let ended = match next {
        None => {
            conn.execute(
                "DELETE FROM control.pending_work
                  WHERE tenant_id = $1 AND job = $2 AND due_at = $3 AND claimed_by IS NOT NULL",
                &key,
            )
            .await?
        }
        Some(at) => {
            conn.execute(
                "UPDATE control.pending_work SET due_at = $4, claimed_by = NULL
                  WHERE tenant_id = $1 AND job = $2 AND due_at = $3 AND claimed_by IS NOT NULL",
                &[key[0], key[1], key[2], &at],
            )
            .await?
        }
    };
    drop(conn);
    if let (0, Some(at)) = (ended, next) {
        schedule(db, &[(claimed.tenant_id.clone(), claimed.job.as_str(), at)]).await?;
    }
    Ok(())
}

/// Gives back the rows of `claims` (the drain: claims `worker` made and never started), due
/// now, for the other workers. A row is given back only while it still holds that claim
/// (`claimed_by` and the lease both match): a row another claim took since, or one whose
/// pass this worker is still running (not in `claims`), stays as it is.
pub async fn release(db: &Pool, worker: &str, claims: &[Claimed]) -> Result<u64, ControlError> {
    if claims.is_empty() {
        return Ok(0);
    }
    let tenants: Vec<&str> = claims.iter().map(|c| c.tenant_id.as_str()).collect();
    let jobs: Vec<&str> = claims.iter().map(|c| c.job.as_str()).collect();
    let leases: Vec<DateTime<Utc>> = claims.iter().map(|c| c.lease).collect();
    let conn = db.get().await?;
    Ok(conn
        .execute(
            "UPDATE control.pending_work p SET due_at = $2, claimed_by = NULL
               FROM unnest($3::text[], $4::text[], $5::timestamptz[]) AS c(tenant_id, job, lease)
              WHERE p.tenant_id = c.tenant_id AND p.job = c.job AND p.due_at = c.lease
                AND p.claimed_by = $1",
            &[&worker, &Utc::now(), &tenants, &jobs, &leases],
        )
        .await?)
}
