-- Reporting (specs/reporting.md): clicks enriched when they are written, and the per-day
-- click rollups that dashboards, time series, funnels and the overview read instead of
-- the raw clicks.

-- Where the click went and what it carried: the URL the router redirected to, the
-- router request's `utm_*` parameters, the visitor's country (ISO 3166-1 alpha-2, from a
-- header believed only from OP_TRUSTED_PROXIES), and device / browser / OS parsed from
-- the User-Agent once, at write time.
ALTER TABLE clicks ADD COLUMN landing_url text;

ALTER TABLE clicks ADD COLUMN utm_source text;

ALTER TABLE clicks ADD COLUMN utm_medium text;

ALTER TABLE clicks ADD COLUMN utm_campaign text;

ALTER TABLE clicks ADD COLUMN utm_term text;

ALTER TABLE clicks ADD COLUMN utm_content text;

ALTER TABLE clicks ADD COLUMN country text;

-- A named constraint of its own: Citus refuses a column added with an unnamed constraint.
ALTER TABLE clicks ADD CONSTRAINT clicks_country_check CHECK (country ~ '^[A-Z]{2}$');

ALTER TABLE clicks ADD COLUMN device text;

ALTER TABLE clicks ADD COLUMN browser text;

ALTER TABLE clicks ADD COLUMN os text;

-- Breakdowns read one partner's clicks of a window through this index.
CREATE INDEX clicks_partner_ts_idx ON clicks (partner_id, ts);

-- One row per (partner, UTC day, link): written in the click batch's own transaction (one
-- multi-row upsert per batch, keys sorted so concurrent batches never deadlock) and by
-- identify in its transaction. `clicks` are the unflagged clicks, `flagged_clicks` the
-- others; `identities` the identities stitched to the day's unflagged clicks (counted on
-- the click's day, so a funnel is a cohort of clicks).
CREATE TABLE click_rollups (
    partner_id      text NOT NULL,
    day             date NOT NULL,
    link_id         text NOT NULL,
    campaign_id     text NOT NULL,
    clicks          bigint NOT NULL DEFAULT 0,
    flagged_clicks  bigint NOT NULL DEFAULT 0,
    identities      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (partner_id, day, link_id)
);

-- The overview sums every partner's rows of a window.
CREATE INDEX click_rollups_day_idx ON click_rollups (day);

-- The event side of a partner's reports: its live attributions.
CREATE INDEX attributions_partner_idx ON attributions (partner_id, event_id) WHERE superseded_at IS NULL;
