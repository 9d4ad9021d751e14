/**
 * Files for search: the indexing job cuts each file's extracted text
 * (exai.file_texts, written by the file processing job) into chunks, then
 * embeds the chunks that have no vector for the configured model, as it does
 * messages. Per object, not per user: the same bytes are chunked and embedded
 * once. A newer extraction of an object replaces its chunks (and, through the
 * foreign key, their vectors). Idempotent and resumable like the message side.
 */
import { asService } from '../db/session.js';
import type { Database } from '../db/types.js';
import type { IndexerDeps, IndexProgress } from './indexer.js';
import { embedChecked } from './indexer.js';
import { chunkText } from './text-chunks.js';

/** Texts chunked per transaction: a text is at most 2,000,000 characters, so about 1,500 chunks. */
const textsPerRound = 10;

/** Cuts the texts that have no chunks of their latest extraction; returns how many texts were chunked. */
export async function chunkPendingTexts(db: Database, options: { maxTexts?: number } = {}): Promise<number> {
  let chunked = 0;
  const maxTexts = options.maxTexts ?? 200;
  while (chunked < maxTexts) {
    const done = await asService(db, async (tx) => {
      // SKIP LOCKED: a second instance's job (or a re-extraction in progress) takes other texts.
      const pending = await tx.query<{ storage_key: string; content: string }>(
        `SELECT t.storage_key, t.content FROM exai.file_texts t
          WHERE t.chunked_at IS DISTINCT FROM t.extracted_at
          ORDER BY t.extracted_at, t.storage_key
          LIMIT ${textsPerRound}
          FOR UPDATE SKIP LOCKED`,
      );
      for (const text of pending.rows) {
        await tx.query('DELETE FROM exai.file_chunks WHERE storage_key = $1', [text.storage_key]);
        const chunks = chunkText(text.content).map((chunk, index) => ({ chunk_index: index, start_char: chunk.start, content: chunk.content }));
        await tx.query(
          // The extraction time from the row itself: a JavaScript Date would lose its microseconds.
          `INSERT INTO exai.file_chunks (storage_key, chunk_index, extracted_at, start_char, content)
           SELECT t.storage_key, r.chunk_index, t.extracted_at, r.start_char, r.content
             FROM exai.file_texts t, json_to_recordset($2::json) AS r(chunk_index integer, start_char integer, content text)
            WHERE t.storage_key = $1`,
          [text.storage_key, JSON.stringify(chunks)],
        );
        // Marked even with no chunks (a blank text, a scanned PDF), so it is not taken again.
        await tx.query('UPDATE exai.file_texts SET chunked_at = extracted_at WHERE storage_key = $1', [text.storage_key]);
      }
      return pending.rows.length;
    });
    chunked += done;
    if (done < textsPerRound) break;
  }
  return chunked;
}

const pendingChunksSql = `
  SELECT c.storage_key, c.chunk_index, c.extracted_at::text AS extracted_at, c.content FROM exai.file_chunks c
   WHERE NOT EXISTS (SELECT 1 FROM exai.file_chunk_embeddings e
                      WHERE e.storage_key = c.storage_key AND e.chunk_index = c.chunk_index AND e.model = $1)
   ORDER BY c.extracted_at, c.storage_key, c.chunk_index
   LIMIT $2`;

/** What is left for files: chunks without a vector for the model, plus extracted texts not cut into chunks yet. */
export async function countPendingFileWork(db: Database, model: string): Promise<number> {
  const counted = await asService(db, (tx) =>
    tx.query<{ n: number }>(
      `SELECT (SELECT count(*) FROM exai.file_chunks c
                WHERE NOT EXISTS (SELECT 1 FROM exai.file_chunk_embeddings e
                                   WHERE e.storage_key = c.storage_key AND e.chunk_index = c.chunk_index AND e.model = $1))::int
            + (SELECT count(*) FROM exai.file_texts t WHERE t.chunked_at IS DISTINCT FROM t.extracted_at)::int AS n`,
      [model],
    ),
  );
  return counted.rows[0]!.n;
}

/** Chunks what is new, then embeds chunks a batch at a time until none is left, `maxBatches` ran, or the signal aborts. */
export async function indexPendingFileChunks(
  deps: IndexerDeps,
  options: { batchSize?: number; maxBatches?: number; signal?: AbortSignal } = {},
): Promise<IndexProgress> {
  const { db, embedder } = deps;
  const batchSize = options.batchSize ?? 64;
  await chunkPendingTexts(db);
  let indexed = 0;
  for (let batch = 0; batch < (options.maxBatches ?? Number.POSITIVE_INFINITY); batch += 1) {
    if (options.signal?.aborted === true) break;
    const pending = await asService(db, (tx) =>
      tx.query<{ storage_key: string; chunk_index: number; extracted_at: string; content: string }>(pendingChunksSql, [embedder.model, batchSize]),
    );
    if (pending.rows.length === 0) break;
    const vectors = await embedChecked(embedder, pending.rows.map((row) => row.content), options.signal);
    const rows = pending.rows.map((row, index) => ({
      storage_key: row.storage_key,
      chunk_index: row.chunk_index,
      extracted_at: row.extracted_at,
      embedding: vectors[index]!,
    }));
    // Joined to the chunks of the same extraction: one cut again (by another instance's job) meanwhile
    // is skipped, so an old text's vector never lands on a new chunk.
    await asService(db, (tx) =>
      tx.query(
        `INSERT INTO exai.file_chunk_embeddings (storage_key, chunk_index, model, dimensions, embedding)
         SELECT r.storage_key, r.chunk_index, $2, $3, r.embedding::vector
           FROM json_to_recordset($1::json) AS r(storage_key text, chunk_index integer, extracted_at text, embedding text)
           JOIN exai.file_chunks c ON c.storage_key = r.storage_key AND c.chunk_index = r.chunk_index
                                  AND c.extracted_at = r.extracted_at::timestamptz
         ON CONFLICT (storage_key, chunk_index, model) DO NOTHING`,
        [JSON.stringify(rows), embedder.model, embedder.dimensions],
      ),
    );
    indexed += rows.length;
    if (pending.rows.length < batchSize) break;
  }
  return { indexed, remaining: await countPendingFileWork(db, embedder.model) };
}
