-- description: performance metrics: raw calls partitioned by day, hourly and daily roll-ups with mergeable sketches, usage, alerts

-- A scope for Prometheus scrapers: /metrics adds up every user's calls, so
-- keys get it only when asked for.
ALTER TABLE exai.api_keys DROP CONSTRAINT api_keys_scopes_check;
ALTER TABLE exai.api_keys ADD CONSTRAINT api_keys_scopes_check CHECK (
  cardinality(scopes) > 0 AND
  scopes <@ ARRAY['tools:call', 'conversations:read', 'conversations:write', 'files:write', 'metrics:read', 'metrics:scrape', 'admin']::text[]
);

-- Raw calls -------------------------------------------------------------------
-- One row per tool call and per provider call, kept 7 days. Partitioned by UTC
-- day so that retention drops a whole partition instead of deleting rows
-- (no long locks, no bloat, no vacuum debt).
CREATE TABLE exai.performance_metrics (
  at timestamptz NOT NULL,
  kind text NOT NULL CHECK (kind IN ('tool', 'provider')),
  tool text CHECK (char_length(tool) <= 100),
  model text CHECK (char_length(model) <= 200),
  provider text CHECK (char_length(provider) <= 100),
  -- A hash of only the parameters that change performance (model, temperature,
  -- thinking, web search, max tokens): calls made the same way share it.
  param_hash text NOT NULL CHECK (param_hash ~ '^[0-9a-f]{16}$'),
  duration_ms double precision NOT NULL CHECK (duration_ms >= 0),
  ttft_ms double precision CHECK (ttft_ms >= 0),
  input_tokens integer NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
  output_tokens integer NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
  -- US dollars from the model registry's prices; null when the price is unknown.
  cost_usd double precision CHECK (cost_usd >= 0),
  outcome text NOT NULL CHECK (outcome IN ('ok', 'error', 'timeout', 'cancelled')),
  error_class text CHECK (char_length(error_class) <= 100),
  -- No foreign keys: metrics outlive the users, keys and threads they describe.
  user_id uuid,
  api_key_id uuid,
  conversation_id uuid
) PARTITION BY RANGE (at);
CREATE INDEX performance_metrics_at_idx ON exai.performance_metrics (at);
CREATE INDEX performance_metrics_user_idx ON exai.performance_metrics (user_id, at);

ALTER TABLE exai.performance_metrics ENABLE ROW LEVEL SECURITY;
ALTER TABLE exai.performance_metrics FORCE ROW LEVEL SECURITY;
CREATE POLICY performance_metrics_select_own ON exai.performance_metrics FOR SELECT TO authenticated
  USING (user_id = (SELECT auth.uid()));
CREATE POLICY performance_metrics_service ON exai.performance_metrics FOR ALL TO service_role USING (true) WITH CHECK (true);
GRANT SELECT ON exai.performance_metrics TO authenticated;
GRANT SELECT, INSERT ON exai.performance_metrics TO service_role;

-- The partition for one UTC day, created when missing. SECURITY DEFINER: the
-- recorder writes as service_role, which may not create tables. Partitions are
-- reached only through the parent, whose grants and policies apply; nobody but
-- the owner holds a privilege on a partition itself.
CREATE FUNCTION exai.ensure_metrics_partition(p_day date) RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  part text := 'performance_metrics_p' || to_char(p_day, 'YYYYMMDD');
BEGIN
  IF to_regclass('exai.' || part) IS NOT NULL THEN
    RETURN part;
  END IF;
  -- Two instances may ask for the same day at once.
  PERFORM pg_advisory_xact_lock(7304518223);
  IF to_regclass('exai.' || part) IS NULL THEN
    EXECUTE format(
      'CREATE TABLE exai.%I PARTITION OF exai.performance_metrics FOR VALUES FROM (%L) TO (%L)',
      part,
      (p_day::timestamp AT TIME ZONE 'UTC'),
      ((p_day + 1)::timestamp AT TIME ZONE 'UTC'));
  END IF;
  RETURN part;
END
$fn$;

-- The days whose partitions end before p_before, oldest first.
CREATE FUNCTION exai.metrics_partition_days_before(p_before date) RETURNS SETOF date
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
  SELECT to_date(substr(c.relname, 22), 'YYYYMMDD') AS day
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE i.inhparent = 'exai.performance_metrics'::regclass
     AND n.nspname = 'exai'
     AND c.relname ~ '^performance_metrics_p[0-9]{8}$'
     AND to_date(substr(c.relname, 22), 'YYYYMMDD') < p_before
   ORDER BY 1
