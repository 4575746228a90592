-- Compound commission rules (programs.md): each applying sub-rule of a rule set makes one
-- commission, so a touch (attribution: event, model, click) may have several; `rule_index`
-- is the sub-rule's index in its rule set (0 for every commission priced before).
ALTER TABLE commissions ADD COLUMN rule_index integer NOT NULL DEFAULT 0;

-- The unique key of a priced commission is (event, model, click, ruleIndex): the
-- attribution (unique per event, model, click) and the sub-rule. Refund adjustments
-- (`adjusts_commission_id`) and reversed commissions (rederive replaces them) are outside it.
CREATE UNIQUE INDEX commissions_touch_rule_key ON commissions (attribution_id, rule_index) WHERE adjusts_commission_id IS NULL AND status <> 'reversed';

