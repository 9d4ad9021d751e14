-- description: thread_head and thread_turns, the reads of a thread as plpgsql functions whose plans each connection caches

-- Reading a thread is the hot path of every continued conversation. As plain
-- statements under row-level security each read is planned anew, and the
-- policies make planning cost more than running the query; PL/pgSQL keeps the
-- plans per connection. Both run as the caller, so row-level security applies.

CREATE FUNCTION exai.thread_head(p_id uuid)
RETURNS TABLE (id uuid, owner_id uuid, title text, tool_name text, parent_id uuid, status text, summary text,
               metadata jsonb, turn_count integer, created_at timestamptz, updated_at timestamptz)
LANGUAGE plpgsql
STABLE
SECURITY INVOKER
AS $fn$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  SELECT c.id, c.owner_id, c.title, c.tool_name, c.parent_id, c.status, c.summary, c.metadata, c.turn_count,
         c.created_at, c.updated_at
    FROM exai.conversations c
   WHERE c.id = p_id;
END
$fn$;

CREATE FUNCTION exai.thread_turns(p_id uuid)
RETURNS TABLE (id uuid, seq integer, role text, content text, tool_name text, provider text, model text,
               reasoning_content text, files text[], input_tokens integer, output_tokens integer,
               idempotency_key text, metadata jsonb, created_at timestamptz)
LANGUAGE plpgsql
STABLE
SECURITY INVOKER
AS $fn$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  SELECT m.id, m.seq, m.role, m.content, m.tool_name, m.provider, m.model, m.reasoning_content, m.files,
         m.input_tokens, m.output_tokens, m.idempotency_key, m.metadata, m.created_at
    FROM exai.messages m
   WHERE m.conversation_id = p_id
   ORDER BY m.seq;
END
$fn$;

REVOKE EXECUTE ON FUNCTION exai.thread_head(uuid), exai.thread_turns(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exai.thread_head(uuid), exai.thread_turns(uuid) TO authenticated, service_role;
