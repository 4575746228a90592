-- Per-partner terms and campaign auto-approve (programs.md).
--
-- partner_terms: versioned terms of one partner, for one campaign (campaign_id) or for all
-- of them (campaign_id NULL). A version applies from valid_from until the next version of
-- the same (partner, campaign); rows are never updated or deleted, so the terms in force at
-- any past time can be read back (rederive prices an event at its own ts). A version with
-- a NULL rule ends the terms: from then on the next level applies again (the all-campaign
-- terms for a per-campaign version, else the campaign's own rule).
CREATE TABLE partner_terms (
    id             text PRIMARY KEY,
    partner_id     text NOT NULL REFERENCES partners (id),
    campaign_id    text REFERENCES campaigns (id),
    rule           jsonb,
    holdback_days  integer CHECK (holdback_days BETWEEN 0 AND 365),
    as_rules       boolean NOT NULL DEFAULT false,
    source         text NOT NULL CHECK (source IN ('approval', 'backfill', 'amendment', 'import')),
    valid_from     timestamptz NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT partner_terms_ended_has_no_holdback CHECK (rule IS NOT NULL OR holdback_days IS NULL)
);

CREATE INDEX partner_terms_partner_idx ON partner_terms (partner_id, campaign_id, valid_from DESC, id DESC);

ALTER TABLE campaigns ADD COLUMN auto_approve boolean NOT NULL DEFAULT false;

