-- The webhook pipeline reads undispatched outbox rows through outbox_pending_idx (partial,
-- small); the full (created_at, id) index only cost an extra index insert on every event.
DROP INDEX IF EXISTS outbox_created_idx;
