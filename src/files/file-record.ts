/** A stored file as callers see it, and how it is read from a row. */
export interface FileRecord {
  id: string;
  name: string;
  bucket: string;
  size: number;
  mimeType: string;
  sha256: string;
  storageKey: string;
  localPath: string | null;
  metadata: Record<string, unknown>;
  createdAt: string;
}

export const fileColumns =
  'm.id, m.file_path, m.bucket, m.size, m.mime_type, m.sha256, m.storage_key, m.local_path, m.metadata, m.created_at';

export interface FileRow {
  id: string;
  file_path: string;
  bucket: string;
  size: string | number;
  mime_type: string;
  sha256: string;
  storage_key: string;
  local_path: string | null;
  metadata: Record<string, unknown>;
  created_at: Date | string;
}

export function toFileRecord(row: FileRow): FileRecord {
  return {
    id: row.id,
    name: row.file_path,
    bucket: row.bucket,
    size: Number(row.size),
    mimeType: row.mime_type,
    sha256: row.sha256,
    storageKey: row.storage_key,
    localPath: row.local_path,
    metadata: row.metadata,
    createdAt: new Date(row.created_at).toISOString(),
  };
}

/** What tools and the REST API show of a file: never the storage key or the server's paths. */
export function publicFile(file: FileRecord): Record<string, unknown> {
  return {
    file_id: file.id,
    name: file.name,
    bucket: file.bucket,
    size: file.size,
    mime_type: file.mimeType,
    sha256: file.sha256,
    created_at: file.createdAt,
  };
}
