/**
 * Data for the search benchmarks:
 * - a fresh, migrated database per run (its own PGlite, or its own PostgreSQL
 *   database dropped at the end), so the measured tables hold only what the
 *   benchmark loaded, whatever ran before;
 * - a deterministic synthetic corpus of word-like messages: a vocabulary of a
 *   few thousand word forms (real stems with inflections, so forms of a word
 *   share character trigrams as in real text), Zipf-distributed, mixed from a
 *   few topics per conversation, so texts on the same topics share words and
 *   nearest neighbours mean something; each message and query also says how
 *   many of its words came from each topic, from which bench/semantic-vectors.ts
 *   makes its semantic-like vectors;
 * - bulk loaders: conversations, messages and embeddings, ~2,000 rows per
 *   statement through json_to_recordset (as src/search/indexer.ts writes).
 */
import { performance } from 'node:perf_hooks';
import { MemoryCache } from '../src/cache/memory.js';
import { ConversationStore } from '../src/conversations/store.js';
import { openPostgres } from '../src/db/postgres.js';
import { asService } from '../src/db/session.js';
import type { Database, Queryable } from '../src/db/types.js';
import { externalUrls, openMigratedPglite, openPostgresBackend, storeOptions } from './backends.js';
import type { BenchBackend, BenchContext } from './harness.js';
import { seededRandom } from './workload.js';

// A fresh database ------------------------------------------------------------

/** A new migrated database of the same kind as the run's backend; `close()` drops it. */
export async function openFreshBackend(context: BenchContext): Promise<BenchBackend> {
  if (context.backend.db.kind === 'pglite') {
    // Not openPgliteBackend: its maintenance timer would VACUUM tables in the middle of a timing.
    const db = await openMigratedPglite();
    const cache = new MemoryCache({ maxEntries: 10_000, maxBytes: 64 * 1024 * 1024 });
    const createStore = (database: Database) => new ConversationStore(database, cache, storeOptions, context.logger);
    return {
      name: context.backend.name,
      db,
      cache,
      store: createStore(db),
      createStore,
      async close() {
        await cache.close();
        await db.close();
      },
    };
  }
  const urls = externalUrls();
  if ('missing' in urls) throw new Error(`cannot open a fresh PostgreSQL database: ${urls.missing} not set`);
  let unregister: (() => void) | undefined;
  const backend = await openPostgresBackend(urls, context.logger, (cleanup) => {
    unregister = context.registerCleanup?.(cleanup);
  });
  return {
    ...backend,
    async close() {
      await backend.close();
      unregister?.();
    },
  };
}

/**
 * Runs `fn` with a connection to the same database that allows long statements (an index
 * build over 100,000 vectors): the pool of src/db/postgres.ts stops a query after 30 s.
 */
export async function withLongStatements<T>(context: BenchContext, db: Database, fn: (db: Database) => Promise<T>): Promise<T> {
  if (db.kind === 'pglite') return fn(db);
  const urls = externalUrls();
  if ('missing' in urls) throw new Error(`cannot connect to PostgreSQL: ${urls.missing} not set`);
  const name = (await db.query<{ name: string }>('SELECT current_database() AS name')).rows[0]!.name;
  const url = new URL(urls.databaseUrl);
  url.pathname = `/${name}`;
  const long = await openPostgres({ url: url.toString(), poolMax: 1, connectTimeoutMs: 5000, queryTimeoutMs: 60 * 60_000, logger: context.logger });
  try {
    return await fn(long);
  } finally {
    await long.close();
  }
}

/** maintenance_work_mem for index builds in the benchmarks: the graph in memory. */
export const maintenanceMemoryFor = (db: Database): string => (db.kind === 'postgres' ? '1GB' : '512MB');

/** Runs an index definition (CREATE INDEX …) with maintenanceMemoryFor(db); how long it took (ms). */
export function buildIndex(context: BenchContext, db: Database, definition: string): Promise<number> {
  return withLongStatements(context, db, async (long) => {
    const start = performance.now();
    await long.transaction(async (tx) => {
      await tx.query(`SET LOCAL maintenance_work_mem = '${maintenanceMemoryFor(db)}'`);
      await tx.query(definition);
    });
    return performance.now() - start;
  });
}

// Statistics --------------------------------------------------------------------

/** The q-quantile (nearest rank) of the values. */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((sum, value) => sum + value, 0) / values.length;
}

