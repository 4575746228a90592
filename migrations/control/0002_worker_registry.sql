-- The worker registry: workers started with OP_WORKER_ADVERTISE register here and heartbeat;
-- gateways with OP_WORKERS=registry route to the live ones (a heartbeat younger than 3
-- heartbeat intervals) and are woken by NOTIFY op_workers. One row per worker id
-- (OP_WORKER_ID); a restarted worker takes its row over.
-- On Citus it stays on the coordinator with the rest of the control plane.

CREATE TABLE control.workers (
    id                 text PRIMARY KEY,
    url                text NOT NULL,
    started_at         timestamptz NOT NULL,
    last_heartbeat_at  timestamptz NOT NULL,
    draining           boolean NOT NULL DEFAULT false
);

CREATE INDEX workers_heartbeat_idx ON control.workers (last_heartbeat_at);
