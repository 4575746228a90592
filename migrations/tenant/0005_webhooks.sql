-- Outbound webhooks: endpoints (secrets sealed at rest with OP_SECRETS_KEY), one delivery
-- per (endpoint, outbox event), and every attempt logged.

CREATE TABLE webhook_endpoints (
    id                        text PRIMARY KEY,
    url                       text NOT NULL,
    events                    text[] NOT NULL,
    label                     text,
    active                    boolean NOT NULL DEFAULT true,
    secret_sealed             bytea NOT NULL,
    previous_secret_sealed    bytea,
    previous_secret_until     timestamptz,
    failing_since             timestamptz,
    disabled_reason           text,
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX webhook_endpoints_page_idx ON webhook_endpoints (created_at DESC, id DESC);

CREATE TABLE webhook_deliveries (
    id               text PRIMARY KEY,
    endpoint_id      text NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id         text NOT NULL,
    event_type       text NOT NULL,
    payload          jsonb NOT NULL,
    status           text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    http_status      integer,
    error            text,
    latency_ms       integer,
    last_attempt_at  timestamptz,
    delivered_at     timestamptz,
    next_attempt_at  timestamptz,
    locked_until     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX webhook_deliveries_once_key ON webhook_deliveries (endpoint_id, event_id);

CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

CREATE INDEX webhook_deliveries_page_idx ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);

CREATE TABLE webhook_attempts (
    id           text PRIMARY KEY,
    delivery_id  text NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt      integer NOT NULL,
    http_status  integer,
    error        text,
    latency_ms   integer NOT NULL,
    worker_id    text,
    at           timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, attempt);

-- Fan-out marker: outbox rows not yet turned into deliveries.
ALTER TABLE outbox ADD COLUMN dispatched_at timestamptz;

CREATE INDEX outbox_pending_idx ON outbox (created_at, id) WHERE dispatched_at IS NULL;
