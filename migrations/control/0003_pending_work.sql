-- The pending-work set of the background jobs: one row per (tenant, job) with work due at
-- `due_at` (webhook retries and leases, auto-approve, campaign reminders, idempotency
-- cleanup, and the safety sweep itself under tenant_id '*'). Workers claim due rows with
-- `FOR UPDATE SKIP LOCKED` and a lease (`due_at` moved to the lease's end, `claimed_by`
-- set), so an idle worker reads one small index instead of polling every tenant schema.
-- No foreign key: the sweep's row names no tenant, and a row of a deleted tenant only
-- costs one empty pass. On Citus it stays on the coordinator with the rest of the control
-- plane; only background jobs write it (CITUS rule 6).

CREATE TABLE control.pending_work (
    tenant_id   text NOT NULL,
    job         text NOT NULL,
    due_at      timestamptz NOT NULL,
    claimed_by  text,
    PRIMARY KEY (tenant_id, job)
);

CREATE INDEX pending_work_due_idx ON control.pending_work (due_at);
