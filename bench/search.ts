/**
 * Vector search at scale: HNSW (pgvector) against the exact scan, on one
 * user's 100,000 messages (20,000 with --quick), for two sets of vectors of
 * the same messages, one after the other in the same run:
 * - lexical: the built-in embedder, LocalHashEmbedder (hashed words and
 *   n-grams, 384 dimensions), and its index `message_embeddings_local_hnsw`
 *   (partial on model = 'exai-local-hash-384', from the migration);
 * - semantic-like: `bench-topic-1024`, 1024 dimensions (exai's default
 *   provider dimension), a topic-mixture model standing in for a provider's
 *   semantic embeddings, NOT a real model (bench/semantic-vectors.ts: each
 *   vector mixes a direction common to all texts, its topics' centroids, its
 *   conversation's direction and its own, so related texts are at cosine
 *   ~0.55–0.7 and unrelated ones at ~0.15, as with text-embedding models),
 *   and the partial index exai creates for a provider model (as
 *   ensureModelIndex in src/search/open-embedder.ts: on
 *   `embedding::vector(1024)`, WHERE model = … AND dimensions = 1024).
 * Each set is measured with only its own vectors in exai.message_embeddings
 * (the table is emptied between them), as a deployment on that model holds.
 *
 * Data: synthetic word-like messages (bench/search-data.ts: a vocabulary of a
 * few thousand word forms, Zipf frequencies, topic mixtures per conversation),
 * loaded in bulk into a fresh database, ~2,000 rows per statement; each
 * set's index is built after its bulk load (CREATE INDEX, m 16,
 * ef_construction 64, as migrated and as exai creates provider models' ones).
 *
 * Measured for each set, in the same run and interleaved query by query:
 * - 200 held-out search-like texts of 4–16 words (50 with --quick), as query
 *   vectors of the set: the top 10 through the index (`ORDER BY
 *   embedding::vector(D) <=> $1 LIMIT 10` within the partial index's WHERE)
 *   at hnsw.ef_search 40, 100, 200, 400, 800 and 1000 (its maximum), and the
 *   same statement with index scans disabled (the exact answer); recall@10 of
 *   each ef_search against the exact answer (a neighbour at the same distance
 *   as the exact 10th counts), p50/p95 of the statement. The same again, in
 *   the details, with 200 held-out whole messages as queries (the usual ANN
 *   benchmark: queries like the data). Where the planner, left alone, does
 *   not use the index at some ef_search (pgvector's cost estimate: see
 *   `forceIndex`), that level is measured through the index all the same,
 *   with sequential and bitmap scans disabled, and the figures say so;
 * - informational, lexical set only: building the index after loading 10,000
 *   vectors (1,000 with --quick) vs inserting them into the existing index;
 *   and the project's searchConversations (hybrid, vector, text; as the user)
 *   over the same data.
 *
 * Targets, for each set (PostgreSQL; PGlite's figures are informational), on
 * the search-like queries, which are what searchConversations embeds: the
 * smallest ef_search reaching recall@10 ≥ 0.95 answers with p95 ≤ 10 ms, and
 * the index scan is at least 10× faster than the exact scan (p50).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Database } from '../src/db/types.js';
import { LOCAL_EMBEDDING_DIMENSIONS, LOCAL_EMBEDDING_MODEL, LocalHashEmbedder } from '../src/search/local-embedder.js';
import { efSearchFor, searchConversations } from '../src/search/search.js';
import { ensureUser } from '../src/users/users.js';
import { makeResult, type BenchContext, type BenchResult, type Benchmark } from './harness.js';
import {
  buildIndex as buildIndexAfterLoad,
  insertConversations,
  insertEmbeddingBatch,
  insertMessages,
  maintenanceMemoryFor,
  mean,
  openFreshBackend,
  percentile,
  rowsPerStatement,
  SyntheticCorpus,
  type EmbeddingInsert,
  type MessageInsert,
  type SyntheticMessage,
} from './search-data.js';
import { cosine, SEMANTIC_DIMENSIONS, SEMANTIC_MODEL, semanticShares, TopicMixtureVectors, type SemanticSource } from './semantic-vectors.js';
import { seededRandom } from './workload.js';

const sizes = {
  full: { messages: 100_000, queries: 200, sample: 10_000, searchQueries: 50 },
  quick: { messages: 20_000, queries: 50, sample: 1_000, searchQueries: 10 },
};
/** pgvector accepts 1–1000. */
const efLevels = [40, 100, 200, 400, 800, 1000];
const k = 10;
const recallTarget = 0.95;
const p95TargetMs = 10;
const speedupTarget = 0.1;
const messageSeed = 7_001;
const querySeed = 9_001;
const heldOutSeed = 11_001;
const pairSeed = 13_001;

