-- Reporting, part 2 (specs/reporting.md): the event-side and money rollups, so that no
-- report reads a partner's attributions, events or commissions of a window. Every row is
-- written in the transaction of what it counts (reporting/rollups.rs): the event lane's
-- batch (one multi-row upsert per table, keys sorted), refunds, rederive, identify's
-- backlog and every commission transition. Upserts add deltas (`SET x = t.x +
-- excluded.x`), so concurrent writers commute, and they are the last statements of their
-- transactions, in one table order with sorted keys, so they never deadlock.

-- One row per (partner, event day, link, campaign, currency) of the live attributions.
-- An event touching several of a partner's links is counted once per link
-- (`link_events`), once per campaign (`campaign_leads`, `campaign_sales`: the credit goes
-- to its first link in the campaign), once per partner (`events`, `leads`, `sales`: its
-- first link of the partner) and once per tenant (`tenant_events`: its first (partner,
-- link)), so each level's distinct count is a plain sum. `revenue` = Σ value × weight and
-- `refunded` = Σ (the event's refunds) × weight, exact (rounded only when read); the day
-- is the event's (for `refunded` too: the refunded event's day).
CREATE TABLE event_rollups (
    partner_id      text NOT NULL,
    day             date NOT NULL,
    link_id         text NOT NULL,
    campaign_id     text NOT NULL,
    currency        text NOT NULL,
    events          bigint NOT NULL DEFAULT 0,
    leads           bigint NOT NULL DEFAULT 0,
    sales           bigint NOT NULL DEFAULT 0,
    campaign_leads  bigint NOT NULL DEFAULT 0,
    campaign_sales  bigint NOT NULL DEFAULT 0,
    link_events     bigint NOT NULL DEFAULT 0,
    tenant_events   bigint NOT NULL DEFAULT 0,
    revenue         numeric NOT NULL DEFAULT 0,
    refunded        numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (partner_id, day, link_id, campaign_id, currency)
);

-- The overview sums every partner's rows of a window.
CREATE INDEX event_rollups_day_idx ON event_rollups (day);

-- The funnel's distinct users: per (partner, event day, user) the user's attributed lead
-- and sale events; a window's signups are its distinct users with `leads > 0`.
CREATE TABLE user_rollups (
    partner_id  text NOT NULL,
    day         date NOT NULL,
    user_id     text NOT NULL,
    leads       bigint NOT NULL DEFAULT 0,
    sales       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (partner_id, day, user_id)
);

-- Commission amounts per (partner, accrual day, campaign, currency) and status: a
-- commission adds its amount under its status when it is written, and every transition
-- moves it from one status to the other (its accrual day never changes).
CREATE TABLE commission_rollups (
    partner_id   text NOT NULL,
    day          date NOT NULL,
    campaign_id  text NOT NULL,
    currency     text NOT NULL,
    accrued      numeric NOT NULL DEFAULT 0,
    approved     numeric NOT NULL DEFAULT 0,
    paid         numeric NOT NULL DEFAULT 0,
    reversed     numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (partner_id, day, campaign_id, currency)
);

CREATE INDEX commission_rollups_day_idx ON commission_rollups (day);
