-- description: Supabase-compatible roles and auth helpers; users, conversations and messages under row-level security

-- Supabase provides these roles; elsewhere they are created only when missing.
-- Roles belong to the whole cluster, so another database may create them at the same moment.
DO $$
DECLARE
  wanted text;
BEGIN
  FOREACH wanted IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = wanted) THEN
      BEGIN
        -- No BYPASSRLS (only a superuser may grant it): the service policies below let service_role through.
        EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT', wanted);
      EXCEPTION
        WHEN duplicate_object OR unique_violation THEN
          NULL;
        WHEN insufficient_privilege THEN
          RAISE EXCEPTION 'role % is missing and % may not create it', wanted, current_user
            USING HINT = format('Ask an administrator to run: CREATE ROLE %I NOLOGIN NOINHERIT; GRANT %I TO %I;', wanted, wanted, current_user);
      END;
    END IF;
    -- The connecting role switches to these per transaction, so it must be a member.
    IF NOT pg_has_role(current_user, wanted, 'MEMBER') THEN
      BEGIN
        EXECUTE format('GRANT %I TO %I', wanted, current_user);
      EXCEPTION WHEN unique_violation OR duplicate_object THEN
        NULL;
      END;
    END IF;
  END LOOP;
END $$;

CREATE SCHEMA IF NOT EXISTS auth;

-- auth.uid(), auth.role() and auth.jwt() as Supabase defines them, only where Supabase has not.
DO $$
BEGIN
  IF to_regprocedure('auth.jwt()') IS NULL THEN
    CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $fn$
      SELECT coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
      )::jsonb
    $fn$;
  END IF;
  IF to_regprocedure('auth.uid()') IS NULL THEN
    CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $fn$
      SELECT coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
      )::uuid
    $fn$;
  END IF;
  IF to_regprocedure('auth.role()') IS NULL THEN
    CREATE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE AS $fn$
      SELECT coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
      )::text
    $fn$;
  END IF;
  IF NOT has_schema_privilege('authenticated', 'auth', 'USAGE') THEN
    GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
  END IF;
END $$;

CREATE EXTENSION IF NOT EXISTS vector;

GRANT USAGE ON SCHEMA exai TO authenticated, service_role;

