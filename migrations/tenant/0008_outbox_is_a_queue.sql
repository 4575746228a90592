-- The outbox is a queue: the webhook pipeline now deletes rows once it has fanned them out
-- into deliveries (which keep the payload), instead of stamping dispatched_at on a second
-- copy of every row. dispatched_at is no longer set; rows stamped before are done.
DELETE FROM outbox WHERE dispatched_at IS NOT NULL;