/** One vector set: a model's rows in exai.message_embeddings and its partial HNSW index. */
interface VectorSet {
  key: 'lexical' | 'semantic';
  /** In figure names: "lexical vectors (exai-local-hash-384)". */
  noun: string;
  model: string;
  dimensions: number;
  indexName: string;
  /** The top-k statement, within the partial index's WHERE (literally, so the planner can prove the index applies). */
  searchSql: string;
}

function vectorSet(key: VectorSet['key'], noun: string, model: string, dimensions: number, indexName: string, where: string): VectorSet {
  const distance = `embedding::vector(${dimensions}) <=> $1::vector(${dimensions})`;
  const searchSql = `SELECT message_id, ${distance} AS distance
  FROM exai.message_embeddings
 WHERE ${where}
 ORDER BY ${distance}
 LIMIT ${k}`;
  return { key, noun, model, dimensions, indexName, searchSql };
}

const lexicalSet = vectorSet(
  'lexical',
  `lexical vectors (${LOCAL_EMBEDDING_MODEL})`,
  LOCAL_EMBEDDING_MODEL,
  LOCAL_EMBEDDING_DIMENSIONS,
  'message_embeddings_local_hnsw',
  `model = '${LOCAL_EMBEDDING_MODEL}'`,
);
/** Named and defined as ensureModelIndex (src/search/open-embedder.ts) names and defines a provider model's index. */
const semanticIndexName = `message_embeddings_${createHash('sha256').update(`${SEMANTIC_MODEL}/${SEMANTIC_DIMENSIONS}`).digest('hex').slice(0, 12)}_hnsw`;
const semanticWhere = `model = '${SEMANTIC_MODEL}' AND dimensions = ${SEMANTIC_DIMENSIONS}`;
const semanticIndexDefinition = `CREATE INDEX ${semanticIndexName} ON exai.message_embeddings
  USING hnsw ((embedding::vector(${SEMANTIC_DIMENSIONS})) vector_cosine_ops) WITH (m = 16, ef_construction = 64)
  WHERE ${semanticWhere}`;
const semanticSet = vectorSet('semantic', `semantic-like vectors (${SEMANTIC_MODEL})`, SEMANTIC_MODEL, SEMANTIC_DIMENSIONS, semanticIndexName, semanticWhere);

interface Neighbour {
  message_id: string;
  distance: number;
}

/** One search in its own transaction after `settings` (SET LOCAL statements); the statement alone is timed. */
async function timedSearch(db: Database, sql: string, settings: readonly string[], vector: string): Promise<{ ms: number; rows: Neighbour[] }> {
  return db.transaction(async (tx) => {
    for (const setting of settings) await tx.query(setting);
    const start = performance.now();
    const result = await tx.query<{ message_id: string; distance: number | string }>(sql, [vector]);
    const ms = performance.now() - start;
    return { ms, rows: result.rows.map((row) => ({ message_id: row.message_id, distance: Number(row.distance) })) };
  });
}

async function explain(db: Database, sql: string, settings: readonly string[], vector: string): Promise<string> {
  return db.transaction(async (tx) => {
    for (const setting of settings) await tx.query(setting);
    const plan = await tx.query<{ 'QUERY PLAN': string }>(`EXPLAIN (COSTS OFF) ${sql}`, [vector]);
    // The query vector's literal, hundreds of numbers, as $1.
    return plan.rows.map((row) => row['QUERY PLAN'].trim().replace(/'\[[^\]]*\]'/g, '$1')).join(' / ');
  });
}

const exactSettings = ['SET LOCAL enable_indexscan = off'];
const hnswSettings = (ef: number) => [`SET LOCAL hnsw.ef_search = ${ef}`];
/**
 * Added to an ef_search whose plan, left to the planner, is not the index scan. pgvector estimates
 * the index's cost from ef_search and the number of rows (at a large ef_search on a small table,
 * most of the index), against a sequential scan whose cost leaves out TOASTed vectors (1024
 * dimensions: 4 KiB, stored out of line), with a correction for that which only applies from
 * some ef_search up: so the planner may prefer the exact scan. Such levels are measured through
 * the index all the same (this is the index's benchmark) and reported as the planner's choice.
 */
const forceIndex = ['SET LOCAL enable_seqscan = off', 'SET LOCAL enable_bitmapscan = off'];
const forceIndexText = 'enable_seqscan and enable_bitmapscan off';

interface Variant {
  label: string;
  settings: readonly string[];
}

/** The share of the exact top 10 found; a neighbour as close as the exact 10th counts (ties). */
function recallOf(found: Neighbour[], exact: Neighbour[]): number {
  const exactIds = new Set(exact.map((row) => row.message_id));
  const bound = (exact[exact.length - 1]?.distance ?? Number.POSITIVE_INFINITY) + 1e-6;
  const hits = found.filter((row) => exactIds.has(row.message_id) || row.distance <= bound).length;
  return Math.min(hits, exact.length) / Math.max(1, exact.length);
}

