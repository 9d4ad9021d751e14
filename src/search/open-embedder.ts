/**
 * The embedder the configuration names (EXAI_EMBEDDING_MODEL on GLM or an
 * OpenAI-compatible endpoint), or the built-in lexical one when none is; and
 * the partial HNSW index each model's vectors need.
 */
import { createHash } from 'node:crypto';
import type { Config } from '../config.js';
import { asService } from '../db/session.js';
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
 * Above this many texts for a model that has no index yet (vectors stored and texts waiting), its
 * index is built after they are all embedded: building it over the data is several times faster
 * than inserting each vector into it (`npm run bench -- --only=search`), and a first backfill of a
 * long history is exactly that; nor does a server's start wait for a long build.
 */
export const bulkLoadThreshold = 10_000;

/**
 * `ready`: the indexes exist; `created`: built now; `deferred`: left for after the backfill;
 * `building`: another connection is building one.
 */
export type ModelIndexState = 'ready' | 'created' | 'deferred' | 'building';

const indexedTables = ['message_embeddings', 'file_chunk_embeddings'] as const;

function modelIndexNames(embedder: Embedder): { table: (typeof indexedTables)[number]; name: string }[] {
  if (!/^[A-Za-z0-9._:/-]{1,200}$/.test(embedder.model) || !Number.isInteger(embedder.dimensions) || embedder.dimensions > 2000) {
    throw new ExaiError('invalid_config', `Cannot index embeddings of ${JSON.stringify(embedder.model)} with ${embedder.dimensions} dimensions: HNSW takes at most 2000.`);
  }
  const suffix = createHash('sha256').update(`${embedder.model}/${embedder.dimensions}`).digest('hex').slice(0, 12);
  return indexedTables.map((table) => ({ table, name: `${table}_${suffix}_hnsw` }));
}

/** Each of the model's indexes: valid, being built (by any connection), or neither (left by a failed build). */
async function indexStates(db: Database, names: readonly string[]): Promise<Map<string, { valid: boolean; building: boolean }>> {
  const found = await db.query<{ name: string; valid: boolean; building: boolean }>(
    `SELECT c.relname AS name, i.indisvalid AS valid,
            EXISTS (SELECT 1 FROM pg_stat_progress_create_index p WHERE p.index_relid = c.oid) AS building
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_index i ON i.indexrelid = c.oid
      WHERE n.nspname = 'exai' AND c.relname = ANY($1::text[])`,
    [names],
  );
  return new Map(found.rows.map((row) => [row.name, { valid: row.valid, building: row.building }]));
}

/** The model's indexes as they stand: `missing` when one is neither valid nor being built. */
async function inspectModelIndexes(db: Database, embedder: Embedder) {
  const indexes = modelIndexNames(embedder);
  const states = await indexStates(db, indexes.map((index) => index.name));
  const state = indexes.every((index) => states.get(index.name)?.valid === true)
    ? ('ready' as const)
    : indexes.some((index) => states.get(index.name)?.building === true)
      ? ('building' as const)
      : ('missing' as const);
  return { indexes, states, state };
}

/** Whether the model's indexes exist, without building anything: `deferred` when one is missing. */
export async function modelIndexState(db: Database, embedder: Embedder): Promise<Exclude<ModelIndexState, 'created'>> {
  if (embedder.model === LOCAL_EMBEDDING_MODEL) return 'ready';
  const { state } = await inspectModelIndexes(db, embedder);
  return state === 'missing' ? 'deferred' : state;
}

/**
 * Makes sure the model's partial HNSW indexes (messages and file chunks, on the cast to its
 * dimension) exist; the migration made the built-in model's. With `deferAbove`, a missing index is
 * left for later when the model has more texts than that (the indexing job and `exai search
 * reindex` build it once none waits); until then search compares vectors without it.
 *
 * Runs as the connecting role, which owns the tables; the model name was checked against a strict
 * pattern. On PostgreSQL the build is CONCURRENTLY, so the indexer's writes and the deletions
 * that cascade to vectors go on meanwhile; a build that failed (or whose connection went) leaves
 * an invalid index, which is dropped and built again. While another connection builds one, this
 * answers `building`. PGlite runs one statement at a time, so there the build holds up the
 * process for its length.
 */
export async function ensureModelIndex(db: Database, embedder: Embedder, options: { deferAbove?: number } = {}): Promise<ModelIndexState> {
  if (embedder.model === LOCAL_EMBEDDING_MODEL) return 'ready';
  const { indexes, states, state: current } = await inspectModelIndexes(db, embedder);
  if (current !== 'missing') return current;
  if (options.deferAbove !== undefined && (await textsOfModel(db, embedder.model, options.deferAbove)) > options.deferAbove) return 'deferred';
  const concurrently = db.kind === 'postgres' ? 'CONCURRENTLY ' : '';
  for (const { table, name } of indexes) {
    const state = states.get(name);
    if (state?.valid === true) continue;
    if (state !== undefined) await db.maintenance(`DROP INDEX ${concurrently}IF EXISTS exai.${name}`);
    await db.maintenance(
      `CREATE INDEX ${concurrently}IF NOT EXISTS ${name} ON exai.${table}
         USING hnsw ((embedding::vector(${embedder.dimensions})) vector_cosine_ops) WITH (m = 16, ef_construction = 64)
         WHERE model = '${embedder.model}' AND dimensions = ${embedder.dimensions}`,
    );
  }
  return 'created';
}

/**
 * After a backfill (nothing waits for the model): the index built if it was left for then. A
 * failed build is returned, not thrown: the embedding done stands, and the next run tries again.
 */
export async function indexAfterBackfill(db: Database, embedder: Embedder): Promise<{ index: ModelIndexState | 'failed'; error?: string }> {
  try {
    return { index: await ensureModelIndex(db, embedder) };
  } catch (error) {
    return { index: 'failed', error: error instanceof Error ? error.message : String(error) };
  }
}

/** The model's vectors stored and texts waiting for it, counted up to one past `upTo`. */
async function textsOfModel(db: Database, model: string, upTo: number): Promise<number> {
  const stored = await asService(db, (tx) =>
    tx.query<{ n: string | number }>(
      `SELECT (SELECT count(*) FROM (SELECT 1 FROM exai.message_embeddings WHERE model = $1 LIMIT ${upTo + 1}) m)
            + (SELECT count(*) FROM (SELECT 1 FROM exai.file_chunk_embeddings WHERE model = $1 LIMIT ${upTo + 1}) c) AS n`,
      [model],
    ),
  );
  const counted = Number(stored.rows[0]!.n);
  return counted > upTo ? counted : counted + (await countPending(db, model)) + (await countPendingFileWork(db, model));
}
