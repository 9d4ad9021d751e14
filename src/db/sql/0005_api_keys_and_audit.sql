-- description: API keys (hashed, scoped, rotatable) and an append-only audit log chained by hashes

-- API keys ---------------------------------------------------------------------
-- Only a SHA-256 of the key is kept: keys are 256 random bits, so a fast hash is
-- enough, and the prefix finds the row without scanning.
CREATE TABLE exai.api_keys (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES exai.users (id) ON DELETE CASCADE,
  prefix text NOT NULL UNIQUE CHECK (prefix ~ '^[a-z0-9]{12}$'),
  secret_hash text NOT NULL CHECK (secret_hash ~ '^[0-9a-f]{64}$'),
  name text CHECK (char_length(name) <= 200),
  scopes text[] NOT NULL CHECK (
    cardinality(scopes) > 0 AND
    scopes <@ ARRAY['tools:call', 'conversations:read', 'conversations:write', 'files:write', 'metrics:read', 'admin']::text[]
  ),
  -- Per-key limits; null means the server's default.
  requests_per_minute integer CHECK (requests_per_minute >= 0),
  tokens_per_minute integer CHECK (tokens_per_minute >= 0),
  concurrent_calls integer CHECK (concurrent_calls >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  revoked_at timestamptz,
  -- Set when the key was rotated: the key that replaces it.
  replaced_by uuid REFERENCES exai.api_keys (id) ON DELETE SET NULL
);
CREATE INDEX api_keys_user_idx ON exai.api_keys (user_id, created_at DESC);

ALTER TABLE exai.api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE exai.api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY api_keys_select_own ON exai.api_keys FOR SELECT TO authenticated
  USING (user_id = (SELECT auth.uid()));
CREATE POLICY api_keys_service ON exai.api_keys FOR ALL TO service_role USING (true) WITH CHECK (true);
-- Users may see their keys' metadata, never the hashes; keys are made and revoked by the service.
GRANT SELECT (id, user_id, prefix, name, scopes, requests_per_minute, tokens_per_minute, concurrent_calls,
              created_at, expires_at, revoked_at, replaced_by) ON exai.api_keys TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON exai.api_keys TO service_role;

-- Audit log --------------------------------------------------------------------
-- Append-only: no role of the application may update or delete a row (no grant,
-- and triggers refuse it even to the table's owner), and every row carries a
-- SHA-256 over its content and the previous row's hash, so an edited, removed or
-- reordered row breaks the chain that `exai audit verify` walks.
CREATE TABLE exai.audit_log (
  seq bigint PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  -- No foreign key: deleting a user must not touch the record of what they did.
  actor_id uuid,
  actor text NOT NULL CHECK (char_length(actor) BETWEEN 1 AND 200),
  action text NOT NULL CHECK (action ~ '^[a-z][a-z_.]{0,99}$'),
  target text CHECK (char_length(target) <= 500),
  source text CHECK (char_length(source) <= 200),
  outcome text NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
  details jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(details) = 'object'),
  prev_hash text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
  hash text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX audit_log_actor_idx ON exai.audit_log (actor_id, seq DESC);

-- The hash of one row: a JSON array keeps fields apart and nulls distinct from
-- empty text; the time enters as microseconds since the epoch, independent of
-- the session's time zone and date style.
CREATE FUNCTION exai.audit_row_hash(
  p_prev text, p_seq bigint, p_at timestamptz, p_actor_id uuid, p_actor text, p_action text,
  p_target text, p_source text, p_outcome text, p_details jsonb
) RETURNS text
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
  SELECT encode(sha256(convert_to(jsonb_build_array(
    p_prev, p_seq, (extract(epoch FROM p_at) * 1000000)::bigint, p_actor_id, p_actor, p_action,
    p_target, p_source, p_outcome, p_details)::text, 'UTF8')), 'hex')
$fn$;

-- Numbers and chains each new row. The advisory lock serialises writers until
-- commit, so the row read as the head is the one committed last.
CREATE FUNCTION exai.audit_log_chain() RETURNS trigger
LANGUAGE plpgsql
SECURITY INVOKER
-- A caller's search_path must not be able to put its own sha256() or tables in the way.
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  head record;
BEGIN
  PERFORM pg_advisory_xact_lock(7304518222);
  SELECT a.seq, a.hash INTO head FROM exai.audit_log a ORDER BY a.seq DESC LIMIT 1;
  NEW.seq := coalesce(head.seq, 0) + 1;
  NEW.at := clock_timestamp();
  NEW.prev_hash := coalesce(head.hash, repeat('0', 64));
  NEW.hash := exai.audit_row_hash(NEW.prev_hash, NEW.seq, NEW.at, NEW.actor_id, NEW.actor, NEW.action,
                                  NEW.target, NEW.source, NEW.outcome, NEW.details);
  RETURN NEW;
END
$fn$;
CREATE TRIGGER audit_log_chain BEFORE INSERT ON exai.audit_log
  FOR EACH ROW EXECUTE FUNCTION exai.audit_log_chain();

CREATE FUNCTION exai.audit_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  RAISE EXCEPTION 'the audit log is append-only: % is not allowed', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$fn$;
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON exai.audit_log
  FOR EACH ROW EXECUTE FUNCTION exai.audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON exai.audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION exai.audit_log_refuse_change();

ALTER TABLE exai.audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE exai.audit_log FORCE ROW LEVEL SECURITY;
-- A user may read what was recorded about their own actions.
CREATE POLICY audit_log_select_own ON exai.audit_log FOR SELECT TO authenticated
  USING (actor_id = (SELECT auth.uid()));
CREATE POLICY audit_log_service_read ON exai.audit_log FOR SELECT TO service_role USING (true);
CREATE POLICY audit_log_service_append ON exai.audit_log FOR INSERT TO service_role WITH CHECK (true);
GRANT SELECT ON exai.audit_log TO authenticated;
GRANT SELECT, INSERT ON exai.audit_log TO service_role;
REVOKE EXECUTE ON FUNCTION exai.audit_row_hash(text, bigint, timestamptz, uuid, text, text, text, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exai.audit_row_hash(text, bigint, timestamptz, uuid, text, text, text, text, text, jsonb) TO service_role;
