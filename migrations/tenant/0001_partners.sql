-- Per-tenant schema, applied to every tenant schema with search_path set to it.
-- Portable to Citus schema-based sharding: every table has a primary key, foreign keys stay
-- inside this schema, no triggers, one statement per query (the runner splits this file).

CREATE TABLE partners (
    id             text PRIMARY KEY,
    email          text NOT NULL,
    name           text NOT NULL,
    metadata       jsonb NOT NULL DEFAULT '{}'::jsonb,
    status         text NOT NULL CHECK (status IN ('invited', 'active', 'revoked')),
    activated_at   timestamptz,
    revoked_at     timestamptz,
    revoke_reason  text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Race-safe duplicate detection: inserts use ON CONFLICT (email) DO NOTHING.
CREATE UNIQUE INDEX partners_email_key ON partners (email);

CREATE INDEX partners_page_idx ON partners (created_at DESC, id DESC);

CREATE INDEX partners_status_page_idx ON partners (status, created_at DESC, id DESC);

-- Transactional outbox: every domain event is written here in the transaction that caused it;
-- the webhook delivery pipeline reads it.
CREATE TABLE outbox (
    id          text PRIMARY KEY,
    event_type  text NOT NULL,
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX outbox_created_idx ON outbox (created_at, id);

-- Outgoing mail. With SMTP configured a sender drains it; in dev mode it is the mailbox.
CREATE TABLE mail_outbox (
    id          text PRIMARY KEY,
    to_email    text NOT NULL,
    subject     text NOT NULL,
    body        text NOT NULL,
    purpose     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz
);

CREATE INDEX mail_outbox_page_idx ON mail_outbox (created_at DESC, id DESC);
