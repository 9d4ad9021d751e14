-- description: append_turns finds threads and idempotency keys by index whatever the statistics say

-- The embedded database never runs ANALYZE (PGlite has no autovacuum), and the
-- planner takes a jsonb_to_recordset for 100 rows: with joins it chose hash
-- joins over full scans of exai.messages and exai.conversations, so every
-- append slowed down as the tables grew. Looking rows up by `= ANY (ARRAY(…))`
-- and a LATERAL probe per idempotency key leaves it no plan but the indexes.
-- Otherwise the function is unchanged.

CREATE OR REPLACE FUNCTION exai.append_turns(p_turns jsonb)
RETURNS TABLE (ord integer, status text, message_id uuid, seq integer, created_at timestamptz)
LANGUAGE plpgsql
SECURITY INVOKER
AS $fn$
#variable_conflict use_column
BEGIN
  PERFORM 1
    FROM exai.conversations c
   WHERE c.id = ANY (ARRAY(SELECT DISTINCT (t ->> 'conversation_id')::uuid FROM jsonb_array_elements(p_turns) t))
   ORDER BY c.id
     FOR UPDATE;

  RETURN QUERY
  WITH input AS (
    SELECT t.ord, t.conversation_id, t.role, t.content, t.tool_name, t.provider, t.model,
           t.reasoning_content, coalesce(t.files, '{}') AS files, t.input_tokens, t.output_tokens,
           t.idempotency_key, coalesce(t.metadata, '{}'::jsonb) AS metadata
      FROM jsonb_to_recordset(p_turns) AS t(
        ord integer, conversation_id uuid, role text, content text, tool_name text, provider text,
        model text, reasoning_content text, files text[], input_tokens integer, output_tokens integer,
        idempotency_key text, metadata jsonb)
  ), ranked AS (
    SELECT i.*, row_number() OVER (PARTITION BY i.conversation_id, i.idempotency_key ORDER BY i.ord) AS key_rank
      FROM input i
  ), threads AS (
    SELECT c.id, c.owner_id, c.turn_count
      FROM exai.conversations c
     WHERE c.id = ANY (ARRAY(SELECT DISTINCT conversation_id FROM input))
  ), prior AS (
    SELECT m.conversation_id, m.idempotency_key, m.id, m.seq, m.created_at
      FROM (SELECT DISTINCT conversation_id, idempotency_key FROM input WHERE idempotency_key IS NOT NULL) k
     CROSS JOIN LATERAL (
       SELECT m.conversation_id, m.idempotency_key, m.id, m.seq, m.created_at
         FROM exai.messages m
        WHERE m.conversation_id = k.conversation_id AND m.idempotency_key = k.idempotency_key
        LIMIT 1) m
  ), fresh AS (
    SELECT r.*, th.owner_id,
           (th.turn_count + row_number() OVER (PARTITION BY r.conversation_id ORDER BY r.ord))::integer AS new_seq
      FROM ranked r
      JOIN threads th ON th.id = r.conversation_id
     WHERE (r.idempotency_key IS NULL OR r.key_rank = 1)
       AND NOT EXISTS (SELECT 1 FROM prior p
                        WHERE p.conversation_id = r.conversation_id AND p.idempotency_key = r.idempotency_key)
  ), inserted AS (
    INSERT INTO exai.messages (conversation_id, owner_id, seq, role, content, tool_name, provider, model,
                               reasoning_content, files, input_tokens, output_tokens, idempotency_key, metadata)
    SELECT conversation_id, owner_id, new_seq, role, content, tool_name, provider, model,
           reasoning_content, files, input_tokens, output_tokens, idempotency_key, metadata
      FROM fresh
    RETURNING id, conversation_id, seq, created_at
  ), bumped AS (
    -- updated_at moves at most every 10 s: it is indexed (for listing), and leaving it alone in
    -- between keeps these updates HOT, so a busy thread does not churn the indexes.
    UPDATE exai.conversations c
       SET turn_count = c.turn_count + (SELECT count(*)::integer FROM fresh f WHERE f.conversation_id = c.id),
           updated_at = CASE WHEN c.updated_at < now() - interval '10 seconds' THEN now() ELSE c.updated_at END
     WHERE c.id = ANY (ARRAY(SELECT DISTINCT conversation_id FROM fresh))
    RETURNING c.id
  )
  SELECT r.ord,
         CASE WHEN th.id IS NULL THEN 'not_found' WHEN f.ord IS NOT NULL THEN 'created' ELSE 'duplicate' END,
         coalesce(ins.id, p.id, first_ins.id),
         coalesce(ins.seq, p.seq, first_ins.seq),
         coalesce(ins.created_at, p.created_at, first_ins.created_at)
    FROM ranked r
    LEFT JOIN threads th ON th.id = r.conversation_id
    LEFT JOIN fresh f ON f.ord = r.ord
    LEFT JOIN inserted ins ON ins.conversation_id = f.conversation_id AND ins.seq = f.new_seq
    LEFT JOIN prior p ON f.ord IS NULL
                     AND p.conversation_id = r.conversation_id AND p.idempotency_key = r.idempotency_key
    LEFT JOIN fresh first ON f.ord IS NULL AND p.id IS NULL
                         AND first.conversation_id = r.conversation_id AND first.idempotency_key = r.idempotency_key
    LEFT JOIN inserted first_ins ON first_ins.conversation_id = first.conversation_id AND first_ins.seq = first.new_seq
   ORDER BY r.ord;
END
$fn$;