interface Level {
  ef: number;
  p50: number;
  p95: number;
  p99: number;
  recall: number;
  worst: number;
  below: number;
}

interface QuerySetResult {
  queries: number;
  exactP50: number;
  exactP95: number;
  /** Mean cosine similarity (1 − distance) of the exact 1st and 10th neighbours. */
  first: number;
  tenth: number;
  levels: Level[];
}

/** Every query of `vectors` through every variant, interleaved (rotating which goes first, so caching and drift favour none). */
async function runQueries(db: Database, set: VectorSet, variants: readonly Variant[], vectors: readonly string[]): Promise<QuerySetResult> {
  const times = new Map<string, number[]>(variants.map((variant) => [variant.label, []]));
  const recalls = new Map<string, number[]>(efLevels.map((ef) => [`ef${ef}`, []]));
  const first: number[] = [];
  const tenth: number[] = [];
  for (const [index, vector] of vectors.entries()) {
    const order = variants.map((_, i) => variants[(i + index) % variants.length]!);
    const answers = new Map<string, Neighbour[]>();
    for (const variant of order) {
      const { ms, rows } = await timedSearch(db, set.searchSql, variant.settings, vector);
      times.get(variant.label)!.push(ms);
      answers.set(variant.label, rows);
    }
    const exact = answers.get('exact')!;
    if (exact.length > 0) {
      first.push(1 - exact[0]!.distance);
      tenth.push(1 - exact[exact.length - 1]!.distance);
    }
    for (const ef of efLevels) recalls.get(`ef${ef}`)!.push(recallOf(answers.get(`ef${ef}`)!, exact));
  }
  const exactTimes = times.get('exact')!;
  return {
    queries: vectors.length,
    exactP50: percentile(exactTimes, 0.5),
    exactP95: percentile(exactTimes, 0.95),
    first: mean(first),
    tenth: mean(tenth),
    levels: efLevels.map((ef) => {
      const ms = times.get(`ef${ef}`)!;
      const recall = recalls.get(`ef${ef}`)!;
      return { ef, p50: percentile(ms, 0.5), p95: percentile(ms, 0.95), p99: percentile(ms, 0.99), recall: mean(recall), worst: Math.min(...recall), below: recall.filter((r) => r < recallTarget).length };
    }),
  };
}

