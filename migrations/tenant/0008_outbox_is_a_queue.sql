-- The outbox is a queue: the webhook pipeline now deletes rows once it has fanned them out
-- into deliveries (which keep the payload), instead of stamping dispatched_at on a second
-- copy of every row. dispatched_at is no longer set; rows stamped before are done.
DELETE FROM outbox WHERE dispatched_at IS NOT NULL;

-- A queue's dead rows slow every scan for its oldest rows. The pipeline vacuums the outbox
-- itself as it consumes it; autovacuum is told to treat it as a queue too (after 1,000 dead
-- rows, whatever the table's size), for what a restarted worker's counters do not cover.
ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);
