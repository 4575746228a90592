-- The money path, part 1: campaigns and links, clicks, identities, conversion events,
-- attributions and the commissions they price; plus stored Idempotency-Key replies.
-- Clicks, identities and events are raw and immutable; attributions and commissions are
-- derived and can be re-derived (superseded attributions stay, reversed commissions stay).

CREATE TABLE campaigns (
    id                         text PRIMARY KEY,
    name                       text NOT NULL,
    destination_url            text NOT NULL,
    commission_rule            jsonb NOT NULL,
    attribution_model          text NOT NULL CHECK (attribution_model IN ('last_click', 'first_click', 'linear', 'position')),
    attribution_window_days    integer NOT NULL CHECK (attribution_window_days BETWEEN 1 AND 365),
    holdback_days              integer NOT NULL DEFAULT 0 CHECK (holdback_days BETWEEN 0 AND 365),
    deep_link_allowed_domains  text[] NOT NULL DEFAULT '{}',
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX campaigns_page_idx ON campaigns (created_at DESC, id DESC);

CREATE TABLE links (
    id               text PRIMARY KEY,
    link_key         text NOT NULL,
    partner_id       text NOT NULL REFERENCES partners (id),
    campaign_id      text NOT NULL REFERENCES campaigns (id),
    destination_url  text,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX links_link_key_key ON links (link_key);

CREATE INDEX links_partner_page_idx ON links (partner_id, created_at DESC, id DESC);

-- No foreign keys on the hot insert path beyond the link: a click is one index lookup + one row.
CREATE TABLE clicks (
    id           text PRIMARY KEY,
    link_id      text NOT NULL REFERENCES links (id),
    partner_id   text NOT NULL,
    campaign_id  text NOT NULL,
    ip_hash      text,
    user_agent   text,
    referer      text,
    fraud_flag   text CHECK (fraud_flag IN ('revoked', 'velocity')),
    ts           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE identities (
    id          text PRIMARY KEY,
    click_id    text NOT NULL REFERENCES clicks (id),
    user_id     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX identities_click_user_key ON identities (click_id, user_id);

CREATE INDEX identities_user_idx ON identities (user_id, created_at);

CREATE TABLE events (
    id                  text PRIMARY KEY,
    event_id            text NOT NULL,
    user_id             text NOT NULL,
    type                text NOT NULL,
    value               numeric,
    currency            text NOT NULL,
    metadata            jsonb NOT NULL DEFAULT '{}'::jsonb,
    ts                  timestamptz NOT NULL,
    refund_of           text,
    attribution_status  text NOT NULL,
    response            jsonb NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);

-- The client's eventId makes ingestion idempotent: INSERT ... ON CONFLICT (event_id) DO NOTHING.
CREATE UNIQUE INDEX events_event_id_key ON events (event_id);

CREATE INDEX events_user_idx ON events (user_id, ts);

CREATE INDEX events_refund_of_idx ON events (refund_of) WHERE refund_of IS NOT NULL;

CREATE TABLE attributions (
    id             text PRIMARY KEY,
    event_id       text NOT NULL REFERENCES events (id),
    model          text NOT NULL,
    click_id       text NOT NULL REFERENCES clicks (id),
    partner_id     text NOT NULL,
    campaign_id    text NOT NULL,
    weight         numeric NOT NULL CHECK (weight > 0 AND weight <= 1),
    created_at     timestamptz NOT NULL DEFAULT now(),
    superseded_at  timestamptz
);

CREATE UNIQUE INDEX attributions_touch_key ON attributions (event_id, model, click_id);

CREATE TABLE commissions (
    id                     text PRIMARY KEY,
    attribution_id         text REFERENCES attributions (id),
    event_id               text NOT NULL REFERENCES events (id),
    client_event_id        text NOT NULL,
    user_id                text NOT NULL,
    partner_id             text NOT NULL,
    campaign_id            text NOT NULL,
    amount                 numeric NOT NULL,
    currency               text NOT NULL,
    status                 text NOT NULL CHECK (status IN ('accrued', 'approved', 'paid', 'reversed')),
    holdback_days          integer NOT NULL DEFAULT 0,
    accrued_at             timestamptz NOT NULL DEFAULT now(),
    mature_at              timestamptz NOT NULL,
    approved_at            timestamptz,
    paid_at                timestamptz,
    reversed_at            timestamptz,
    reverse_reason         text,
    payout_id              text,
    refund_of              text,
    adjusts_commission_id  text REFERENCES commissions (id),
    created_at             timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX commissions_page_idx ON commissions (accrued_at DESC, id DESC);

CREATE INDEX commissions_partner_idx ON commissions (partner_id, accrued_at DESC, id DESC);

CREATE INDEX commissions_event_idx ON commissions (event_id);

CREATE INDEX commissions_user_campaign_idx ON commissions (user_id, campaign_id);

-- Stripe-style Idempotency-Key: the first reply to (key) is replayed for 24 hours.
CREATE TABLE idempotency_keys (
    key           text PRIMARY KEY,
    request_hash  bytea NOT NULL,
    status        integer,
    headers       jsonb,
    body          bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz
);