interface SetMeasurement {
  /** The ef_search levels at which the planner, left alone, does not use the index (measured with forceIndex). */
  plannerSkips: number[];
  searchLike: QuerySetResult;
  asMessages: QuerySetResult;
  plans: Record<string, string>;
  /** The smallest ef_search reaching the target recall; when none does, the largest measured (and the figures miss). */
  chosen: Level;
  reached: boolean;
  chosenLabel: string;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const fmt = (ms: number) => ms.toFixed(ms < 10 ? 2 : 1);
const smallest = (set: QuerySetResult, wanted: number) => set.levels.find((level) => level.recall >= wanted)?.ef ?? `none of ${efLevels.join(', ')}`;

/** Checks the plans, warms up, then runs both query sets on `set`'s vectors (which must be the table's only ones). */
async function measureSet(
  db: Database,
  set: VectorSet,
  queryVectors: readonly string[],
  messageVectors: readonly string[],
  progress: (message: string) => void,
): Promise<SetMeasurement> {
  const exactPlan = await explain(db, set.searchSql, exactSettings, queryVectors[0]!);
  if (exactPlan.includes(set.indexName)) throw new Error(`the ${set.key} exact scan uses ${set.indexName}: ${exactPlan}`);
  const variants: Variant[] = [{ label: 'exact', settings: exactSettings }];
  const plannerSkips: number[] = [];
  let hnswPlan = '';
  for (const ef of efLevels) {
    let settings = hnswSettings(ef);
    let plan = await explain(db, set.searchSql, settings, queryVectors[0]!);
    if (!plan.includes(set.indexName)) {
      plannerSkips.push(ef);
      progress(`search: ${set.key}: at ef_search ${ef} the planner does not use ${set.indexName} (${plan}); measured with ${forceIndexText}`);
      settings = [...settings, ...forceIndex];
      plan = await explain(db, set.searchSql, settings, queryVectors[0]!);
      if (!plan.includes(set.indexName)) throw new Error(`the ${set.key} search does not use ${set.indexName} at ef_search ${ef}, even with ${forceIndexText}: ${plan}`);
    }
    if (ef === efLevels[0]) hnswPlan = plan;
    variants.push({ label: `ef${ef}`, settings });
  }
  for (const vector of queryVectors.slice(0, 5)) for (const variant of variants) await timedSearch(db, set.searchSql, variant.settings, vector);
  const start = performance.now();
  const searchLike = await runQueries(db, set, variants, queryVectors);
  const asMessages = await runQueries(db, set, variants, messageVectors);
  progress(`search: ${set.key}: ${queryVectors.length} + ${messageVectors.length} queries × ${variants.length} variants in ${seconds(performance.now() - start)}`);
  for (const [label, result] of [['search-like queries', searchLike], ['held-out messages', asMessages]] as const) {
    progress(
      `search: ${set.key}, ${label}: exact p50 ${fmt(result.exactP50)} ms, p95 ${fmt(result.exactP95)} ms; ` +
        `exact 1st / 10th neighbour at cosine ${result.first.toFixed(3)} / ${result.tenth.toFixed(3)} on average`,
    );
    for (const level of result.levels) {
      progress(
        `search: ${set.key}, ${label}, ef_search ${String(level.ef).padStart(4)}: recall@10 ${level.recall.toFixed(3)} (worst ${level.worst.toFixed(1)}), ` +
          `p50 ${fmt(level.p50)} ms, p95 ${fmt(level.p95)} ms`,
      );
    }
  }
  const reachedLevel = searchLike.levels.find((level) => level.recall >= recallTarget);
  const chosen = reachedLevel ?? searchLike.levels[searchLike.levels.length - 1]!;
  const chosenLabel = reachedLevel === undefined ? `none reaches ${recallTarget}: largest measured, ${chosen.ef}` : `smallest reaching ${recallTarget}: ${chosen.ef}`;
  progress(
    `search: ${set.key}: ef_search ${chosenLabel}; recall@10 ${chosen.recall.toFixed(3)}, p95 ${fmt(chosen.p95)} ms (target ≤ ${p95TargetMs}), ` +
      `exact p50 / index p50 ${(searchLike.exactP50 / chosen.p50).toFixed(1)}× (target ≥ ${Math.round(1 / speedupTarget)}×)`,
  );
  return {
    plannerSkips,
    searchLike,
    asMessages,
    plans: { [`plan, index search (ef_search ${efLevels[0]})`]: hnswPlan, 'plan, exact scan': exactPlan },
    chosen,
    reached: reachedLevel !== undefined,
    chosenLabel,
  };
}

/** The per-ef_search, recall and speed-up figures of one set (targets on PostgreSQL). */
function setFigures(input: {
  set: VectorSet;
  measured: SetMeasurement;
  backend: string;
  onPostgres: boolean;
  count: string;
  data: string;
  measuredNote: string;
  extraDetails: Record<string, number | string>;
}): BenchResult[] {
  const { set, measured, backend, onPostgres, count, data, measuredNote } = input;
  const { searchLike, asMessages, chosen, reached, chosenLabel } = measured;
  const { exactP50, exactP95, levels } = searchLike;
  const targetsNote = onPostgres ? '' : ' Informational on PGlite (the targets are PostgreSQL’s).';
  const results: BenchResult[] = [];
  const skipped = (ef: number) => measured.plannerSkips.includes(ef);
  const plannerNote = (ef: number) =>
    skipped(ef) ? ` At this ef_search the planner, left alone, chose the exact scan (pgvector's cost estimate): measured through the index with ${forceIndexText}.` : '';
  for (const level of levels) {
    const isChosen = level === chosen;
    results.push(
      makeResult({
        name: `search: HNSW top-10 of ${count} ${set.noun}, ef_search=${level.ef} (p95)`,
        backend,
        value: level.p95,
        unit: 'ms',
        baseline: exactP95,
        better: 'lower',
        target: isChosen && onPostgres ? p95TargetMs : null,
        targetOn: 'value',
        notes:
          `${data} ${measuredNote} Baseline: the exact scan's p95.${plannerNote(level.ef)} ` +
          (isChosen
            ? `ef_search ${level.ef}: ${reached ? `the smallest measured reaching recall@10 ≥ ${recallTarget}` : `no measured ef_search reaches recall@10 ≥ ${recallTarget}, this is the largest`}; target p95 at most ${p95TargetMs} ms.${targetsNote}`
            : 'Informational.'),
        details: {
          'recall@10 (mean over queries)': level.recall.toFixed(4),
          'worst query recall@10; queries below 0.95': `${level.worst.toFixed(2)}; ${level.below} of ${searchLike.queries}`,
          'p50 / p95 / p99 (ms)': `${fmt(level.p50)} / ${fmt(level.p95)} / ${fmt(level.p99)}`,
          'exact scan p50 / p95 (ms)': `${fmt(exactP50)} / ${fmt(exactP95)}`,
          "the planner's plan at this ef_search": skipped(level.ef) ? `exact scan (measured with ${forceIndexText})` : 'the index',
        },
      }),
    );
  }
  results.push(
    makeResult({
      name: `search: HNSW neighbours missed (1 − recall@10), ${set.noun}, ef_search ${chosenLabel}`,
      backend,
      value: 1 - chosen.recall,
      unit: '1−recall@10',
      baseline: 1 - levels[0]!.recall,
      better: 'lower',
      target: onPostgres ? Number((1 - recallTarget).toFixed(2)) : null,
      targetOn: 'value',
      notes:
        `${data} ${measuredNote} recall@10: the share of the exact top ${k} the index returns (a neighbour as close as the exact 10th counts), mean over queries. ` +
        `Baseline: pgvector's default ef_search 40. Target: recall@10 ≥ ${recallTarget} (missed ≤ ${(1 - recallTarget).toFixed(2)}).${targetsNote}`,
      details: {
        'recall@10 by ef_search': levels.map((level) => `${level.ef}: ${level.recall.toFixed(3)}`).join(', '),
        'p50 by ef_search (ms)': levels.map((level) => `${level.ef}: ${fmt(level.p50)}`).join(', '),
        'p95 by ef_search (ms)': levels.map((level) => `${level.ef}: ${fmt(level.p95)}`).join(', '),
        'exact scan p50 / p95 (ms)': `${fmt(exactP50)} / ${fmt(exactP95)}`,
        'smallest ef_search for recall@10 ≥ 0.95 / 0.99': `${smallest(searchLike, 0.95)} / ${smallest(searchLike, 0.99)}`,
        [`ef_search at which the planner, left alone, chooses the exact scan (measured with ${forceIndexText})`]:
          measured.plannerSkips.length === 0 ? 'none' : measured.plannerSkips.join(', '),
        'exact 1st / 10th neighbour, mean cosine similarity': `${searchLike.first.toFixed(3)} / ${searchLike.tenth.toFixed(3)}`,
        'held-out messages as queries: recall@10 by ef_search': asMessages.levels.map((level) => `${level.ef}: ${level.recall.toFixed(3)}`).join(', '),
        'held-out messages: p95 by ef_search (ms); exact p95': `${asMessages.levels.map((level) => `${level.ef}: ${fmt(level.p95)}`).join(', ')}; ${fmt(asMessages.exactP95)}`,
        'held-out messages: smallest ef_search for recall@10 ≥ 0.95 / 0.99': `${smallest(asMessages, 0.95)} / ${smallest(asMessages, 0.99)}`,
        'held-out messages: exact 1st / 10th neighbour, mean cosine similarity': `${asMessages.first.toFixed(3)} / ${asMessages.tenth.toFixed(3)}`,
        ...input.extraDetails,
        ...measured.plans,
      },
    }),
    makeResult({
      name: `search: HNSW vs exact scan of ${count} ${set.noun} (p50), ef_search ${chosenLabel}`,
      backend,
      value: chosen.p50,
      unit: 'ms',
      baseline: exactP50,
      better: 'lower',
      target: onPostgres ? speedupTarget : null,
      notes:
        `${data} ${measuredNote} Project: the index search at the smallest ef_search reaching recall@10 ≥ ${recallTarget}; baseline: the exact scan.${plannerNote(chosen.ef)} ` +
        `Target: at least ${Math.round(1 / speedupTarget)}× faster (ratio ≤ ${speedupTarget}).${targetsNote}`,
      details: {
        speedup: `${(exactP50 / chosen.p50).toFixed(1)}×`,
        'recall@10 at this ef_search': chosen.recall.toFixed(3),
        'exact scan p95 (ms)': fmt(exactP95),
        'index search p95 (ms)': fmt(chosen.p95),
      },
    }),
  );
  return results;
}

/** Mean cosine similarity of sampled message pairs, by relation; for the data description of both sets. */
interface PairSimilarity {
  sameConversation: number;
  sharedTopic: number;
  unrelated: number;
}

function pairSimilarities(generated: readonly SyntheticMessage[], vectorOf: (index: number) => Float64Array, pairs: number): PairSimilarity {
  const random = seededRandom(pairSeed);
  const same: number[] = [];
  const shared: number[] = [];
  const unrelated: number[] = [];
  for (let n = 0; n < pairs; n++) {
    const i = Math.floor(random() * (generated.length - 1));
    const j = Math.floor(random() * generated.length);
    const a = generated[i]!;
    if (generated[i + 1]!.conversation === a.conversation) same.push(cosine(vectorOf(i), vectorOf(i + 1)));
    const b = generated[j]!;
    if (b.conversation === a.conversation) continue;
    const topics = new Set(a.topics.map((topic) => topic.topic));
    (b.topics.some((topic) => topics.has(topic.topic)) ? shared : unrelated).push(cosine(vectorOf(i), vectorOf(j)));
  }
  return { sameConversation: mean(same), sharedTopic: mean(shared), unrelated: mean(unrelated) };
}

const describePairs = (pairs: PairSimilarity) =>
  `mean cosine of sampled message pairs: unrelated (no topic in common) ${pairs.unrelated.toFixed(2)}, a topic in common (other conversations) ${pairs.sharedTopic.toFixed(2)}, ` +
  `the same conversation (consecutive messages) ${pairs.sameConversation.toFixed(2)}`;

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
    const generated: SyntheticMessage[] = [];
    const messages: MessageInsert[] = [];
    const conversations: { id: string; owner_id: string; title: string; tool_name: string; turn_count: number }[] = [];
    for (const message of corpus.messages(size.messages, messageSeed)) {
      if (message.seq === 1) conversations.push({ id: randomUUID(), owner_id: user.id, title: message.content.slice(0, 60), tool_name: 'chat', turn_count: 0 });
      const conversation = conversations[conversations.length - 1]!;
      conversation.turn_count = message.seq;
      generated.push(message);
      messages.push({ id: randomUUID(), conversation_id: conversation.id, owner_id: user.id, seq: message.seq, role: message.role, content: message.content });
    }
    const chars = messages.reduce((sum, message) => sum + message.content.length, 0);
    progress(`search: generated ${messages.length.toLocaleString('en-US')} messages in ${conversations.length.toLocaleString('en-US')} conversations (${Math.round(chars / messages.length)} characters on average, vocabulary of ${corpus.vocabulary.length.toLocaleString('en-US')} words) in ${seconds(performance.now() - start)}`);
    start = performance.now();
    await insertConversations(db, conversations);
    await insertMessages(db, messages);
    progress(`search: messages stored in ${seconds(performance.now() - start)}`);

