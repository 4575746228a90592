-- Program access and the campaign schedule (issue 16).
--
-- Access: a campaign open to all partners (`grant_to_all_partners`, the default, today's
-- behaviour) needs no row per partner: it reaches every partner that follows open campaigns
-- (`partners.open_campaigns`, true unless the partner was created with an explicit list of
-- campaigns), and every partner created before it was opened (`opened_at`). `partner_programs`
-- holds the exceptions: explicit grants, and removals (`removed_at`), which win over the
-- open default. So existing tenants need no backfill (INSERT … SELECT is refused on Citus),
-- and opening a campaign to thousands of partners writes nothing per partner.
ALTER TABLE campaigns ADD COLUMN grant_to_all_partners boolean NOT NULL DEFAULT true;

ALTER TABLE campaigns ADD COLUMN opened_at timestamptz;

UPDATE campaigns SET opened_at = created_at;

ALTER TABLE partners ADD COLUMN open_campaigns boolean NOT NULL DEFAULT true;

CREATE TABLE partner_programs (
    partner_id   text NOT NULL REFERENCES partners (id),
    campaign_id  text NOT NULL REFERENCES campaigns (id),
    source       text NOT NULL CHECK (source IN ('admin', 'offering', 'signup', 'import')),
    granted_at   timestamptz NOT NULL,
    removed_at   timestamptz,
    PRIMARY KEY (partner_id, campaign_id)
);

CREATE INDEX partner_programs_campaign_idx ON partner_programs (campaign_id);

-- The schedule: links can be made, and clicks earn credit, only while
-- starts_at <= t < ends_at (either end open when null).
ALTER TABLE campaigns ADD COLUMN starts_at timestamptz;

ALTER TABLE campaigns ADD COLUMN ends_at timestamptz;

ALTER TABLE campaigns ADD CONSTRAINT campaigns_schedule_order CHECK (starts_at IS NULL OR ends_at IS NULL OR ends_at > starts_at);

-- The end date the end-of-campaign reminder was mailed for: a changed ends_at mails again.
ALTER TABLE campaigns ADD COLUMN end_reminder_for timestamptz;

CREATE INDEX campaigns_ends_at_idx ON campaigns (ends_at) WHERE ends_at IS NOT NULL;
