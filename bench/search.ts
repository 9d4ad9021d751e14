/**
 * Vector search at scale: the HNSW index of the built-in embedder
 * (`message_embeddings_local_hnsw`, partial on model = 'exai-local-hash-384')
 * against the exact scan, on one user's 100,000 messages (20,000 with --quick).
 *
 * Data: synthetic word-like messages (bench/search-data.ts: a vocabulary of a
 * few thousand word forms, Zipf frequencies, topic mixtures per conversation),
 * embedded with LocalHashEmbedder and loaded in bulk into a fresh database,
 * ~2,000 rows per statement; the index is dropped for the bulk load and built
 * after it (CREATE INDEX with the migration's own definition, m 16,
 * ef_construction 64).
 *
 * Measured, in the same run and interleaved query by query:
 * - 200 held-out search-like texts of 4–16 words (50 with --quick), embedded:
 *   the top 10 through the index (`ORDER BY embedding::vector(384) <=> $1
 *   LIMIT 10` within the partial index's WHERE) at hnsw.ef_search 40, 100,
 *   200, 400, 800 and 1000 (its maximum), and the same statement with index scans disabled
 *   (the exact answer); recall@10 of each ef_search against the exact answer
 *   (a neighbour at the same distance as the exact 10th counts), p50/p95 of
 *   the statement. The same again, in the details, with 200 held-out whole
 *   messages as queries (the usual ANN benchmark: queries like the data);
 * - informational: building the index after loading 10,000 vectors (1,000
 *   with --quick) vs inserting them into the existing index; and the
 *   project's searchConversations (hybrid, vector, text; as the user) over
 *   the same data.
 *
 * Targets (PostgreSQL; PGlite's figures are informational), on the
 * search-like queries, which are what searchConversations embeds: the
 * smallest ef_search reaching recall@10 ≥ 0.95 answers with p95 ≤ 10 ms, and
 * the index scan is at least 10× faster than the exact scan (p50).
 */
import { performance } from 'node:perf_hooks';
import { randomBytes, randomUUID } from 'node:crypto';
import type { Database } from '../src/db/types.js';
import { LOCAL_EMBEDDING_MODEL, LocalHashEmbedder } from '../src/search/local-embedder.js';
import { efSearchFor, searchConversations } from '../src/search/search.js';
import { ensureUser } from '../src/users/users.js';
import { makeResult, type BenchContext, type BenchResult, type Benchmark } from './harness.js';
import {
  insertConversations,
  insertEmbeddingBatch,
  insertMessages,
  mean,
  openFreshBackend,
  percentile,
  rowsPerStatement,
  SyntheticCorpus,
  withLongStatements,
  type EmbeddingInsert,
  type MessageInsert,
} from './search-data.js';

const sizes = {
  full: { messages: 100_000, queries: 200, sample: 10_000, searchQueries: 50 },
  quick: { messages: 20_000, queries: 50, sample: 1_000, searchQueries: 10 },
};
/** pgvector accepts 1–1000. */
const efLevels = [40, 100, 200, 400, 800, 1000];
const indexName = 'message_embeddings_local_hnsw';
const k = 10;
const recallTarget = 0.95;
const p95TargetMs = 10;
const speedupTarget = 0.1;
const messageSeed = 7_001;
const querySeed = 9_001;
const heldOutSeed = 11_001;

const distance = `embedding::vector(384) <=> $1::vector(384)`;
/** The partial index's WHERE, literally, so the planner can prove the index applies. */
const searchSql = `SELECT message_id, ${distance} AS distance
  FROM exai.message_embeddings
 WHERE model = '${LOCAL_EMBEDDING_MODEL}'
 ORDER BY ${distance}
 LIMIT ${k}`;

interface Neighbour {
  message_id: string;
  distance: number;
}

/** One search in its own transaction after `settings`; the statement alone is timed. */
async function timedSearch(db: Database, settings: string, vector: string): Promise<{ ms: number; rows: Neighbour[] }> {
  return db.transaction(async (tx) => {
    await tx.query(settings);
    const start = performance.now();
    const result = await tx.query<{ message_id: string; distance: number | string }>(searchSql, [vector]);
    const ms = performance.now() - start;
    return { ms, rows: result.rows.map((row) => ({ message_id: row.message_id, distance: Number(row.distance) })) };
  });
}

