//! The auto-approve sweep: every `OP_AUTO_APPROVE_INTERVAL_SECS` (default 900), each worker
//! walks the tenants and approves the accrued commissions of `autoApprove` campaigns whose
//! holdback has ended (`mature_at`), exactly as `POST /commissions/:id/approve` does
//! ([`commissions::apply`]: a ledger entry per commission, its open refund adjustments
//! following it, a `commission.approved` webhook event in the same transaction). The
//! ledger records the principal `system`.
//!
//! At most one worker sweeps a tenant at a time: each batch transaction first tries a
//! transaction-scoped advisory lock of that tenant (a statement of its own, CITUS rule 11)
//! and leaves the tenant to whoever holds it. Tenants are walked like the other background
//! jobs do (`webhooks::delivery`, the idempotency sweeper): the active tenants of the
//! control plane, one schema at a time (CITUS rule 9).
//!
//! The scan has no index of its own (one on accrued commissions would cost every event
//! insert); it runs only for tenants with an `autoApprove` campaign, in batches.

use crate::{access::Principal, commissions, error::ApiError, sql::Schema, sql::Tx, App};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The migration that added `campaigns.auto_approve`: tenants below it are skipped.
const SCHEMA_VERSION: i32 = 11;
/// Commissions approved per transaction.
const BATCH: i64 = 100;

/// Starts the sweep on this worker.
pub fn spawn(app: Arc<App>) -> tokio::task::JoinHandle<()> {
    let every = std::time::Duration::from_secs(app.config.auto_approve_interval_secs);
    crate::drain::every(app, every, |app| {
        Box::pin(async move {
            if let Err(e) = sweep(&app).await {
                tracing::warn!(error = %e.detail, "auto-approve sweep failed");
            }
        })
    })
}

async fn sweep(app: &App) -> Result<(), ApiError> {
    let tenants: Vec<String> = {
        let conn = app.pool.get().await?;
        conn.query(
            "SELECT id FROM control.tenants WHERE status = 'active' AND schema_version >= $1 ORDER BY id",
            &[&SCHEMA_VERSION],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect()
    };
    for id in tenants {
        match sweep_tenant(app, &id).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(tenant_id = %id, approved = n, "auto-approved commissions"),
            Err(e) => {
                tracing::warn!(tenant_id = %id, error = %e.detail, "auto-approve: tenant sweep failed")
            }
        }
    }
    Ok(())
}

/// The advisory lock key of a tenant's sweep.
fn lock_key(tenant_id: &str) -> i64 {
    let d = Sha256::digest(format!("auto-approve:{tenant_id}").as_bytes());
    i64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// Approves what is due in one tenant, a batch per transaction. Returns how many
/// commissions it approved (their adjustments not counted).
pub async fn sweep_tenant(app: &App, tenant_id: &str) -> Result<u64, ApiError> {
    let schema = Schema::of_tenant(tenant_id).ok_or_else(ApiError::internal)?;
    let mut approved = 0;
    loop {
        let tx = Tx::begin(&app.pool, &schema).await?;
        let locked: bool = tx
            .query_one(
                "SELECT pg_try_advisory_xact_lock($1)",
                &[&lock_key(tenant_id)],
            )
            .await?
            .get(0);
        if !locked {
            // Another worker sweeps this tenant now.
            return Ok(approved);
        }
        let any = tx
            .query_opt("SELECT 1 FROM campaigns WHERE auto_approve LIMIT 1", &[])
            .await?;
        if any.is_none() {
            return Ok(approved);
        }
        let due: Vec<String> = tx
            .query(
                "SELECT cm.id FROM commissions cm JOIN campaigns cp ON cp.id = cm.campaign_id
                  WHERE cp.auto_approve AND cm.status = 'accrued' AND cm.adjusts_commission_id IS NULL
                    AND cm.mature_at <= now()
                  ORDER BY cm.id LIMIT $1 FOR UPDATE OF cm SKIP LOCKED",
                &[&BATCH],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut this_batch = 0;
        for id in &due {
            // An inner error (not approvable after all, say) leaves that one as it is.
            if commissions::apply(&tx, id, "approved", &Principal::System, None)
                .await?
                .is_ok()
            {
                this_batch += 1;
            }
        }
        tx.commit().await?;
        approved += this_batch;
        // A short batch was the last; one that approved nothing would come back the same.
        if (due.len() as i64) < BATCH || this_batch == 0 {
            return Ok(approved);
        }
    }
}
