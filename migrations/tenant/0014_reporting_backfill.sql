-- The click rollups of the clicks recorded before 0013 (new clicks and identities keep
-- them current from then on). A migration, not a request: one statement per tenant.
INSERT INTO click_rollups (partner_id, day, link_id, campaign_id, clicks, flagged_clicks, identities)
SELECT c.partner_id, (c.ts AT TIME ZONE 'UTC')::date, c.link_id, min(c.campaign_id),
       count(*) FILTER (WHERE c.fraud_flag IS NULL),
       count(*) FILTER (WHERE c.fraud_flag IS NOT NULL),
       coalesce(sum(i.n) FILTER (WHERE c.fraud_flag IS NULL), 0)
  FROM clicks c
  LEFT JOIN (SELECT click_id, count(*) AS n FROM identities GROUP BY click_id) i ON i.click_id = c.id
 GROUP BY c.partner_id, (c.ts AT TIME ZONE 'UTC')::date, c.link_id;