async function explain(db: Database, settings: string, vector: string): Promise<string> {
  return db.transaction(async (tx) => {
    await tx.query(settings);
    const plan = await tx.query<{ 'QUERY PLAN': string }>(`EXPLAIN (COSTS OFF) ${searchSql}`, [vector]);
    // The query vector's literal, hundreds of numbers, as $1.
    return plan.rows.map((row) => row['QUERY PLAN'].trim().replace(/'\[[^\]]*\]'/g, '$1')).join(' / ');
  });
}

const exactSettings = 'SET LOCAL enable_indexscan = off';
const hnswSettings = (ef: number) => `SET LOCAL hnsw.ef_search = ${ef}`;

/** The share of the exact top 10 found; a neighbour as close as the exact 10th counts (ties). */
function recallOf(found: Neighbour[], exact: Neighbour[]): number {
  const exactIds = new Set(exact.map((row) => row.message_id));
  const bound = (exact[exact.length - 1]?.distance ?? Number.POSITIVE_INFINITY) + 1e-6;
  const hits = found.filter((row) => exactIds.has(row.message_id) || row.distance <= bound).length;
  return Math.min(hits, exact.length) / Math.max(1, exact.length);
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const fmt = (ms: number) => ms.toFixed(ms < 10 ? 2 : 1);

async function measure(context: BenchContext): Promise<BenchResult[]> {
  const { progress, quick } = context;
  const size = quick ? sizes.quick : sizes.full;
  const onPostgres = context.backend.db.kind === 'postgres';
  const fresh = await openFreshBackend(context);
  try {
    const db = fresh.db;
    const embedder = new LocalHashEmbedder();
    const user = await ensureUser(db, `bench-search-${randomBytes(4).toString('hex')}`);

    // Messages ---------------------------------------------------------------
    let start = performance.now();
    const corpus = new SyntheticCorpus();
    const messages: MessageInsert[] = [];
    const conversations: { id: string; owner_id: string; title: string; tool_name: string; turn_count: number }[] = [];
    for (const message of corpus.messages(size.messages, messageSeed)) {
      if (message.seq === 1) conversations.push({ id: randomUUID(), owner_id: user.id, title: message.content.slice(0, 60), tool_name: 'chat', turn_count: 0 });
      const conversation = conversations[conversations.length - 1]!;
      conversation.turn_count = message.seq;
      messages.push({ id: randomUUID(), conversation_id: conversation.id, owner_id: user.id, seq: message.seq, role: message.role, content: message.content });
    }
    const chars = messages.reduce((sum, message) => sum + message.content.length, 0);
    progress(`search: generated ${messages.length.toLocaleString('en-US')} messages in ${conversations.length.toLocaleString('en-US')} conversations (${Math.round(chars / messages.length)} characters on average, vocabulary of ${corpus.vocabulary.length.toLocaleString('en-US')} words) in ${seconds(performance.now() - start)}`);
    start = performance.now();
    await insertConversations(db, conversations);
    await insertMessages(db, messages);
    progress(`search: messages stored in ${seconds(performance.now() - start)}`);

    // Vectors, a JSON text per statement, made before any timing --------------------
    let embedMs = 0;
    const batchJson = (from: number, to: number): string => {
      const t = performance.now();
      const rows = messages.slice(from, to).map((message): EmbeddingInsert => ({
        message_id: message.id,
        owner_id: message.owner_id,
        conversation_id: message.conversation_id,
        embedding: `[${embedder.embedOne(message.content).join(',')}]`,
      }));
      embedMs += performance.now() - t;
      return JSON.stringify(rows);
    };
    const sampleBatches: string[] = [];
    for (let from = 0; from < size.sample; from += rowsPerStatement) sampleBatches.push(batchJson(from, Math.min(size.sample, from + rowsPerStatement)));
    const insertBatches = async (batches: readonly string[]) => {
      for (const json of batches) await insertEmbeddingBatch(db, embedder.model, embedder.dimensions, json);
    };

    const definition = (
      await db.query<{ definition: string }>(`SELECT pg_get_indexdef('exai.${indexName}'::regclass) AS definition`)
    ).rows[0]!.definition;
    const maintenanceMemory = onPostgres ? '1GB' : '512MB';
    const buildIndex = (): Promise<number> =>
      withLongStatements(context, db, async (long) => {
        const t = performance.now();
        await long.transaction(async (tx) => {
          await tx.query(`SET LOCAL maintenance_work_mem = '${maintenanceMemory}'`);
          await tx.query(definition);
        });
        return performance.now() - t;
      });
    const dropIndex = () => db.query(`DROP INDEX exai.${indexName}`);

    // Index strategy on the sample: into the existing index, then built after the data.
    start = performance.now();
    await insertBatches(sampleBatches);
    const intoIndexMs = performance.now() - start;
    progress(`search: ${size.sample.toLocaleString('en-US')} vectors inserted into the existing index in ${seconds(intoIndexMs)}`);
    await db.query('TRUNCATE exai.message_embeddings');
    await dropIndex();
    start = performance.now();
    await insertBatches(sampleBatches);
    const sampleLoadMs = performance.now() - start;
    const sampleBuildMs = await buildIndex();
    const afterDataMs = sampleLoadMs + sampleBuildMs;
    progress(`search: the same ${size.sample.toLocaleString('en-US')} vectors loaded without the index, then the index built: ${seconds(sampleLoadMs)} + ${seconds(sampleBuildMs)}`);
    sampleBatches.length = 0;

    // The full load: without the index, then one build.
    await dropIndex();
    start = performance.now();
    const embedBefore = embedMs;
    for (let from = size.sample; from < messages.length; from += rowsPerStatement) {
      await insertEmbeddingBatch(db, embedder.model, embedder.dimensions, batchJson(from, Math.min(messages.length, from + rowsPerStatement)));
    }
    // Without the time spent embedding and serialising the batches.
    const fullLoadMs = performance.now() - start - (embedMs - embedBefore);
    const fullBuildMs = await buildIndex();
    await db.query('ANALYZE exai.messages');
    await db.query('ANALYZE exai.message_embeddings');
    const indexBytes = Number((await db.query<{ bytes: string | number }>(`SELECT pg_relation_size('exai.${indexName}'::regclass) AS bytes`)).rows[0]!.bytes);
    const tableBytes = Number((await db.query<{ bytes: string | number }>(`SELECT pg_table_size('exai.message_embeddings'::regclass) AS bytes`)).rows[0]!.bytes);
    progress(
      `search: the other ${(messages.length - size.sample).toLocaleString('en-US')} vectors loaded in ${seconds(fullLoadMs)} (embedding all: ${seconds(embedMs)}), ` +
        `the index over all ${messages.length.toLocaleString('en-US')} built in ${seconds(fullBuildMs)} ` +
        `(${(indexBytes / 1048576).toFixed(0)} MiB; table ${(tableBytes / 1048576).toFixed(0)} MiB)`,
    );

    // Queries ----------------------------------------------------------------
    // Two held-out sets, never inserted: search-like texts (what searchConversations embeds; the
    // targets are on these) and whole messages from the same generator (the usual ANN benchmark).
    const queryTexts = corpus.queries(size.queries, querySeed);
    const heldOutMessages = [...corpus.messages(size.queries, heldOutSeed)].map((message) => message.content);
    const toVectors = (texts: readonly string[]) =>
      texts.map((text) => embedder.embedOne(text)).filter((vector) => vector.some((value) => value !== 0)).map((vector) => `[${vector.join(',')}]`);
    const queryVectors = toVectors(queryTexts);
    const messageVectors = toVectors(heldOutMessages);
    const exactPlan = await explain(db, exactSettings, queryVectors[0]!);
    const hnswPlan = await explain(db, hnswSettings(efLevels[0]!), queryVectors[0]!);
    if (!hnswPlan.includes(indexName)) throw new Error(`the search does not use ${indexName}: ${hnswPlan}`);
    if (exactPlan.includes(indexName)) throw new Error(`the exact scan uses ${indexName}: ${exactPlan}`);

    const variants = [{ label: 'exact', settings: exactSettings }, ...efLevels.map((ef) => ({ label: `ef${ef}`, settings: hnswSettings(ef) }))];
    for (const vector of queryVectors.slice(0, 5)) for (const variant of variants) await timedSearch(db, variant.settings, vector);
    const runSet = async (vectors: readonly string[]) => {
      const times = new Map<string, number[]>(variants.map((variant) => [variant.label, []]));
      const recalls = new Map<string, number[]>(efLevels.map((ef) => [`ef${ef}`, []]));
      for (const [index, vector] of vectors.entries()) {
        // Rotate which variant goes first, so caching and drift favour none.
        const order = variants.map((_, i) => variants[(i + index) % variants.length]!);
        const answers = new Map<string, Neighbour[]>();
        for (const variant of order) {
          const { ms, rows } = await timedSearch(db, variant.settings, vector);
          times.get(variant.label)!.push(ms);
          answers.set(variant.label, rows);
        }
        const exact = answers.get('exact')!;
        for (const ef of efLevels) recalls.get(`ef${ef}`)!.push(recallOf(answers.get(`ef${ef}`)!, exact));
      }
      const exactTimes = times.get('exact')!;
      return {
        exactP50: percentile(exactTimes, 0.5),
        exactP95: percentile(exactTimes, 0.95),
        levels: efLevels.map((ef) => {
          const ms = times.get(`ef${ef}`)!;
          const recall = recalls.get(`ef${ef}`)!;
          return { ef, p50: percentile(ms, 0.5), p95: percentile(ms, 0.95), p99: percentile(ms, 0.99), recall: mean(recall), worst: Math.min(...recall), below: recall.filter((r) => r < recallTarget).length };
        }),
      };
    };
    start = performance.now();
    const searchLike = await runSet(queryVectors);
    const asMessages = await runSet(messageVectors);
    progress(`search: ${queryVectors.length} + ${messageVectors.length} queries × ${variants.length} variants in ${seconds(performance.now() - start)}`);
    const { exactP50, exactP95, levels } = searchLike;
    for (const [label, set] of [['search-like queries', searchLike], ['held-out messages', asMessages]] as const) {
      for (const level of set.levels) {
        progress(
          `search: ${label}, ef_search ${String(level.ef).padStart(3)}: recall@10 ${level.recall.toFixed(3)} (worst ${level.worst.toFixed(1)}), ` +
            `p50 ${fmt(level.p50)} ms, p95 ${fmt(level.p95)} ms; exact p50 ${fmt(set.exactP50)} ms, p95 ${fmt(set.exactP95)} ms`,
        );
      }
    }
    // The smallest ef_search reaching the target recall; when none does, the largest measured (and the figures miss).
    const reached = levels.find((level) => level.recall >= recallTarget);
    const chosen = reached ?? levels[levels.length - 1]!;
    const chosenLabel = reached === undefined ? `none reaches ${recallTarget}: largest measured, ${chosen.ef}` : `smallest reaching ${recallTarget}: ${chosen.ef}`;
    const smallest = (set: typeof searchLike, wanted: number) => set.levels.find((level) => level.recall >= wanted)?.ef ?? `none of ${efLevels.join(', ')}`;
    const projectEf = efSearchFor(0.95, k);

    // The project's search path over the same data (informational) ------------------
    const searchTexts = queryTexts.slice(0, size.searchQueries);
    const deps = { db, embedder, logger: context.logger };
    for (const text of searchTexts.slice(0, 3)) await searchConversations(deps, user.id, { query: text, limit: k });
    const searchMs: Record<'hybrid' | 'vector' | 'text', number[]> = { hybrid: [], vector: [], text: [] };
    for (const text of searchTexts) {
      for (const signals of ['hybrid', 'vector', 'text'] as const) {
        const t = performance.now();
        await searchConversations(deps, user.id, { query: text, limit: k, signals });
        searchMs[signals].push(performance.now() - t);
      }
    }
    const rawAtProjectEf = levels.find((level) => level.ef === projectEf);
    progress(
      `search: searchConversations p50/p95: hybrid ${fmt(percentile(searchMs.hybrid, 0.5))}/${fmt(percentile(searchMs.hybrid, 0.95))} ms, ` +
        `vector ${fmt(percentile(searchMs.vector, 0.5))}/${fmt(percentile(searchMs.vector, 0.95))} ms, text ${fmt(percentile(searchMs.text, 0.5))}/${fmt(percentile(searchMs.text, 0.95))} ms`,
    );

    // Figures ------------------------------------------------------------------------
    const backend = context.backend.name;
    const count = messages.length.toLocaleString('en-US');
    const data =
      `${count} synthetic messages of one user (${conversations.length.toLocaleString('en-US')} conversations, ${Math.round(chars / messages.length)} characters on average; ` +
      `Zipf vocabulary of ${corpus.vocabulary.length.toLocaleString('en-US')} word forms, topic mixtures), embedded with ${embedder.model} (384 dimensions, lexical), ` +
      `index built after the bulk load (m 16, ef_construction 64, as migrated). ${queryVectors.length} held-out texts of 4–16 words as query vectors.`;
    const measured =
      `Each query: top ${k} by cosine distance within the partial index's WHERE, as the superuser, one transaction per search (SET LOCAL, then the timed statement); ` +
      `the exact answer is the same statement with SET LOCAL enable_indexscan = off; all variants interleaved per query, rotating which goes first, after a warm-up of 5 queries.`;
    const targetsNote = onPostgres ? '' : ' Informational on PGlite (the targets are PostgreSQL’s).';
    const planDetails = { 'plan, index search': hnswPlan, 'plan, exact scan': exactPlan };
    const results: BenchResult[] = [];
    for (const level of levels) {
      const isChosen = level === chosen;
      results.push(
        makeResult({
          name: `search: HNSW top-10 of ${count} vectors, ef_search=${level.ef} (p95)`,
          backend,
          value: level.p95,
          unit: 'ms',
          baseline: exactP95,
          better: 'lower',
          target: isChosen && onPostgres ? p95TargetMs : null,
          targetOn: 'value',
          notes:
            `${data} ${measured} Baseline: the exact scan's p95. ` +
            (isChosen
              ? `ef_search ${level.ef}: ${reached === undefined ? `no measured ef_search reaches recall@10 ≥ ${recallTarget}, this is the largest` : `the smallest measured reaching recall@10 ≥ ${recallTarget}`}; target p95 at most ${p95TargetMs} ms.${targetsNote}`
              : 'Informational.'),
          details: {
            'recall@10 (mean over queries)': level.recall.toFixed(4),
            'worst query recall@10; queries below 0.95': `${level.worst.toFixed(2)}; ${level.below} of ${queryVectors.length}`,
            'p50 / p95 / p99 (ms)': `${fmt(level.p50)} / ${fmt(level.p95)} / ${fmt(level.p99)}`,
            'exact scan p50 / p95 (ms)': `${fmt(exactP50)} / ${fmt(exactP95)}`,
          },
        }),
      );
    }
    results.push(
      makeResult({
        name: `search: HNSW neighbours missed (1 − recall@10), ef_search ${chosenLabel}`,
        backend,
        value: 1 - chosen.recall,
        unit: '1−recall@10',
        baseline: 1 - levels[0]!.recall,
        better: 'lower',
        target: onPostgres ? Number((1 - recallTarget).toFixed(2)) : null,
        targetOn: 'value',
        notes:
          `${data} ${measured} recall@10: the share of the exact top ${k} the index returns (a neighbour as close as the exact 10th counts), mean over queries. ` +
          `Baseline: pgvector's default ef_search 40. Target: recall@10 ≥ ${recallTarget} (missed ≤ ${(1 - recallTarget).toFixed(2)}).${targetsNote}`,
        details: {
          'recall@10 by ef_search': levels.map((level) => `${level.ef}: ${level.recall.toFixed(3)}`).join(', '),
          'p95 by ef_search (ms)': levels.map((level) => `${level.ef}: ${fmt(level.p95)}`).join(', '),
          'smallest ef_search for recall@10 ≥ 0.95 / 0.99': `${smallest(searchLike, 0.95)} / ${smallest(searchLike, 0.99)}`,
          'held-out messages as queries: recall@10 by ef_search': asMessages.levels.map((level) => `${level.ef}: ${level.recall.toFixed(3)}`).join(', '),
          'held-out messages: p95 by ef_search (ms); exact p95': `${asMessages.levels.map((level) => `${level.ef}: ${fmt(level.p95)}`).join(', ')}; ${fmt(asMessages.exactP95)}`,
          'held-out messages: smallest ef_search for recall@10 ≥ 0.95 / 0.99': `${smallest(asMessages, 0.95)} / ${smallest(asMessages, 0.99)}`,
          [`efSearchFor(0.95, ${k}) in src/search/search.ts`]: projectEf,
          ...planDetails,
        },
      }),
      makeResult({
        name: `search: HNSW vs exact scan of ${count} vectors (p50), ef_search ${chosenLabel}`,
        backend,
        value: chosen.p50,
        unit: 'ms',
        baseline: exactP50,
        better: 'lower',
        target: onPostgres ? speedupTarget : null,
        notes:
          `${data} ${measured} Project: the index search at the smallest ef_search reaching recall@10 ≥ ${recallTarget}; baseline: the exact scan. ` +
          `Target: at least ${Math.round(1 / speedupTarget)}× faster (ratio ≤ ${speedupTarget}).${targetsNote}`,
        details: { speedup: `${(exactP50 / chosen.p50).toFixed(1)}×`, 'exact scan p95 (ms)': fmt(exactP95), 'index search p95 (ms)': fmt(chosen.p95) },
      }),
      makeResult({
        name: `search: HNSW index on ${size.sample.toLocaleString('en-US')} vectors, built after the data vs inserted into the existing index`,
        backend,
        value: afterDataMs,
        unit: 'ms',
        baseline: intoIndexMs,
        better: 'lower',
        target: null,
        notes:
          `The first ${size.sample.toLocaleString('en-US')} vectors of the data set, ${rowsPerStatement.toLocaleString('en-US')} rows per INSERT … SELECT FROM json_to_recordset (as the indexer writes them), vectors computed beforehand. ` +
          `Project: dropped index, INSERTs, then CREATE INDEX (maintenance_work_mem ${maintenanceMemory}); baseline: the same INSERTs into the table with its index. Informational.`,
        details: {
          'built after: INSERTs + CREATE INDEX (ms)': `${Math.round(sampleLoadMs)} + ${Math.round(sampleBuildMs)}`,
          [`full data set: the other ${(messages.length - size.sample).toLocaleString('en-US')} vectors loaded without the index + CREATE INDEX over all ${count} (ms)`]: `${Math.round(fullLoadMs)} + ${Math.round(fullBuildMs)}`,
          'index size (MiB); table size (MiB)': `${(indexBytes / 1048576).toFixed(0)}; ${(tableBytes / 1048576).toFixed(0)}`,
          'embedding all messages with LocalHashEmbedder (ms)': Math.round(embedMs),
        },
      }),
      makeResult({
        name: `search: searchConversations hybrid over ${count} messages (p95)`,
        backend,
        value: percentile(searchMs.hybrid, 0.95),
        unit: 'ms',
        baseline: rawAtProjectEf?.p95 ?? chosen.p95,
        better: 'lower',
        target: null,
        notes:
          `The project's search path on the same data: searchConversations(query, limit ${k}) as the user (row-level security), default recall 0.95 (ef_search ${projectEf}), ` +
          `${searchTexts.length} of the held-out texts, signals hybrid, vector and text interleaved. Baseline: the bare index search at ef_search ${rawAtProjectEf?.ef ?? chosen.ef}. Informational.`,
        details: {
          'hybrid p50 / p95 (ms)': `${fmt(percentile(searchMs.hybrid, 0.5))} / ${fmt(percentile(searchMs.hybrid, 0.95))}`,
          'vector only p50 / p95 (ms)': `${fmt(percentile(searchMs.vector, 0.5))} / ${fmt(percentile(searchMs.vector, 0.95))}`,
          'text only p50 / p95 (ms)': `${fmt(percentile(searchMs.text, 0.5))} / ${fmt(percentile(searchMs.text, 0.95))}`,
        },
      }),
    );
    return results;
  } finally {
    await fresh.close();
  }
}

export const searchBenchmark: Benchmark = {
  id: 'search',
  description: 'HNSW vector search over 100K messages (20K with --quick): recall@10 and p50/p95 at ef_search 40–1000 vs the exact scan, index built after vs during the load, searchConversations latency',
  run: measure,
};