    // Two held-out query sets, never inserted: search-like texts (what searchConversations embeds;
    // the targets are on these) and whole messages from the same generator (the usual ANN benchmark).
    const queries = corpus.queries(size.queries, querySeed);
    const queryTexts = queries.map((query) => query.content);
    const heldOut = [...corpus.messages(size.queries, heldOutSeed)];

    // Vectors, a JSON text per statement, made before any timing --------------------
    let vectorMs = 0;
    const batchJson = (from: number, to: number, vectorText: (index: number) => string): string => {
      const t = performance.now();
      const rows = messages.slice(from, to).map((message, offset): EmbeddingInsert => ({
        message_id: message.id,
        owner_id: message.owner_id,
        conversation_id: message.conversation_id,
        embedding: vectorText(from + offset),
      }));
      vectorMs += performance.now() - t;
      return JSON.stringify(rows);
    };
    const lexicalText = (index: number) => `[${embedder.embedOne(messages[index]!.content).join(',')}]`;
    const maintenanceMemory = maintenanceMemoryFor(db);
    const buildIndex = (definition: string): Promise<number> => buildIndexAfterLoad(context, db, definition);
    const sizesOf = async (indexName: string) => ({
      index: Number((await db.query<{ bytes: string | number }>(`SELECT pg_relation_size('exai.${indexName}'::regclass) AS bytes`)).rows[0]!.bytes),
      table: Number((await db.query<{ bytes: string | number }>(`SELECT pg_table_size('exai.message_embeddings'::regclass) AS bytes`)).rows[0]!.bytes),
    });
    const mib = (bytes: number) => (bytes / 1048576).toFixed(0);

