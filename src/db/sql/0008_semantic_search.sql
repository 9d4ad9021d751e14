-- description: message embeddings per model (pgvector, partial HNSW index per model), semantic_search() under row-level security

-- One vector per message and embedding model. The model is kept with each
-- vector, so changing the model (or its dimension) needs no schema change: the
-- new model's vectors are added beside the old ones by the indexing job, and
-- each model has its own partial HNSW index on a cast to its dimension.
CREATE TABLE exai.message_embeddings (
  message_id uuid NOT NULL REFERENCES exai.messages (id) ON DELETE CASCADE,
  model text NOT NULL CHECK (model ~ '^[A-Za-z0-9._:/-]{1,200}$'),
  owner_id uuid NOT NULL REFERENCES exai.users (id) ON DELETE CASCADE,
  conversation_id uuid NOT NULL,
  dimensions integer NOT NULL CHECK (dimensions BETWEEN 1 AND 4000),
  -- Null when the text has nothing to embed (no words): the message counts as indexed.
  embedding vector CHECK (embedding IS NULL OR vector_dims(embedding) = dimensions),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (message_id, model)
);
CREATE INDEX message_embeddings_owner_idx ON exai.message_embeddings (owner_id, model);
-- The built-in lexical embedder's index, with pgvector's default m and ef_construction. Its hashed
-- vectors are hard for HNSW: see README "Search" for the recall measured per ef_search.
CREATE INDEX message_embeddings_local_hnsw ON exai.message_embeddings
  USING hnsw ((embedding::vector(384)) vector_cosine_ops) WITH (m = 16, ef_construction = 64)
  WHERE model = 'exai-local-hash-384';

ALTER TABLE exai.message_embeddings ENABLE ROW LEVEL SECURITY;
ALTER TABLE exai.message_embeddings FORCE ROW LEVEL SECURITY;
CREATE POLICY message_embeddings_select_own ON exai.message_embeddings FOR SELECT TO authenticated
  USING (owner_id = (SELECT auth.uid()));
CREATE POLICY message_embeddings_service ON exai.message_embeddings FOR ALL TO service_role USING (true) WITH CHECK (true);
GRANT SELECT ON exai.message_embeddings TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON exai.message_embeddings TO service_role;

-- The seed's semantic_search(query_embedding, similarity_threshold, match_count),
-- callable through Supabase RPC. SECURITY INVOKER: the caller's row-level
-- security decides which messages exist. The cast to the query's dimension lets
-- the model's partial HNSW index answer.
CREATE FUNCTION exai.semantic_search(
  query_embedding vector,
  similarity_threshold double precision DEFAULT 0.3,
  match_count integer DEFAULT 10,
  embedding_model text DEFAULT 'exai-local-hash-384'
) RETURNS TABLE (message_id uuid, conversation_id uuid, role text, content text, similarity double precision, created_at timestamptz)
LANGUAGE plpgsql
STABLE
SECURITY INVOKER
-- Where pgvector lives: public here, extensions on Supabase; a missing schema is skipped.
SET search_path = pg_catalog, public, extensions, pg_temp
AS $fn$
DECLARE
  dims integer := vector_dims(query_embedding);
BEGIN
  IF match_count IS NULL OR match_count < 1 OR match_count > 200 THEN
    RAISE EXCEPTION 'match_count must be between 1 and 200' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN QUERY EXECUTE format(
    'SELECT m.id, m.conversation_id, m.role, m.content, 1 - (e.embedding::vector(%1$s) <=> $1::vector(%1$s)), m.created_at
       FROM exai.message_embeddings e JOIN exai.messages m ON m.id = e.message_id
      WHERE e.model = $2 AND e.embedding IS NOT NULL AND e.dimensions = %1$s
        AND 1 - (e.embedding::vector(%1$s) <=> $1::vector(%1$s)) >= $3
      ORDER BY e.embedding::vector(%1$s) <=> $1::vector(%1$s)
      LIMIT $4', dims)
  USING query_embedding, embedding_model, similarity_threshold, match_count;
END
$fn$;
REVOKE ALL ON FUNCTION exai.semantic_search(vector, double precision, integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exai.semantic_search(vector, double precision, integer, text) TO authenticated, service_role;