// The synthetic corpus ------------------------------------------------------------

const functionWords = (
  'the to a of and in is it that for on with as this be are we not but or at from by when so if an can should would will do ' +
  'does which our you i they all there has have was after before then only more each into than no also just still about what ' +
  'how why one some any other its their them these those may might could been being get got use used new now'
).split(' ');

/** Stems of software talk; each gets a few inflected forms below. */
const stems = (
  'access account action adapter address agent alert align allocate analyse annotate answer apply approve archive argument ' +
  'array assert assign attach attempt audit author backend backup balance batch benchmark bind block branch browser buffer ' +
  'build bundle button cache call cancel capture certificate change channel chart check chunk claim class clean click client ' +
  'clone close cluster code collect column command comment commit compare compile component compress compute config connect ' +
  'consume container content context contract control convert cookie copy count crash create credential cursor customer ' +
  'dashboard data debug decode default defer delete deliver depend deploy design detect device diff digest directory disable ' +
  'disk dispatch display document domain download draft drop dump edit element embed emit enable encode encrypt endpoint ' +
  'engine enqueue entry environment error escape evaluate event evict exception execute expand expire export expose extend ' +
  'extract fail feature fetch field file filter fix flag flush fold follow force fork format forward frame function gateway ' +
  'generate grant graph group guard handle handler hash header heap hint hook host import index infer inject input insert ' +
  'inspect install instance integrate interface invalidate invoice issue iterate job join key label launch layer layout lazy ' +
  'leak lease limit link lint list listen load locale lock log login lookup loop manage manifest map mark match measure ' +
  'memory merge message method metric migrate mirror mock model module monitor mount mutate name network node normalize ' +
  'notify object observe offset open operate optimize option order origin output overflow owner package page paginate parse ' +
  'partition patch path pause payload payment permit persist ping pipeline pixel plan plugin point poll pool port post ' +
  'predict prefetch prefix prepare preview print process produce profile project prompt property protect provide proxy ' +
  'publish pull push query queue quota range rank rate read rebase receive record recover redirect reduce refactor ' +
  'reference refresh region register release reload remove render repair replay replicate report request require reserve ' +
  'reset resolve resource respond response restart restore result retain retry return review revoke role rollback rotate ' +
  'route row rule run sample sanitize save scale scan schedule schema scope score script search secret section secure seed ' +
  'select send serialize server service session setting shard share shell ship signal sign snapshot socket sort source span ' +
  'split spawn stack stage start state status step storage store stream string submit subscribe summary support suspend ' +
  'switch sync table tag target task template tenant test thread throttle ticket timeout timer token trace track transfer ' +
  'transform translate trigger trust tune type update upgrade upload user validate value vendor verify version view visit ' +
  'volume wait warn watch widget window worker wrap write yield zone'
).split(' ');

const suffixes = ['', 's', 'ed', 'ing', 'er', 'ers', 'ion', 'ions', 'able', 'ment', 'ly', 'ity'];

/** Inflected forms of a stem, cheaply (not always English, always word-like). */
function formsOf(stem: string, random: () => number): string[] {
  const forms = [stem];
  const wanted = 3 + Math.floor(random() * 9);
  for (let attempt = 0; attempt < 24 && forms.length < wanted; attempt++) {
    const suffix = suffixes[1 + Math.floor(random() * (suffixes.length - 1))]!;
    const base = stem.endsWith('e') && /^[aeiou]/.test(suffix) ? stem.slice(0, -1) : stem;
    const form = base + suffix;
    if (!forms.includes(form)) forms.push(form);
  }
  return forms;
}

/** Cumulative weights for sampling by binary search. */
class Sampler<T> {
  private readonly cumulative: Float64Array;

  constructor(
    private readonly items: readonly T[],
    weights: readonly number[],
  ) {
    this.cumulative = new Float64Array(weights.length);
    let sum = 0;
    weights.forEach((weight, index) => {
      sum += weight;
      this.cumulative[index] = sum;
    });
  }

  sample(random: () => number): T {
    const target = random() * this.cumulative[this.cumulative.length - 1]!;
    let low = 0;
    let high = this.cumulative.length - 1;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.cumulative[middle]! < target) low = middle + 1;
      else high = middle;
    }
    return this.items[low]!;
  }
}