    // Lexical set: index strategy on the sample, then the full load ----------------
    const definition = (
      await db.query<{ definition: string }>(`SELECT pg_get_indexdef('exai.${lexicalSet.indexName}'::regclass) AS definition`)
    ).rows[0]!.definition;
    const sampleBatches: string[] = [];
    for (let from = 0; from < size.sample; from += rowsPerStatement) sampleBatches.push(batchJson(from, Math.min(size.sample, from + rowsPerStatement), lexicalText));
    const insertBatches = async (batches: readonly string[]) => {
      for (const json of batches) await insertEmbeddingBatch(db, embedder.model, embedder.dimensions, json);
    };
    const dropIndex = (name: string) => db.query(`DROP INDEX exai.${name}`);

    // Into the existing index, then built after the data.
    start = performance.now();
    await insertBatches(sampleBatches);
    const intoIndexMs = performance.now() - start;
    progress(`search: lexical: ${size.sample.toLocaleString('en-US')} vectors inserted into the existing index in ${seconds(intoIndexMs)}`);
    await db.query('TRUNCATE exai.message_embeddings');
    await dropIndex(lexicalSet.indexName);
    start = performance.now();
    await insertBatches(sampleBatches);
    const sampleLoadMs = performance.now() - start;
    const sampleBuildMs = await buildIndex(definition);
    const afterDataMs = sampleLoadMs + sampleBuildMs;
    progress(`search: lexical: the same ${size.sample.toLocaleString('en-US')} vectors loaded without the index, then the index built: ${seconds(sampleLoadMs)} + ${seconds(sampleBuildMs)}`);
    sampleBatches.length = 0;

