-- A user's events in (ts, id) order, the order "first" is decided in (programs.md): the
-- first-events lookup (attribution/store.rs) walks them from the start and stops at the
-- first one credited to the pair. On (user_id, ts) alone the `id` tie-break could not come
-- from the index, so every lookup read and sorted all of the user's events before its
-- LIMIT 1 (3.6 ms per batch after ~70 events per user, growing with history); on
-- (user_id, ts, id) it reads one or two. It replaces the old index, which it covers.
CREATE INDEX events_user_ts_id_idx ON events (user_id, ts, id);

DROP INDEX events_user_idx;
