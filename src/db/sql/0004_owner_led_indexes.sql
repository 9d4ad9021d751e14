-- description: owner-led indexes that reach the row, so plans made on empty tables stay fast

-- Row-level security adds `owner_id = auth.uid()` to every query, and while a
-- table is empty the planner has no reason to prefer the primary key or the
-- idempotency index over an index on owner_id. PL/pgSQL keeps such a plan per
-- connection until statistics change; meanwhile it read every row of the
-- owner on each append (6.7 of 8.6 ms at 3,000 threads). With the row's own
-- columns after owner_id, a plan that starts from the owner goes straight to
-- the row. The messages index replaces the owner-only one it extends.
CREATE INDEX messages_owner_thread_key_idx ON exai.messages (owner_id, conversation_id, idempotency_key);
DROP INDEX exai.messages_owner_idx;
CREATE INDEX conversations_owner_id_idx ON exai.conversations (owner_id, id);