    // The full load: without the index, then one build.
    await dropIndex(lexicalSet.indexName);
    start = performance.now();
    const vectorsBefore = vectorMs;
    for (let from = size.sample; from < messages.length; from += rowsPerStatement) {
      await insertEmbeddingBatch(db, embedder.model, embedder.dimensions, batchJson(from, Math.min(messages.length, from + rowsPerStatement), lexicalText));
    }
    // Without the time spent embedding and serialising the batches.
    const fullLoadMs = performance.now() - start - (vectorMs - vectorsBefore);
    const embedMs = vectorMs;
    const fullBuildMs = await buildIndex(definition);
    await db.query('ANALYZE exai.messages');
    await db.query('ANALYZE exai.message_embeddings');
    const lexicalBytes = await sizesOf(lexicalSet.indexName);
    progress(
      `search: lexical: the other ${(messages.length - size.sample).toLocaleString('en-US')} vectors loaded in ${seconds(fullLoadMs)} (embedding all: ${seconds(embedMs)}), ` +
        `the index over all ${messages.length.toLocaleString('en-US')} built in ${seconds(fullBuildMs)} ` +
        `(${mib(lexicalBytes.index)} MiB; table ${mib(lexicalBytes.table)} MiB)`,
    );

    // Lexical set: queries -----------------------------------------------------------
    const pairCount = quick ? 2_000 : 5_000;
    const lexicalPairs = pairSimilarities(generated, (index) => Float64Array.from(embedder.embedOne(generated[index]!.content)), pairCount);
    const toLexical = (texts: readonly string[]) =>
      texts.map((text) => embedder.embedOne(text)).filter((vector) => vector.some((value) => value !== 0)).map((vector) => `[${vector.join(',')}]`);
    const lexicalQueries = toLexical(queryTexts);
    const lexical = await measureSet(db, lexicalSet, lexicalQueries, toLexical(heldOut.map((message) => message.content)), progress);
    const projectEf = efSearchFor(0.95, k);

    // The project's search path over the same data (informational; the built-in embedder) ----
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
    const rawAtProjectEf = lexical.searchLike.levels.find((level) => level.ef === projectEf);
    progress(
      `search: searchConversations p50/p95: hybrid ${fmt(percentile(searchMs.hybrid, 0.5))}/${fmt(percentile(searchMs.hybrid, 0.95))} ms, ` +
        `vector ${fmt(percentile(searchMs.vector, 0.5))}/${fmt(percentile(searchMs.vector, 0.95))} ms, text ${fmt(percentile(searchMs.text, 0.5))}/${fmt(percentile(searchMs.text, 0.95))} ms`,
    );

    // Semantic-like set: the same messages, the table emptied, loaded without its index, then one build ----
    const topicVectors = new TopicMixtureVectors(corpus.topicCount);
    const dataSource = (index: number): SemanticSource => ({ stream: 'data', topics: generated[index]!.topics, conversation: generated[index]!.conversation, index });
    await db.query('TRUNCATE exai.message_embeddings');
    vectorMs = 0;
    start = performance.now();
    for (let from = 0; from < messages.length; from += rowsPerStatement) {
      await insertEmbeddingBatch(
        db,
        semanticSet.model,
        semanticSet.dimensions,
        batchJson(from, Math.min(messages.length, from + rowsPerStatement), (index) => TopicMixtureVectors.text(topicVectors.vectorOf(dataSource(index)))),
      );
    }
    const semanticLoadMs = performance.now() - start - vectorMs;
    const semanticVectorMs = vectorMs;
    const semanticBuildMs = await buildIndex(semanticIndexDefinition);
    await db.query('ANALYZE exai.message_embeddings');
    const semanticBytes = await sizesOf(semanticSet.indexName);
    progress(
      `search: semantic-like: ${messages.length.toLocaleString('en-US')} vectors (${SEMANTIC_MODEL}, ${SEMANTIC_DIMENSIONS} dimensions) loaded in ${seconds(semanticLoadMs)} ` +
        `(making them: ${seconds(semanticVectorMs)}), the index built in ${seconds(semanticBuildMs)} (${mib(semanticBytes.index)} MiB; table ${mib(semanticBytes.table)} MiB)`,
    );
    const semanticPairs = pairSimilarities(generated, (index) => topicVectors.vectorOf(dataSource(index)), pairCount);
    progress(`search: semantic-like: ${describePairs(semanticPairs)}; lexical, for comparison: ${describePairs(lexicalPairs)}`);
    const semanticQueries = queries.map((query, index) =>
      TopicMixtureVectors.text(topicVectors.vectorOf({ stream: 'queries', topics: query.topics, conversation: index, index })),
    );
    const semanticHeldOut = heldOut.map((message, index) =>
      TopicMixtureVectors.text(topicVectors.vectorOf({ stream: 'held-out', topics: message.topics, conversation: message.conversation, index })),
    );
    const semantic = await measureSet(db, semanticSet, semanticQueries, semanticHeldOut, progress);