/** Zipf–Mandelbrot weights 1 / (rank + q)^s. */
function zipf(count: number, s = 1.05, q = 2.7): number[] {
  return Array.from({ length: count }, (_, rank) => 1 / Math.pow(rank + 1 + q, s));
}

function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

/** A topic of the corpus (0 … topicCount − 1) and its weight in a text. */
export interface TopicWeight {
  topic: number;
  weight: number;
}

export interface SyntheticMessage {
  conversation: number;
  seq: number;
  role: 'user' | 'assistant';
  content: string;
  /**
   * What the text is about: how many of its words were drawn from each topic (the
   * conversation's topic mixture as realised in this message); the mixture's weights
   * when no word came from a topic. For bench/semantic-vectors.ts.
   */
  topics: TopicWeight[];
}

/** A search-like query text and its topics (as SyntheticMessage.topics). */
export interface SyntheticQuery {
  content: string;
  topics: TopicWeight[];
}

interface TopicMixture {
  /** Samples a topic index. */
  sampler: Sampler<number>;
  weights: TopicWeight[];
}

/**
 * The corpus: `vocabularySize` word forms, `topicCount` topics of
 * `wordsPerTopic` words each (Zipf within the topic), a background Zipf over
 * the whole vocabulary and Zipf-distributed function words. A conversation
 * draws 1–3 topics with random weights; each of its messages mixes function
 * words (40%), background words (15%) and its topics' words (45%), and
 * records how many of its words each topic gave.
 */
export class SyntheticCorpus {
  readonly vocabulary: string[];
  readonly topicCount: number;
  private readonly functionSampler: Sampler<string>;
  private readonly backgroundSampler: Sampler<string>;
  private readonly topicSamplers: Sampler<string>[];

  constructor(seed = 20_251_127, topicCount = 60, wordsPerTopic = 150) {
    this.topicCount = topicCount;
    const random = seededRandom(seed);
    const words = new Set<string>();
    for (const stem of stems) for (const form of formsOf(stem, random)) words.add(form);
    this.vocabulary = shuffled([...words], random);
    this.functionSampler = new Sampler(functionWords, zipf(functionWords.length, 1.0, 1));
    this.backgroundSampler = new Sampler(this.vocabulary, zipf(this.vocabulary.length));
    this.topicSamplers = Array.from({ length: topicCount }, () => {
      const topicWords = shuffled(this.vocabulary, random).slice(0, wordsPerTopic);
      return new Sampler(topicWords, zipf(topicWords.length, 1.0, 1.5));
    });
  }

  // The random draws, and so the texts, are the same as when the mixture sampled topic word samplers directly.
  private topicMixture(random: () => number): TopicMixture {
    const count = 1 + Math.floor(random() * 3);
    const topics = Array.from({ length: count }, () => Math.floor(random() * this.topicSamplers.length));
    const weights = topics.map(() => 0.2 + random());
    return { sampler: new Sampler(topics, weights), weights: merged(topics.map((topic, index) => ({ topic, weight: weights[index]! }))) };
  }

  private text(random: () => number, mixture: TopicMixture, words: number, functionShare: number): { content: string; topics: TopicWeight[] } {
    const parts: string[] = [];
    const drawn: TopicWeight[] = [];
    let sentence = 0;
    let sentenceLength = 6 + Math.floor(random() * 14);
    for (let i = 0; i < words; i++) {
      const roll = random();
      let word =
        roll < functionShare
          ? this.functionSampler.sample(random)
          : roll < functionShare + 0.15
            ? this.backgroundSampler.sample(random)
            : this.topicWord(random, mixture, drawn);
      if (sentence === 0) word = word[0]!.toUpperCase() + word.slice(1);
      sentence++;
      if (sentence >= sentenceLength || i === words - 1) {
        word += random() < 0.15 ? '?' : '.';
        sentence = 0;
        sentenceLength = 6 + Math.floor(random() * 14);
      } else if (random() < 0.06) word += ',';
      parts.push(word);
    }
    const topics = merged(drawn);
    return { content: parts.join(' '), topics: topics.length > 0 ? topics : mixture.weights };
  }

  private topicWord(random: () => number, mixture: TopicMixture, drawn: TopicWeight[]): string {
    const topic = mixture.sampler.sample(random);
    drawn.push({ topic, weight: 1 });
    return this.topicSamplers[topic]!.sample(random);
  }

