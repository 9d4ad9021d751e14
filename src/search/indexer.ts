/**
 * Embeds messages after their turns commit, never on a tool call's path: the
 * `search.index` job (queued after each stored turn, and every minute) takes
 * the messages that have no vector for the configured model yet, oldest first,
 * in batches, and records one row per message (null for a text with nothing to
 * embed). Idempotent and resumable: a rerun, or a crash midway, only redoes
 * what has no row; rows of other models are left alone, so switching models
 * re-embeds in the background while search goes on with full text.
 */
import { asService } from '../db/session.js';
import type { Database } from '../db/types.js';
import { ExaiError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Embedder } from './embedder.js';

/** Longer messages are embedded by their start (providers' inputs are bounded too). */
const maxEmbeddedChars = 8_000;

export interface IndexerDeps {
  db: Database;
  embedder: Embedder;
  logger: Logger;
}

export interface IndexProgress {
  indexed: number;
  /** Messages still without a vector for the model when the run ended. */
  remaining: number;
}

/** Messages of users' and models' turns that have no row for the model. */
const pendingSql = `
  SELECT m.id, m.owner_id, m.conversation_id, m.content
    FROM exai.messages m
   WHERE m.role IN ('user', 'assistant')
     AND NOT EXISTS (SELECT 1 FROM exai.message_embeddings e WHERE e.message_id = m.id AND e.model = $1)
   ORDER BY m.created_at, m.id
   LIMIT $2`;

export async function countPending(db: Database, model: string): Promise<number> {
  const counted = await asService(db, (tx) =>
    tx.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM exai.messages m
        WHERE m.role IN ('user', 'assistant')
          AND NOT EXISTS (SELECT 1 FROM exai.message_embeddings e WHERE e.message_id = m.id AND e.model = $1)`,
      [model],
    ),
  );
  return counted.rows[0]!.n;
}

/**
 * Embeds a batch and checks every vector (count and dimension) before any row is written, so a bad
 * answer stores nothing; the vectors come back in pgvector's text form (null: nothing to embed).
 */
export async function embedChecked(embedder: Embedder, texts: string[], signal: AbortSignal | undefined): Promise<(string | null)[]> {
  const vectors = await embedder.embed(texts, signal === undefined ? {} : { signal });
  if (vectors.length !== texts.length) {
    throw new ExaiError('provider_error', `The embedding model ${embedder.model} returned ${vectors.length} vectors for ${texts.length} texts; nothing was stored.`);
  }
  return vectors.map((vector) => vectorText(vector, embedder.dimensions, embedder.model));
}

/** Vectors as pgvector's text form; a zero vector (nothing to embed) is stored as null. */
function vectorText(vector: readonly number[], dimensions: number, model: string): string | null {
  if (vector.length !== dimensions) {
    throw new ExaiError('provider_error', `The embedding model ${model} returned a ${vector.length}-dimensional vector where ${dimensions} were expected; nothing was stored.`);
  }
  if (vector.every((value) => value === 0)) return null;
  return `[${vector.join(',')}]`;
}

/** Indexes pending messages, a batch at a time, until none is left, `maxBatches` ran, or the signal aborts. */
export async function indexPendingMessages(
  deps: IndexerDeps,
  options: { batchSize?: number; maxBatches?: number; signal?: AbortSignal; onProgress?: (progress: IndexProgress) => void } = {},
): Promise<IndexProgress> {
  const { db, embedder } = deps;
  const batchSize = options.batchSize ?? 200;
  const total = options.onProgress === undefined ? 0 : await countPending(db, embedder.model);
  let indexed = 0;
  for (let batch = 0; batch < (options.maxBatches ?? Number.POSITIVE_INFINITY); batch += 1) {
    if (options.signal?.aborted === true) break;
    const pending = await asService(db, (tx) =>
      tx.query<{ id: string; owner_id: string; conversation_id: string; content: string }>(pendingSql, [embedder.model, batchSize]),
    );
    if (pending.rows.length === 0) break;
    const vectors = await embedChecked(embedder, pending.rows.map((row) => row.content.slice(0, maxEmbeddedChars)), options.signal);
    const rows = pending.rows.map((row, index) => ({ ...row, vector: vectors[index]! }));
    await asService(db, (tx) =>
      tx.query(
        `INSERT INTO exai.message_embeddings (message_id, model, owner_id, conversation_id, dimensions, embedding)
         SELECT r.message_id, $2, r.owner_id, r.conversation_id, $3, r.embedding::vector
           FROM json_to_recordset($1::json) AS r(message_id uuid, owner_id uuid, conversation_id uuid, embedding text)
         ON CONFLICT (message_id, model) DO NOTHING`,
        [
          JSON.stringify(rows.map((row) => ({ message_id: row.id, owner_id: row.owner_id, conversation_id: row.conversation_id, embedding: row.vector }))),
          embedder.model,
          embedder.dimensions,
        ],
      ),
    );
    indexed += rows.length;
    options.onProgress?.({ indexed, remaining: Math.max(0, total - indexed) });
    if (pending.rows.length < batchSize) break;
  }
  const remaining = await countPending(db, embedder.model);
  return { indexed, remaining };
}
