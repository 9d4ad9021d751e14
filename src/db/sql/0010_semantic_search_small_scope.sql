-- description: semantic_search() compares all of the caller's vectors when they are few, and walks the index iteratively otherwise

-- The model's HNSW index holds every user's vectors. Walked for a caller whose
-- rows row-level security keeps, it found only what lay among the nearest
-- 40 of all users (hnsw.ef_search): a user with a small share of a big index
-- got few results or none. Now the caller's vectors of the model are counted
-- (row-level security counts only theirs, by the owner index, at most 5,001):
-- up to 5,000 are all compared ("+ 0" is not the index's expression, so the
-- index is not used); more are a large enough share for an iterative walk,
-- which keeps going past rows the caller may not see (pgvector 0.8), in order.
CREATE OR REPLACE FUNCTION exai.semantic_search(
  query_embedding vector,
  similarity_threshold double precision DEFAULT 0.3,
  match_count integer DEFAULT 10,
  embedding_model text DEFAULT 'exai-local-hash-384'
) RETURNS TABLE (message_id uuid, conversation_id uuid, role text, content text, similarity double precision, created_at timestamptz)
LANGUAGE plpgsql
STABLE
SECURITY INVOKER
SET search_path = pg_catalog, public, extensions, pg_temp
SET hnsw.iterative_scan = strict_order
AS $fn$
DECLARE
  dims integer := vector_dims(query_embedding);
  in_scope bigint;
BEGIN
  IF match_count IS NULL OR match_count < 1 OR match_count > 200 THEN
    RAISE EXCEPTION 'match_count must be between 1 and 200' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT count(*) INTO in_scope FROM (SELECT 1 FROM exai.message_embeddings e WHERE e.model = embedding_model LIMIT 5001) counted;
  RETURN QUERY EXECUTE format(
    'SELECT m.id, m.conversation_id, m.role, m.content, 1 - (e.embedding::vector(%1$s) <=> $1::vector(%1$s)), m.created_at
       FROM exai.message_embeddings e JOIN exai.messages m ON m.id = e.message_id
      WHERE e.model = $2 AND e.embedding IS NOT NULL AND e.dimensions = %1$s
        AND 1 - (e.embedding::vector(%1$s) <=> $1::vector(%1$s)) >= $3
      ORDER BY %2$s
      LIMIT $4',
    dims,
    CASE WHEN in_scope <= 5000 THEN format('(e.embedding::vector(%1$s) <=> $1::vector(%1$s)) + 0', dims)
         ELSE format('e.embedding::vector(%1$s) <=> $1::vector(%1$s)', dims) END)
  USING query_embedding, embedding_model, similarity_threshold, match_count;
END
$fn$;
