-- description: files' extracted text in chunks for search (full text and vectors per model), visible through the user's own files; vectors stored inline

-- The extraction job's text (exai.file_texts), cut into overlapping chunks by
-- the search indexing job. Per object, like the text: the same bytes are
-- chunked and embedded once for every user who has them.
CREATE TABLE exai.file_chunks (
  storage_key text NOT NULL REFERENCES exai.file_texts (storage_key) ON DELETE CASCADE,
  chunk_index integer NOT NULL CHECK (chunk_index >= 0),
  -- The extraction the chunk was cut from: a newer extraction of the object replaces its chunks.
  extracted_at timestamptz NOT NULL,
  -- Where the chunk starts in the extracted text, in characters.
  start_char integer NOT NULL CHECK (start_char >= 0),
  content text NOT NULL CHECK (char_length(content) BETWEEN 1 AND 4000),
  content_tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED,
  PRIMARY KEY (storage_key, chunk_index)
);
CREATE INDEX file_chunks_content_tsv_idx ON exai.file_chunks USING gin (content_tsv);

-- The extraction last cut into chunks (none for a blank text): the indexing job cuts a text
-- whose extracted_at differs.
ALTER TABLE exai.file_texts ADD COLUMN chunked_at timestamptz;

-- One vector per chunk and embedding model, as exai.message_embeddings keeps them for messages.
CREATE TABLE exai.file_chunk_embeddings (
  storage_key text NOT NULL,
  chunk_index integer NOT NULL,
  model text NOT NULL CHECK (model ~ '^[A-Za-z0-9._:/-]{1,200}$'),
  dimensions integer NOT NULL CHECK (dimensions BETWEEN 1 AND 4000),
  embedding vector CHECK (embedding IS NULL OR vector_dims(embedding) = dimensions),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (storage_key, chunk_index, model),
  FOREIGN KEY (storage_key, chunk_index) REFERENCES exai.file_chunks (storage_key, chunk_index) ON DELETE CASCADE
);
CREATE INDEX file_chunk_embeddings_local_hnsw ON exai.file_chunk_embeddings
  USING hnsw ((embedding::vector(384)) vector_cosine_ops) WITH (m = 16, ef_construction = 64)
  WHERE model = 'exai-local-hash-384';

-- A user sees an object's chunks only through a live file of their own, as with exai.file_objects.
ALTER TABLE exai.file_chunks ENABLE ROW LEVEL SECURITY;
ALTER TABLE exai.file_chunks FORCE ROW LEVEL SECURITY;
CREATE POLICY file_chunks_select_own ON exai.file_chunks FOR SELECT TO authenticated
  USING (EXISTS (SELECT 1 FROM exai.file_metadata m
                  WHERE m.storage_key = file_chunks.storage_key AND m.owner_id = (SELECT auth.uid()) AND m.deleted_at IS NULL));
CREATE POLICY file_chunks_service ON exai.file_chunks FOR ALL TO service_role USING (true) WITH CHECK (true);
GRANT SELECT ON exai.file_chunks TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON exai.file_chunks TO service_role;

ALTER TABLE exai.file_chunk_embeddings ENABLE ROW LEVEL SECURITY;
ALTER TABLE exai.file_chunk_embeddings FORCE ROW LEVEL SECURITY;
CREATE POLICY file_chunk_embeddings_select_own ON exai.file_chunk_embeddings FOR SELECT TO authenticated
  USING (EXISTS (SELECT 1 FROM exai.file_metadata m
                  WHERE m.storage_key = file_chunk_embeddings.storage_key AND m.owner_id = (SELECT auth.uid()) AND m.deleted_at IS NULL));
CREATE POLICY file_chunk_embeddings_service ON exai.file_chunk_embeddings FOR ALL TO service_role USING (true) WITH CHECK (true);
GRANT SELECT ON exai.file_chunk_embeddings TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON exai.file_chunk_embeddings TO service_role;

-- Vectors of a provider's model (1024 dimensions: 4 KiB) would be moved out of line by TOAST,
-- which makes the table look small to the planner: pgvector's cost estimate then prefers a
-- sequential scan to the HNSW index at 100,000 rows (measured by the search benchmark). MAIN keeps
-- them in the row (up to about 1,950 dimensions fit a page beside the other columns), so the
-- table's size is what a scan reads. Rows written before keep their storage until rewritten.
ALTER TABLE exai.message_embeddings ALTER COLUMN embedding SET STORAGE MAIN;
ALTER TABLE exai.file_chunk_embeddings ALTER COLUMN embedding SET STORAGE MAIN;
