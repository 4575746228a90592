-- The commission ledger: the state machine enforced by the database itself, not only by
-- code, without triggers (Citus refuses them). Every status change appends a ledger entry:
--   * (from_status, to_status) must be an allowed transition (FK to commission_transitions);
--   * an entry continues the previous one of the same commission (FK on prev_id, and
--     prev_id UNIQUE: a history cannot fork);
--   * the commission row must point at its latest entry with a matching status (composite
--     FK), so `status` cannot change without a valid ledger entry.
-- Paid is terminal: no transition leaves it, so a paid commission is immutable.

CREATE TABLE commission_transitions (
    from_status  text NOT NULL,
    to_status    text NOT NULL,
    PRIMARY KEY (from_status, to_status)
);

INSERT INTO commission_transitions (from_status, to_status) VALUES
    ('new', 'accrued'),
    ('new', 'approved'),
    ('accrued', 'approved'),
    ('accrued', 'reversed'),
    ('approved', 'paid'),
    ('approved', 'reversed');

CREATE TABLE commission_ledger (
    id              text PRIMARY KEY,
    commission_id   text NOT NULL,
    from_status     text NOT NULL,
    to_status       text NOT NULL,
    prev_id         text,
    amount          numeric NOT NULL,
    principal_kind  text NOT NULL,
    principal_id    text,
    reason          text,
    at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT commission_ledger_entry_key UNIQUE (id, commission_id, to_status),
    CONSTRAINT commission_ledger_no_fork UNIQUE (prev_id),
    CONSTRAINT commission_ledger_allowed FOREIGN KEY (from_status, to_status)
        REFERENCES commission_transitions (from_status, to_status),
    CONSTRAINT commission_ledger_chain FOREIGN KEY (prev_id, commission_id, from_status)
        REFERENCES commission_ledger (id, commission_id, to_status),
    CONSTRAINT commission_ledger_first CHECK ((from_status = 'new') = (prev_id IS NULL))
);

CREATE INDEX commission_ledger_commission_idx ON commission_ledger (commission_id, at);

CREATE TABLE payouts (
    id          text PRIMARY KEY,
    run_id      text NOT NULL,
    partner_id  text NOT NULL REFERENCES partners (id),
    amount      numeric NOT NULL CHECK (amount > 0),
    currency    text NOT NULL,
    method      text NOT NULL DEFAULT 'manual',
    status      text NOT NULL CHECK (status IN ('pending', 'paid', 'failed')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    paid_at     timestamptz,
    CONSTRAINT payouts_paid_at CHECK ((status = 'paid') = (paid_at IS NOT NULL))
);

CREATE INDEX payouts_page_idx ON payouts (created_at DESC, id DESC);

ALTER TABLE commissions ADD COLUMN last_transition_id text;

-- Ships together with 0003 (no deployment has commissions without a ledger), so every
-- commission row has its ledger entry from the start and the column can be NOT NULL.
ALTER TABLE commissions ALTER COLUMN last_transition_id SET NOT NULL;

ALTER TABLE commissions ADD CONSTRAINT commissions_ledger_state FOREIGN KEY (last_transition_id, id, status)
    REFERENCES commission_ledger (id, commission_id, to_status);

ALTER TABLE commissions ADD CONSTRAINT commissions_status_times CHECK (
    (status = 'accrued' AND approved_at IS NULL AND paid_at IS NULL AND reversed_at IS NULL)
    OR (status = 'approved' AND approved_at IS NOT NULL AND paid_at IS NULL AND reversed_at IS NULL)
    OR (status = 'paid' AND approved_at IS NOT NULL AND paid_at IS NOT NULL AND reversed_at IS NULL)
    OR (status = 'reversed' AND reversed_at IS NOT NULL AND paid_at IS NULL));

ALTER TABLE commissions ADD CONSTRAINT commissions_payout_fk FOREIGN KEY (payout_id) REFERENCES payouts (id);

CREATE INDEX commissions_payable_idx ON commissions (partner_id, currency) WHERE status = 'approved' AND payout_id IS NULL;

CREATE INDEX commissions_adjusts_idx ON commissions (adjusts_commission_id) WHERE adjusts_commission_id IS NOT NULL;
