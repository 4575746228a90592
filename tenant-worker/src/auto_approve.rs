//! The auto-approve sweep: approves the accrued commissions of `autoApprove` campaigns whose
//! holdback has ended (`mature_at`), exactly as `POST /commissions/:id/approve` does
//! ([`commissions::apply`]: a ledger entry per commission, its open refund adjustments
//! following it, a `commission.approved` webhook event in the same transaction). The
//! ledger records the principal `system`.
//!
//! At most one worker sweeps a tenant at a time: each batch transaction first tries a
//! transaction-scoped advisory lock of that tenant (a statement of its own, CITUS rule 11)
//! and leaves the tenant to whoever holds it. Which tenants, and when, is the `jobs`
//! module's: a tenant with an `autoApprove` campaign is visited every
//! `OP_AUTO_APPROVE_INTERVAL_SECS` (default 900) through the pending-work set, and at once
//! after a campaign write; the others never.
//!
//! The scan has no index of its own (one on accrued commissions would cost every event
//! insert); it runs only for tenants with an `autoApprove` campaign, in batches.

use crate::{access::Principal, commissions, error::ApiError, sql::Schema, sql::Tx, App};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Commissions approved per transaction.
const BATCH: i64 = 100;

/// One tenant's pass, run by the `jobs` module when the tenant is due: approves what
/// matured, wakes the webhook pipeline for the `commission.approved` events, and returns
/// when to look again — in `OP_AUTO_APPROVE_INTERVAL_SECS` while the tenant has an
/// `autoApprove` campaign (a commission accrued meanwhile may mature by then), never
/// otherwise (a campaign write wakes the job again).
pub async fn pass(
    app: &Arc<App>,
    tenant_id: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    let approved = sweep_tenant(app, tenant_id).await?;
    if approved > 0 {
        tracing::info!(tenant_id = %tenant_id, approved, "auto-approved commissions");
        app.jobs.wake(tenant_id, crate::jobs::Job::Webhooks);
    }
    let schema = Schema::of_tenant(tenant_id).ok_or_else(ApiError::internal)?;
    let any: bool = app
        .pool
        .get()
        .await?
        .query_one(
            format!("SELECT {}", crate::campaigns::any_auto_approves(&schema)).as_str(),
            &[],
        )
        .await?
        .get(0);
    let every = chrono::Duration::seconds(app.config.auto_approve_interval_secs as i64);
    Ok(any.then(|| chrono::Utc::now() + every))
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
        let any: bool = tx
            .query_one(
                format!("SELECT {}", crate::campaigns::any_auto_approves(&schema)).as_str(),
                &[],
            )
            .await?
            .get(0);
        if !any {
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
