-- Compound commission rules (programs.md): each applying sub-rule of a rule set makes one
-- commission, so a touch (attribution: event, model, click) may have several; `rule_index`
-- is the sub-rule's index in its rule set (0 for every commission priced before).
ALTER TABLE commissions ADD COLUMN rule_index integer NOT NULL DEFAULT 0;

-- The unique key of a priced commission is (event, model, click, ruleIndex): the
-- attribution (unique per event, model, click) and the sub-rule. Refund adjustments
-- (`adjusts_commission_id`) and reversed commissions (rederive replaces them) are outside it.
CREATE UNIQUE INDEX commissions_touch_rule_key ON commissions (attribution_id, rule_index) WHERE adjusts_commission_id IS NULL AND status <> 'reversed';


-- The first attributed event of each (user, campaign, partner, type) ('' for any type) that
-- a rule asked about ("first"/"subsequent"/"recurringMonths" sub-rules), written with the
-- commissions it priced. Its key makes a second "first" impossible: the event lane inserts
-- plainly, so a concurrent writer (another worker) that priced the same first fails and
-- writes again with what committed. Rederive and identify re-point it.
CREATE TABLE first_events (
    user_id      text NOT NULL,
    campaign_id  text NOT NULL,
    partner_id   text NOT NULL,
    event_type   text NOT NULL,
    event_id     text NOT NULL REFERENCES events (id),
    PRIMARY KEY (user_id, campaign_id, partner_id, event_type)
);

CREATE INDEX first_events_event_idx ON first_events (event_id);