-- Users ----------------------------------------------------------------------
CREATE TABLE exai.users (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  handle text NOT NULL UNIQUE CHECK (handle ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  display_name text CHECK (char_length(display_name) <= 200),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Conversations: the id is the continuation id ---------------------------------
CREATE TABLE exai.conversations (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  owner_id uuid NOT NULL DEFAULT auth.uid() REFERENCES exai.users (id) ON DELETE CASCADE,
  title text CHECK (char_length(title) <= 500),
  tool_name text CHECK (char_length(tool_name) <= 100),
  parent_id uuid REFERENCES exai.conversations (id) ON DELETE SET NULL,
  turn_count integer NOT NULL DEFAULT 0 CHECK (turn_count >= 0),
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
  summary text,
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK (parent_id IS DISTINCT FROM id),
  -- Lets messages reference (thread, owner) together, see below.
  UNIQUE (id, owner_id)
)
-- Every append updates its thread's row: free space on each page lets those be HOT updates.
WITH (fillfactor = 80);
CREATE INDEX conversations_owner_updated_idx ON exai.conversations (owner_id, updated_at DESC, id DESC);
CREATE INDEX conversations_parent_idx ON exai.conversations (parent_id) WHERE parent_id IS NOT NULL;

-- Messages: the turns of a thread, gap-free by seq ------------------------------
CREATE TABLE exai.messages (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  conversation_id uuid NOT NULL,
  owner_id uuid NOT NULL DEFAULT auth.uid() REFERENCES exai.users (id) ON DELETE CASCADE,
  seq integer NOT NULL CHECK (seq >= 1),
  role text NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
  content text NOT NULL,
  tool_name text CHECK (char_length(tool_name) <= 100),
  provider text CHECK (char_length(provider) <= 100),
  model text CHECK (char_length(model) <= 200),
  reasoning_content text,
  files text[] NOT NULL DEFAULT '{}',
  input_tokens integer CHECK (input_tokens >= 0),
  output_tokens integer CHECK (output_tokens >= 0),
  idempotency_key text CHECK (char_length(idempotency_key) BETWEEN 1 AND 200),
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
  created_at timestamptz NOT NULL DEFAULT now(),
  -- 'simple' keeps every language's words; the prefix bound keeps huge turns under tsvector's size limit.
  content_tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', left(content, 200000))) STORED,
  UNIQUE (conversation_id, seq),
  UNIQUE (conversation_id, idempotency_key),
  -- A message belongs to its thread's owner: with the policy below (owner = the caller) a user can
  -- add messages only to their own threads, and another user's thread fails exactly like an unknown one.
  FOREIGN KEY (conversation_id, owner_id) REFERENCES exai.conversations (id, owner_id) ON DELETE CASCADE
);
CREATE INDEX messages_owner_idx ON exai.messages (owner_id);
CREATE INDEX messages_content_tsv_idx ON exai.messages USING gin (content_tsv);

-- Row-level security: enabled and forced; a user sees and writes only their own rows.
ALTER TABLE exai.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE exai.users FORCE ROW LEVEL SECURITY;
ALTER TABLE exai.conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE exai.conversations FORCE ROW LEVEL SECURITY;
ALTER TABLE exai.messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE exai.messages FORCE ROW LEVEL SECURITY;

CREATE POLICY users_select_self ON exai.users FOR SELECT TO authenticated
  USING (id = (SELECT auth.uid()));
CREATE POLICY users_update_self ON exai.users FOR UPDATE TO authenticated
  USING (id = (SELECT auth.uid())) WITH CHECK (id = (SELECT auth.uid()));

CREATE POLICY conversations_owner ON exai.conversations FOR ALL TO authenticated
  USING (owner_id = (SELECT auth.uid())) WITH CHECK (owner_id = (SELECT auth.uid()));

-- A parent must be a thread of the same owner. Foreign keys look past row-level
-- security, so without this a user could link to (and so probe for) another
-- user's thread. The lookup runs as the caller: a foreign parent reads as missing.
CREATE FUNCTION exai.check_conversation_parent() RETURNS trigger
LANGUAGE plpgsql
SECURITY INVOKER
AS $fn$
BEGIN
  IF NEW.parent_id IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM exai.conversations p WHERE p.id = NEW.parent_id AND p.owner_id = NEW.owner_id
  ) THEN
    RAISE EXCEPTION 'parent thread % not found', NEW.parent_id USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NEW;
END
$fn$;
CREATE TRIGGER conversations_parent_check
  BEFORE INSERT OR UPDATE OF parent_id, owner_id ON exai.conversations
  FOR EACH ROW EXECUTE FUNCTION exai.check_conversation_parent();

CREATE POLICY messages_select_own ON exai.messages FOR SELECT TO authenticated
  USING (owner_id = (SELECT auth.uid()));
-- That the thread is the caller's own follows from the (conversation_id, owner_id) foreign key.
CREATE POLICY messages_insert_own ON exai.messages FOR INSERT TO authenticated
  WITH CHECK (owner_id = (SELECT auth.uid()));
CREATE POLICY messages_update_own ON exai.messages FOR UPDATE TO authenticated
  USING (owner_id = (SELECT auth.uid())) WITH CHECK (owner_id = (SELECT auth.uid()));
CREATE POLICY messages_delete_own ON exai.messages FOR DELETE TO authenticated
  USING (owner_id = (SELECT auth.uid()));

-- The service role bypasses RLS on Supabase; elsewhere it is made without BYPASSRLS and these let it through.
CREATE POLICY users_service ON exai.users FOR ALL TO service_role USING (true) WITH CHECK (true);
CREATE POLICY conversations_service ON exai.conversations FOR ALL TO service_role USING (true) WITH CHECK (true);
CREATE POLICY messages_service ON exai.messages FOR ALL TO service_role USING (true) WITH CHECK (true);

GRANT SELECT, UPDATE (display_name, updated_at) ON exai.users TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON exai.conversations, exai.messages TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON exai.users, exai.conversations, exai.messages TO service_role;

-- append_turns: appends a batch of turns to one or more threads in one statement.
-- Threads are locked in id order first, so concurrent batches queue instead of
-- deadlocking; the insert then runs in a fresh snapshot and sees every turn and
-- idempotency key committed before the lock was granted. Runs as the caller, so
-- row-level security decides which threads exist.
CREATE FUNCTION exai.append_turns(p_turns jsonb)
RETURNS TABLE (ord integer, status text, message_id uuid, seq integer, created_at timestamptz)
LANGUAGE plpgsql
SECURITY INVOKER
AS $fn$
#variable_conflict use_column
BEGIN
  PERFORM 1
    FROM exai.conversations c
   WHERE c.id IN (SELECT (t ->> 'conversation_id')::uuid FROM jsonb_array_elements(p_turns) t)
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
     WHERE c.id IN (SELECT conversation_id FROM input)
  ), prior AS (
    SELECT m.conversation_id, m.idempotency_key, m.id, m.seq, m.created_at
      FROM exai.messages m
      JOIN (SELECT DISTINCT conversation_id, idempotency_key FROM input WHERE idempotency_key IS NOT NULL) k
        ON m.conversation_id = k.conversation_id AND m.idempotency_key = k.idempotency_key
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
       SET turn_count = c.turn_count + f.n,
           updated_at = CASE WHEN c.updated_at < now() - interval '10 seconds' THEN now() ELSE c.updated_at END
      FROM (SELECT conversation_id, count(*)::integer AS n FROM fresh GROUP BY conversation_id) f
     WHERE c.id = f.conversation_id
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
REVOKE EXECUTE ON FUNCTION exai.append_turns(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exai.append_turns(jsonb) TO authenticated, service_role;

-- thread_chain: a thread and its ancestors, nearest first, stopping at a depth
-- limit and flagging a cycle instead of looping. Row-level security applies.
CREATE FUNCTION exai.thread_chain(p_id uuid, p_max_depth integer)
RETURNS TABLE (id uuid, parent_id uuid, depth integer, is_cycle boolean)
LANGUAGE sql
STABLE
SECURITY INVOKER
AS $fn$
  WITH RECURSIVE chain (id, parent_id, depth, path, is_cycle) AS (
    SELECT c.id, c.parent_id, 0, ARRAY[c.id], false
      FROM exai.conversations c
     WHERE c.id = p_id
    UNION ALL
    SELECT p.id, p.parent_id, ch.depth + 1, ch.path || p.id, p.id = ANY (ch.path)
      FROM chain ch
      JOIN exai.conversations p ON p.id = ch.parent_id
     WHERE NOT ch.is_cycle AND ch.depth < p_max_depth
  )
  SELECT chain.id, chain.parent_id, chain.depth, chain.is_cycle FROM chain ORDER BY chain.depth
$fn$;
REVOKE EXECUTE ON FUNCTION exai.thread_chain(uuid, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exai.thread_chain(uuid, integer) TO authenticated, service_role;
