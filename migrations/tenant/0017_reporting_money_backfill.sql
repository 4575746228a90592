-- The event-side and money rollups (0016) of the rows written before them; from then on
-- their writers keep them current. A migration, not a request: one statement per table.
-- The credit rules are those of reporting/rollups.rs: per event, a partner's first
-- (link, campaign) of its touches takes the partner's count, the first link of each
-- campaign the campaign's, the first (partner, link, campaign) the tenant's — first in
-- byte order (COLLATE "C"), as Rust compares the ids.
INSERT INTO event_rollups (partner_id, day, link_id, campaign_id, currency, events, leads, sales,
                           campaign_leads, campaign_sales, link_events, tenant_events, revenue, refunded)
SELECT x.partner_id, x.day, x.link_id, x.campaign_id, x.currency,
       count(*) FILTER (WHERE x.p1),
       count(*) FILTER (WHERE x.p1 AND x.lead),
       count(*) FILTER (WHERE x.p1 AND x.sale),
       count(*) FILTER (WHERE x.c1 AND x.lead),
       count(*) FILTER (WHERE x.c1 AND x.sale),
       count(*),
       count(*) FILTER (WHERE x.t1),
       coalesce(sum(x.value * x.weight), 0),
       coalesce(sum(x.refunded * x.weight), 0)
  FROM (SELECT t.partner_id, t.link_id, t.campaign_id, t.weight, e.currency, e.value,
               (e.ts AT TIME ZONE 'UTC')::date AS day,
               e.type IN ('signup', 'trial_started') AS lead,
               (e.value > 0 AND e.type NOT IN ('refund', 'chargeback')) IS TRUE AS sale,
               (SELECT sum(r.value) FROM events r WHERE r.refund_of = e.event_id AND r.value IS NOT NULL) AS refunded,
               row_number() OVER (PARTITION BY t.event_id, t.partner_id ORDER BY t.link_id COLLATE "C", t.campaign_id COLLATE "C") = 1 AS p1,
               row_number() OVER (PARTITION BY t.event_id, t.partner_id, t.campaign_id ORDER BY t.link_id COLLATE "C") = 1 AS c1,
               row_number() OVER (PARTITION BY t.event_id ORDER BY t.partner_id COLLATE "C", t.link_id COLLATE "C", t.campaign_id COLLATE "C") = 1 AS t1
          FROM (SELECT a.event_id, a.partner_id, a.campaign_id, c.link_id, sum(a.weight) AS weight
                  FROM attributions a JOIN clicks c ON c.id = a.click_id
                 WHERE a.superseded_at IS NULL
                 GROUP BY a.event_id, a.partner_id, a.campaign_id, c.link_id) t
          JOIN events e ON e.id = t.event_id) x
 GROUP BY x.partner_id, x.day, x.link_id, x.campaign_id, x.currency;

INSERT INTO user_rollups (partner_id, day, user_id, leads, sales)
SELECT a.partner_id, (e.ts AT TIME ZONE 'UTC')::date, e.user_id,
       count(*) FILTER (WHERE e.type IN ('signup', 'trial_started')),
       count(*) FILTER (WHERE (e.value > 0 AND e.type NOT IN ('refund', 'chargeback')) IS TRUE)
  FROM (SELECT DISTINCT event_id, partner_id FROM attributions WHERE superseded_at IS NULL) a
  JOIN events e ON e.id = a.event_id
 WHERE e.type IN ('signup', 'trial_started') OR (e.value > 0 AND e.type NOT IN ('refund', 'chargeback')) IS TRUE
 GROUP BY a.partner_id, (e.ts AT TIME ZONE 'UTC')::date, e.user_id;

INSERT INTO commission_rollups (partner_id, day, campaign_id, currency, accrued, approved, paid, reversed)
SELECT partner_id, (accrued_at AT TIME ZONE 'UTC')::date, campaign_id, currency,
       coalesce(sum(amount) FILTER (WHERE status = 'accrued'), 0),
       coalesce(sum(amount) FILTER (WHERE status = 'approved'), 0),
       coalesce(sum(amount) FILTER (WHERE status = 'paid'), 0),
       coalesce(sum(amount) FILTER (WHERE status = 'reversed'), 0)
  FROM commissions
 GROUP BY partner_id, (accrued_at AT TIME ZONE 'UTC')::date, campaign_id, currency;
