-- description: files: content-addressed objects, per-user file metadata, buckets, provider file ids, conversation links, extracted text

-- Buckets ---------------------------------------------------------------------
-- Supabase Storage's idea: each bucket has a size limit and the MIME types it
-- takes (null = any). Operators change them with SQL; exai reads them per upload.
CREATE TABLE exai.file_buckets (
  name text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  max_bytes bigint NOT NULL CHECK (max_bytes > 0),
  allowed_mime_types text[],
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO exai.file_buckets (name, max_bytes, allowed_mime_types) VALUES
  -- Files tools read for a conversation: documents, source, data and images.
  ('conversation-files', 64 * 1024 * 1024, ARRAY[
    'text/*', 'application/json', 'application/xml', 'application/yaml', 'application/x-yaml', 'application/toml',
    'application/javascript', 'application/typescript', 'application/x-sh', 'application/sql', 'application/pdf',
    'image/png', 'image/jpeg', 'image/gif', 'image/webp']),
  -- Anything a user sends, up to 1 GiB.
  ('user-uploads', 1024 * 1024 * 1024, NULL);
ALTER TABLE exai.file_buckets ENABLE ROW LEVEL SECURITY;
ALTER TABLE exai.file_buckets FORCE ROW LEVEL SECURITY;
CREATE POLICY file_buckets_read ON exai.file_buckets FOR SELECT TO authenticated USING (true);
CREATE POLICY file_buckets_service ON exai.file_buckets FOR ALL TO service_role USING (true) WITH CHECK (true);

-- Objects -----------------------------------------------------------------------
-- One row per stored object, shared by every user whose file has these bytes.
-- Only the service sees it: which hashes exist is itself information.
CREATE TABLE exai.file_objects (
  storage_key text PRIMARY KEY CHECK (storage_key ~ '^sha256/[0-9a-f]{64}$'),
  size bigint NOT NULL CHECK (size >= 0),
  -- Where the bytes are kept and how: the object itself, or a gzip of it (large text, compressed by a job).
  stored_key text NOT NULL CHECK (stored_key ~ '^sha256/[0-9a-f]{64}$'),
  stored_encoding text NOT NULL DEFAULT 'identity' CHECK (stored_encoding IN ('identity', 'gzip')),
  stored_size bigint NOT NULL CHECK (stored_size >= 0),
  -- A smaller WebP rendering of an image, made by the processing job.
  preview_key text CHECK (preview_key ~ '^sha256/[0-9a-f]{64}$'),
  preview_size bigint CHECK (preview_size >= 0),
  -- When the processing job (text extraction, gzip at rest, previews) last finished with this object.
  processed_at timestamptz,
  -- Failed tries of the processing job, and the last error; it gives up after 5.
  process_attempts integer NOT NULL DEFAULT 0 CHECK (process_attempts >= 0),
  process_error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- Touched by every upload that reuses the object; the purge job leaves recently touched objects alone.
  referenced_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX file_objects_unprocessed_idx ON exai.file_objects (created_at) WHERE processed_at IS NULL;
ALTER TABLE exai.file_objects ENABLE ROW LEVEL SECURITY;
ALTER TABLE exai.file_objects FORCE ROW LEVEL SECURITY;
CREATE POLICY file_objects_service ON exai.file_objects FOR ALL TO service_role USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON exai.file_objects TO service_role;

-- File metadata -------------------------------------------------------------------
-- The seed's table, one row per user and content: the same bytes uploaded twice
-- by one user are one row. Rows are written by the service only, after it has
-- received the bytes itself: a user who could insert a row naming a hash would
-- read anyone's file with that hash.
CREATE TABLE exai.file_metadata (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  owner_id uuid NOT NULL REFERENCES exai.users (id) ON DELETE CASCADE,
  bucket text NOT NULL REFERENCES exai.file_buckets (name),
  -- The name the file was uploaded under (a base name, or the path it was read from).
  file_path text NOT NULL CHECK (char_length(file_path) BETWEEN 1 AND 1024),
  storage_key text NOT NULL REFERENCES exai.file_objects (storage_key),
  -- Where the bytes are on this machine when the primary store is a local folder.
  local_path text CHECK (char_length(local_path) <= 4096),
  size bigint NOT NULL CHECK (size >= 0),
  mime_type text NOT NULL CHECK (mime_type ~ '^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$' AND char_length(mime_type) <= 255),
  sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  -- Soft delete: the row stops being visible to tools at once; the purge job removes it and, when no row
  -- refers to the object any more, the object.
  deleted_at timestamptz,
  CHECK (storage_key = 'sha256/' || sha256),
  UNIQUE (id, owner_id)
);
CREATE UNIQUE INDEX file_metadata_owner_sha_idx ON exai.file_metadata (owner_id, sha256) WHERE deleted_at IS NULL;
CREATE INDEX file_metadata_owner_created_idx ON exai.file_metadata (owner_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX file_metadata_storage_key_idx ON exai.file_metadata (storage_key);
CREATE INDEX file_metadata_deleted_idx ON exai.file_metadata (deleted_at) WHERE deleted_at IS NOT NULL;

ALTER TABLE exai.file_metadata ENABLE ROW LEVEL SECURITY;
ALTER TABLE exai.file_metadata FORCE ROW LEVEL SECURITY;
CREATE POLICY file_metadata_select_own ON exai.file_metadata FOR SELECT TO authenticated
  USING (owner_id = (SELECT auth.uid()));
CREATE POLICY file_metadata_update_own ON exai.file_metadata FOR UPDATE TO authenticated
  USING (owner_id = (SELECT auth.uid())) WITH CHECK (owner_id = (SELECT auth.uid()));
CREATE POLICY file_metadata_service ON exai.file_metadata FOR ALL TO service_role USING (true) WITH CHECK (true);
GRANT SELECT ON exai.file_metadata TO authenticated;
-- A user reads an object's row (how its bytes are kept) only through a live file of their own.
CREATE POLICY file_objects_select_own ON exai.file_objects FOR SELECT TO authenticated
  USING (EXISTS (SELECT 1 FROM exai.file_metadata m
                  WHERE m.storage_key = file_objects.storage_key AND m.owner_id = (SELECT auth.uid()) AND m.deleted_at IS NULL));
GRANT SELECT ON exai.file_objects TO authenticated;
-- A user may rename and delete (softly) their own files, nothing else.
GRANT UPDATE (file_path, deleted_at, updated_at) ON exai.file_metadata TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON exai.file_metadata TO service_role;
GRANT SELECT ON exai.file_buckets TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON exai.file_buckets TO service_role;

-- Provider file ids -----------------------------------------------------------------
-- A file uploaded to Kimi's or GLM's files API, on demand, cached per (file, provider).
CREATE TABLE exai.provider_files (
  file_id uuid NOT NULL,
  owner_id uuid NOT NULL,
  provider text NOT NULL CHECK (provider ~ '^[a-z0-9-]{1,50}$'),
  provider_file_id text NOT NULL CHECK (char_length(provider_file_id) BETWEEN 1 AND 500),
  uploaded_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  PRIMARY KEY (file_id, provider),
  FOREIGN KEY (file_id, owner_id) REFERENCES exai.file_metadata (id, owner_id) ON DELETE CASCADE
);
CREATE INDEX provider_files_owner_idx ON exai.provider_files (owner_id);
ALTER TABLE exai.provider_files ENABLE ROW LEVEL SECURITY;
ALTER TABLE exai.provider_files FORCE ROW LEVEL SECURITY;
CREATE POLICY provider_files_select_own ON exai.provider_files FOR SELECT TO authenticated
  USING (owner_id = (SELECT auth.uid()));
CREATE POLICY provider_files_service ON exai.provider_files FOR ALL TO service_role USING (true) WITH CHECK (true);
GRANT SELECT ON exai.provider_files TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON exai.provider_files TO service_role;

-- Files of a conversation ------------------------------------------------------------
-- Both foreign keys carry the owner, so a link joins a user's own thread to their own file.
CREATE TABLE exai.conversation_files (
  conversation_id uuid NOT NULL,
  file_id uuid NOT NULL,
  owner_id uuid NOT NULL DEFAULT auth.uid(),
  linked_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (conversation_id, file_id),
  FOREIGN KEY (conversation_id, owner_id) REFERENCES exai.conversations (id, owner_id) ON DELETE CASCADE,
  FOREIGN KEY (file_id, owner_id) REFERENCES exai.file_metadata (id, owner_id) ON DELETE CASCADE
);
CREATE INDEX conversation_files_file_idx ON exai.conversation_files (file_id);
CREATE INDEX conversation_files_owner_idx ON exai.conversation_files (owner_id, conversation_id);
ALTER TABLE exai.conversation_files ENABLE ROW LEVEL SECURITY;
ALTER TABLE exai.conversation_files FORCE ROW LEVEL SECURITY;
CREATE POLICY conversation_files_owner ON exai.conversation_files FOR ALL TO authenticated
  USING (owner_id = (SELECT auth.uid())) WITH CHECK (owner_id = (SELECT auth.uid()));
CREATE POLICY conversation_files_service ON exai.conversation_files FOR ALL TO service_role USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, DELETE ON exai.conversation_files TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON exai.conversation_files TO service_role;

-- Extracted text ----------------------------------------------------------------------
-- Per object, made by the extraction job: the same bytes read the same for everyone.
CREATE TABLE exai.file_texts (
  storage_key text PRIMARY KEY REFERENCES exai.file_objects (storage_key) ON DELETE CASCADE,
  format text NOT NULL CHECK (format IN ('text', 'markdown', 'code', 'pdf')),
  content text NOT NULL,
  truncated boolean NOT NULL DEFAULT false,
  pages integer CHECK (pages >= 0),
  extracted_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE exai.file_texts ENABLE ROW LEVEL SECURITY;
ALTER TABLE exai.file_texts FORCE ROW LEVEL SECURITY;
CREATE POLICY file_texts_service ON exai.file_texts FOR ALL TO service_role USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON exai.file_texts TO service_role;

-- Server secrets ------------------------------------------------------------------------
-- Made once and shared by every instance on this database (e.g. the key that signs download URLs).
CREATE TABLE exai.server_secrets (
  name text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_.]{0,99}$'),
  value text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE exai.server_secrets ENABLE ROW LEVEL SECURITY;
ALTER TABLE exai.server_secrets FORCE ROW LEVEL SECURITY;
CREATE POLICY server_secrets_service ON exai.server_secrets FOR ALL TO service_role USING (true) WITH CHECK (true);
GRANT SELECT, INSERT ON exai.server_secrets TO service_role;