    // Figures ------------------------------------------------------------------------
    const backend = context.backend.name;
    const count = messages.length.toLocaleString('en-US');
    const corpusNote =
      `${count} synthetic messages of one user (${conversations.length.toLocaleString('en-US')} conversations, ${Math.round(chars / messages.length)} characters on average; ` +
      `Zipf vocabulary of ${corpus.vocabulary.length.toLocaleString('en-US')} word forms, mixtures of ${corpus.topicCount} topics)`;
    const lexicalData =
      `${corpusNote}, embedded with ${embedder.model} (384 dimensions, lexical; ${describePairs(lexicalPairs)}), ` +
      `index built after the bulk load (m 16, ef_construction 64, as migrated). ${lexicalQueries.length} held-out texts of 4–16 words as query vectors.`;
    const semanticData =
      `${corpusNote}, with semantic-like vectors from a topic-mixture model standing in for a provider's semantic embeddings, NOT a real embedding model ` +
      `(${SEMANTIC_MODEL}, ${SEMANTIC_DIMENSIONS} dimensions, bench/semantic-vectors.ts): each vector = normalize(√${semanticShares.common}·a direction common to all texts + ` +
      `√${semanticShares.topic}·its topics' random centroids weighted by its words per topic + √${semanticShares.conversation}·its conversation's random direction + ` +
      `√${semanticShares.message}·its own random direction), shares chosen from what text-embedding models give (cosine ~0.1–0.3 unrelated, ~0.5–0.8 related), not tuned to the targets; ` +
      `${describePairs(semanticPairs)}. Only these vectors in the table (the lexical ones removed), the model's partial index ` +
      `(as ensureModelIndex creates for a provider model: m 16, ef_construction 64) built after the bulk load. ` +
      `${semanticQueries.length} held-out texts of 4–16 words as query vectors, from their own topic words the same way.`;
    const measuredNote =
      `Each query: top ${k} by cosine distance within the partial index's WHERE, as the superuser, one transaction per search (SET LOCAL, then the timed statement); ` +
      `the exact answer is the same statement with SET LOCAL enable_indexscan = off; all variants interleaved per query, rotating which goes first, after a warm-up of 5 queries.`;
    const results: BenchResult[] = [
      ...setFigures({
        set: lexicalSet,
        measured: lexical,
        backend,
        onPostgres,
        count,
        data: lexicalData,
        measuredNote,
        extraDetails: { [`efSearchFor(0.95, ${k}) in src/search/search.ts`]: projectEf },
      }),
      ...setFigures({
        set: semanticSet,
        measured: semantic,
        backend,
        onPostgres,
        count,
        data: semanticData,
        measuredNote,
        extraDetails: {
          'vectors loaded without the index + CREATE INDEX (ms)': `${Math.round(semanticLoadMs)} + ${Math.round(semanticBuildMs)}`,
          'index size (MiB); table size with TOAST (MiB)': `${mib(semanticBytes.index)}; ${mib(semanticBytes.table)}`,
          'making and serialising the vectors (ms)': Math.round(semanticVectorMs),
        },
      }),
    ];
    const chosen = lexical.chosen;
    results.push(
      makeResult({
        name: `search: HNSW index on ${size.sample.toLocaleString('en-US')} ${lexicalSet.noun}, built after the data vs inserted into the existing index`,
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
          'index size (MiB); table size with TOAST (MiB)': `${mib(lexicalBytes.index)}; ${mib(lexicalBytes.table)}`,
          'embedding all messages with LocalHashEmbedder (ms)': Math.round(embedMs),
          [`semantic-like set (${SEMANTIC_DIMENSIONS} dimensions): all ${count} loaded without the index + CREATE INDEX (ms)`]: `${Math.round(semanticLoadMs)} + ${Math.round(semanticBuildMs)}`,
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
          `The project's search path on the same data, with the built-in embedder (the lexical set): searchConversations(query, limit ${k}) as the user (row-level security), default recall 0.95 (ef_search ${projectEf}), ` +
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
  description:
    'HNSW vector search over 100K messages (20K with --quick), for lexical (built-in embedder, 384-d) and semantic-like (topic-mixture stand-in for a provider model, 1024-d) vectors: ' +
    'recall@10 and p50/p95 at ef_search 40–1000 vs the exact scan, index built after vs during the load, searchConversations latency',
  run: measure,
};
