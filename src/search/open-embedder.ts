/**
 * The embedder the configuration names (EXAI_EMBEDDING_MODEL on GLM or an
 * OpenAI-compatible endpoint), or the built-in lexical one when none is; and
 * the partial HNSW index each model's vectors need.
 */
import { createHash } from 'node:crypto';
import type { Config } from '../config.js';
import type { Database } from '../db/types.js';
import { ExaiError } from '../errors.js';
import type { CallRecorder } from '../providers/call-recorder.js';
import type { Embedder } from './embedder.js';
import { ProviderEmbedder } from './embedding-client.js';
import { countPendingFileWork } from './file-indexer.js';
import { countPending } from './indexer.js';
import { LOCAL_EMBEDDING_MODEL, LocalHashEmbedder } from './local-embedder.js';

export function openEmbedder(config: Pick<Config, 'search' | 'providers'>, recorder?: CallRecorder): Embedder {
  const wanted = config.search.embedding;
  if (wanted === undefined) return new LocalHashEmbedder();
  const { providers } = config;
  const endpoint =
    wanted.provider === 'glm'
      ? { baseUrl: providers.glm.baseUrl, apiKey: providers.glm.apiKey }
      : { baseUrl: providers.openaiCompat.baseUrl, apiKey: providers.openaiCompat.apiKey };
  if (endpoint.baseUrl === undefined) throw new ExaiError('invalid_config', 'EXAI_EMBEDDING_PROVIDER openai-compat needs OPENAI_COMPAT_BASE_URL.');
  return new ProviderEmbedder({
    provider: wanted.provider,
    baseUrl: endpoint.baseUrl,
    apiKey: endpoint.apiKey,
    model: wanted.model,
    dimensions: wanted.dimensions,
    timeoutMs: providers.timeoutMs,
    ...(recorder === undefined ? {} : { recorder }),
  });
}

/**
 * Above this many texts waiting for a model that has no index yet, its index is built after they
 * are embedded: building it over the data is several times faster than inserting each vector into
 * it (`npm run bench -- --only=search`), and a first backfill of a long history is exactly that.
 */
export const bulkLoadThreshold = 10_000;

/** `ready`: the indexes exist; `created`: built now; `deferred`: left for after the backfill. */
export type ModelIndexState = 'ready' | 'created' | 'deferred';

/**
 * Makes sure the model's partial HNSW indexes (messages and file chunks, on the cast to its
 * dimension) exist; the migration made the built-in model's. With `deferAbove`, a missing index is
 * left for after the backfill when more texts than that wait for the model (the indexing job and
 * `exai search reindex` build it once nothing waits); until then search compares vectors without it.
 * Runs as the connecting role, which owns the tables; the model name was checked against a strict
 * pattern. Several instances may do this at once: IF NOT EXISTS, and a race lost to another
 * build fails harmlessly (the caller logs it; the next run finds the index).
 */
export async function ensureModelIndex(db: Database, embedder: Embedder, options: { deferAbove?: number } = {}): Promise<ModelIndexState> {
  if (embedder.model === LOCAL_EMBEDDING_MODEL) return 'ready';
  if (!/^[A-Za-z0-9._:/-]{1,200}$/.test(embedder.model) || !Number.isInteger(embedder.dimensions) || embedder.dimensions > 2000) {
    throw new ExaiError('invalid_config', `Cannot index embeddings of ${JSON.stringify(embedder.model)} with ${embedder.dimensions} dimensions: HNSW takes at most 2000.`);
  }
  const suffix = createHash('sha256').update(`${embedder.model}/${embedder.dimensions}`).digest('hex').slice(0, 12);
  const tables = ['message_embeddings', 'file_chunk_embeddings'];
  const present = await db.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'exai' AND c.relname = ANY($1::text[])`,
    [tables.map((table) => `${table}_${suffix}_hnsw`)],
  );
  const missing = tables.filter((table) => !present.rows.some((row) => row.name === `${table}_${suffix}_hnsw`));
  if (missing.length === 0) return 'ready';
  if (options.deferAbove !== undefined) {
    const waiting = (await countPending(db, embedder.model)) + (await countPendingFileWork(db, embedder.model));
    if (waiting > options.deferAbove) return 'deferred';
  }
  for (const table of missing) {
    await db.maintenance([
      // The graph of a large table fits in memory, so the build does not slow down to disk (pgvector's advice).
      `SET LOCAL maintenance_work_mem = '512MB'`,
      `CREATE INDEX IF NOT EXISTS ${table}_${suffix}_hnsw ON exai.${table}
         USING hnsw ((embedding::vector(${embedder.dimensions})) vector_cosine_ops) WITH (m = 16, ef_construction = 64)
         WHERE model = '${embedder.model}' AND dimensions = ${embedder.dimensions}`,
    ]);
  }
  return 'created';
}
