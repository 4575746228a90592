-- Stored Idempotency-Key replies are kept 24 hours; this index lets the worker's sweep
-- delete the expired ones without scanning the table.
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