  /** `count` messages in conversations of 2–20 turns, deterministic for a seed. */
  *messages(count: number, seed: number): Generator<SyntheticMessage> {
    const random = seededRandom(seed);
    let produced = 0;
    for (let conversation = 0; produced < count; conversation++) {
      const mixture = this.topicMixture(random);
      const turns = Math.min(count - produced, 2 + Math.floor(random() * 19));
      for (let seq = 1; seq <= turns; seq++) {
        // Roughly log-normal lengths: many short messages, some long ones (12–400 words).
        const words = Math.max(12, Math.min(400, Math.round(Math.exp(3.9 + 0.7 * gaussian(random)))));
        const { content, topics } = this.text(random, mixture, words, 0.4);
        yield { conversation, seq, role: seq % 2 === 1 ? 'user' : 'assistant', content, topics };
        produced++;
      }
    }
  }

  /** Search-like texts (4–16 words, few function words) on the same topics, held out from the messages. */
  queries(count: number, seed: number): SyntheticQuery[] {
    const random = seededRandom(seed);
    return Array.from({ length: count }, () => this.text(random, this.topicMixture(random), 4 + Math.floor(random() * 13), 0.2));
  }
}

/** The weights summed per topic, by topic. */
function merged(weights: readonly TopicWeight[]): TopicWeight[] {
  const byTopic = new Map<number, number>();
  for (const { topic, weight } of weights) byTopic.set(topic, (byTopic.get(topic) ?? 0) + weight);
  return [...byTopic].sort((a, b) => a[0] - b[0]).map(([topic, weight]) => ({ topic, weight }));
}

/** A standard normal deviate (Box–Muller). */
function gaussian(random: () => number): number {
  const u = Math.max(random(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

// Bulk loading ---------------------------------------------------------------------

export const rowsPerStatement = 2_000;

/** Inserts `rows` as service_role, `rowsPerStatement` at a time, one JSON text per statement. */
export async function insertInBatches<T>(db: Database, rows: readonly T[], insert: (tx: Queryable, json: string) => Promise<unknown>): Promise<void> {
  for (let start = 0; start < rows.length; start += rowsPerStatement) {
    const json = JSON.stringify(rows.slice(start, start + rowsPerStatement));
    await asService(db, (tx) => insert(tx, json));
  }
}

export async function insertConversations(db: Database, rows: readonly { id: string; owner_id: string; title: string; tool_name: string; turn_count: number }[]): Promise<void> {
  await insertInBatches(db, rows, (tx, json) =>
    tx.query(
      `INSERT INTO exai.conversations (id, owner_id, title, tool_name, turn_count)
       SELECT r.id, r.owner_id, r.title, r.tool_name, r.turn_count
         FROM json_to_recordset($1::json) AS r(id uuid, owner_id uuid, title text, tool_name text, turn_count integer)`,
      [json],
    ),
  );
}

export interface MessageInsert {
  id: string;
  conversation_id: string;
  owner_id: string;
  seq: number;
  role: string;
  content: string;
}

export async function insertMessages(db: Database, rows: readonly MessageInsert[]): Promise<void> {
  await insertInBatches(db, rows, (tx, json) =>
    tx.query(
      `INSERT INTO exai.messages (id, conversation_id, owner_id, seq, role, content)
       SELECT r.id, r.conversation_id, r.owner_id, r.seq, r.role, r.content
         FROM json_to_recordset($1::json) AS r(id uuid, conversation_id uuid, owner_id uuid, seq integer, role text, content text)`,
      [json],
    ),
  );
}

export interface EmbeddingInsert {
  message_id: string;
  owner_id: string;
  conversation_id: string;
  /** pgvector's text form, as the indexer writes it. */
  embedding: string;
}

/** As src/search/indexer.ts stores vectors (one statement, a JSON text of up to ~2,000 rows), without its pending-message query. */
export async function insertEmbeddingBatch(db: Database, model: string, dimensions: number, json: string): Promise<void> {
  await asService(db, (tx) =>
    tx.query(
      `INSERT INTO exai.message_embeddings (message_id, model, owner_id, conversation_id, dimensions, embedding)
       SELECT r.message_id, $2, r.owner_id, r.conversation_id, $3, r.embedding::vector
         FROM json_to_recordset($1::json) AS r(message_id uuid, owner_id uuid, conversation_id uuid, embedding text)`,
      [json, model, dimensions],
    ),
  );
}