$fn$;

-- Drops one day's partition. Dropping takes an exclusive lock on the parent
-- table, so retention drops one partition per transaction with a short
-- lock_timeout: a long reader delays the drop, never the recorder's writes.
CREATE FUNCTION exai.drop_metrics_partition(p_day date) RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  part text := 'performance_metrics_p' || to_char(p_day, 'YYYYMMDD');
BEGIN
  IF to_regclass('exai.' || part) IS NULL THEN
    RETURN false;
  END IF;
  EXECUTE format('DROP TABLE exai.%I', part);
  RETURN true;
END
$fn$;
REVOKE EXECUTE ON FUNCTION exai.ensure_metrics_partition(date) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION exai.metrics_partition_days_before(date) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION exai.drop_metrics_partition(date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exai.ensure_metrics_partition(date) TO service_role;
GRANT EXECUTE ON FUNCTION exai.metrics_partition_days_before(date) TO service_role;
GRANT EXECUTE ON FUNCTION exai.drop_metrics_partition(date) TO service_role;

-- Roll-ups --------------------------------------------------------------------
-- One row per bucket and group. `sketch` holds the bins of a DDSketch (1%
-- relative accuracy) of the durations in exai's compact encoding
-- (src/metrics/sketch.ts): sketches merge exactly, so the p95
-- of a day or of several groups is computed from the merged sketch, never by
-- averaging percentiles. Hourly rows are built from raw calls, daily rows by
-- merging the day's hourly sketches.
CREATE TABLE exai.performance_hourly (
  bucket timestamptz NOT NULL,
  user_id uuid,
  api_key_id uuid,
  kind text NOT NULL CHECK (kind IN ('tool', 'provider')),
  tool text,
  model text,
  provider text,
  param_hash text NOT NULL,
  call_count bigint NOT NULL,
  error_count bigint NOT NULL,
  duration_sum_ms double precision NOT NULL,
  avg_duration_ms double precision NOT NULL,
  min_ms double precision NOT NULL,
  max_ms double precision NOT NULL,
  p50_ms double precision NOT NULL,
  p95_ms double precision NOT NULL,
  p99_ms double precision NOT NULL,
  ttft_count bigint NOT NULL,
  ttft_sum_ms double precision NOT NULL,
  input_tokens bigint NOT NULL,
  output_tokens bigint NOT NULL,
  cost_usd double precision NOT NULL,
  sketch bytea NOT NULL,
  CONSTRAINT performance_hourly_key UNIQUE NULLS NOT DISTINCT (bucket, user_id, api_key_id, kind, tool, model, provider, param_hash)
);
CREATE INDEX performance_hourly_user_idx ON exai.performance_hourly (user_id, bucket);

CREATE TABLE exai.performance_daily (LIKE exai.performance_hourly INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE exai.performance_daily
  ADD CONSTRAINT performance_daily_key UNIQUE NULLS NOT DISTINCT (bucket, user_id, api_key_id, kind, tool, model, provider, param_hash);
CREATE INDEX performance_daily_user_idx ON exai.performance_daily (user_id, bucket);

-- Every user's calls together (no user or key columns), for the questions an
-- administrator asks across everyone: a tenth or less of the rows to merge.
-- Built by the daily roll-up alongside performance_daily; only the service reads it.
CREATE TABLE exai.performance_daily_all (LIKE exai.performance_hourly INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE exai.performance_daily_all DROP COLUMN user_id, DROP COLUMN api_key_id;
ALTER TABLE exai.performance_daily_all
  ADD CONSTRAINT performance_daily_all_key UNIQUE NULLS NOT DISTINCT (bucket, kind, tool, model, provider, param_hash);
ALTER TABLE exai.performance_daily_all ENABLE ROW LEVEL SECURITY;
ALTER TABLE exai.performance_daily_all FORCE ROW LEVEL SECURITY;
CREATE POLICY performance_daily_all_service ON exai.performance_daily_all FOR ALL TO service_role USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, DELETE ON exai.performance_daily_all TO service_role;

ALTER TABLE exai.performance_hourly ENABLE ROW LEVEL SECURITY;
ALTER TABLE exai.performance_hourly FORCE ROW LEVEL SECURITY;
ALTER TABLE exai.performance_daily ENABLE ROW LEVEL SECURITY;
ALTER TABLE exai.performance_daily FORCE ROW LEVEL SECURITY;
CREATE POLICY performance_hourly_select_own ON exai.performance_hourly FOR SELECT TO authenticated
  USING (user_id = (SELECT auth.uid()));
CREATE POLICY performance_hourly_service ON exai.performance_hourly FOR ALL TO service_role USING (true) WITH CHECK (true);
CREATE POLICY performance_daily_select_own ON exai.performance_daily FOR SELECT TO authenticated
  USING (user_id = (SELECT auth.uid()));
CREATE POLICY performance_daily_service ON exai.performance_daily FOR ALL TO service_role USING (true) WITH CHECK (true);
GRANT SELECT ON exai.performance_hourly, exai.performance_daily TO authenticated;
GRANT SELECT, INSERT, DELETE ON exai.performance_hourly, exai.performance_daily TO service_role;

-- Usage (tokens and cost per user, key, provider, model and day): the provider
-- calls of the daily roll-ups. A view, so it can never disagree with them.
CREATE VIEW exai.usage_daily WITH (security_invoker = true) AS
  SELECT (bucket AT TIME ZONE 'UTC')::date AS day, user_id, api_key_id, provider, model,
         sum(call_count)::bigint AS call_count,
         sum(error_count)::bigint AS error_count,
         sum(input_tokens)::bigint AS input_tokens,
         sum(output_tokens)::bigint AS output_tokens,
         sum(cost_usd) AS cost_usd
    FROM exai.performance_daily
   WHERE kind = 'provider'
   GROUP BY 1, 2, 3, 4, 5;
GRANT SELECT ON exai.usage_daily TO authenticated, service_role;

-- Buckets whose roll-up is stale. The recorder marks an hour when it writes
-- calls into it; the hourly roll-up rebuilds the hour and marks its day; the
-- daily roll-up rebuilds a day once none of its hours is stale. A roll-up
-- holds the mark's row lock while it rebuilds: a flush into that hour waits,
-- then marks it again, so calls that arrive meanwhile are rolled up next time.
-- `version` changes with every mark (for diagnosis). Readers use raw calls
-- (or hourly rows) for stale buckets, so answers are never behind.
CREATE SEQUENCE exai.rollup_version_seq;
CREATE TABLE exai.rollup_pending (
  level text NOT NULL CHECK (level IN ('hour', 'day')),
  bucket timestamptz NOT NULL,
  version bigint NOT NULL DEFAULT nextval('exai.rollup_version_seq'),
  PRIMARY KEY (level, bucket)
);
ALTER TABLE exai.rollup_pending ENABLE ROW LEVEL SECURITY;
ALTER TABLE exai.rollup_pending FORCE ROW LEVEL SECURITY;
-- Which buckets are stale is no one's private data; readers need it to answer correctly.
CREATE POLICY rollup_pending_read ON exai.rollup_pending FOR SELECT TO authenticated USING (true);
CREATE POLICY rollup_pending_service ON exai.rollup_pending FOR ALL TO service_role USING (true) WITH CHECK (true);
GRANT SELECT ON exai.rollup_pending TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON exai.rollup_pending TO service_role;
GRANT USAGE ON SEQUENCE exai.rollup_version_seq TO service_role;

-- Alerts ----------------------------------------------------------------------
-- What the alert rules found: one row when a rule starts firing and one when it
-- resolves. Operators' data: only the service (and admins through it) reads it.
CREATE TABLE exai.alert_events (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  rule text NOT NULL CHECK (char_length(rule) BETWEEN 1 AND 100),
  state text NOT NULL CHECK (state IN ('firing', 'resolved')),
  observed double precision,
  threshold double precision NOT NULL,
  details jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(details) = 'object')
);
CREATE INDEX alert_events_rule_idx ON exai.alert_events (rule, at DESC);
ALTER TABLE exai.alert_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE exai.alert_events FORCE ROW LEVEL SECURITY;
CREATE POLICY alert_events_service ON exai.alert_events FOR ALL TO service_role USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, DELETE ON exai.alert_events TO service_role;
