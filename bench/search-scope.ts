/**
 * Vector search for a user with a small share of the index: one user's
 * 100,000 messages (20,000 with --quick) and another's 60, all embedded with
 * the built-in embedder into one table and its HNSW index (built after the
 * bulk load). The small user's searches (signals `vector`, threshold 0, top
 * 10) through the project's path, which compares a scope of at most 5,000
 * vectors directly (src/search/search.ts, exactVectorScanUpTo), against the
 * same searches walking the index as it did before (exactScanUpTo 0): the
 * walk skips the other user's rows under row-level security and gives up
 * after hnsw.max_scan_tuples of them. Interleaved query by query, after a
 * warm-up. Figures: latency p50/p95 and how many of the conversations the
 * direct comparison finds the walk finds too.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Database } from '../src/db/types.js';
import { LocalHashEmbedder } from '../src/search/local-embedder.js';
import { searchConversations, type SearchDeps } from '../src/search/search.js';
import { ensureUser } from '../src/users/users.js';
import { makeResult, type BenchContext, type BenchResult, type Benchmark } from './harness.js';
import {
  buildIndex,
  insertConversations,
  insertEmbeddingBatch,
  insertMessages,
  mean,
  openFreshBackend,
  percentile,
  rowsPerStatement,
  SyntheticCorpus,
  type MessageInsert,
} from './search-data.js';

const sizes = { full: { messages: 100_000, queries: 50 }, quick: { messages: 20_000, queries: 20 } };
const smallUserMessages = 60;
const warmUp = 3;
const fmt = (ms: number) => ms.toFixed(ms < 10 ? 2 : 1);

/** One user's messages from the corpus, in conversations, stored with their lexical vectors. */
async function storeUser(db: Database, embedder: LocalHashEmbedder, owner: string, count: number, seed: number): Promise<{ messages: number; conversations: number }> {
  const corpus = new SyntheticCorpus();
  const conversations: { id: string; owner_id: string; title: string; tool_name: string; turn_count: number }[] = [];
  const messages: MessageInsert[] = [];
  for (const message of corpus.messages(count, seed)) {
    if (message.seq === 1) conversations.push({ id: randomUUID(), owner_id: owner, title: message.content.slice(0, 60), tool_name: 'chat', turn_count: 0 });
    const conversation = conversations[conversations.length - 1]!;
    conversation.turn_count = message.seq;
    messages.push({ id: randomUUID(), conversation_id: conversation.id, owner_id: owner, seq: message.seq, role: message.role, content: message.content });
  }
  await insertConversations(db, conversations);
  await insertMessages(db, messages);
  for (let from = 0; from < messages.length; from += rowsPerStatement) {
    const rows = messages.slice(from, from + rowsPerStatement).map((message) => ({
      message_id: message.id,
      owner_id: owner,
      conversation_id: message.conversation_id,
      embedding: `[${embedder.embedOne(message.content).join(',')}]`,
    }));
    await insertEmbeddingBatch(db, embedder.model, embedder.dimensions, JSON.stringify(rows));
  }
  return { messages: messages.length, conversations: conversations.length };
}

async function measure(context: BenchContext): Promise<BenchResult[]> {
  const { progress, quick } = context;
  const size = quick ? sizes.quick : sizes.full;
  const fresh = await openFreshBackend(context);
  try {
    const db = fresh.db;
    const embedder = new LocalHashEmbedder();
    const tag = randomBytes(4).toString('hex');
    const big = await ensureUser(db, `bench-scope-big-${tag}`);
    const small = await ensureUser(db, `bench-scope-small-${tag}`);

    // The big user's vectors without the index, then one build; the small user's into the index.
    let start = performance.now();
    const indexName = 'message_embeddings_local_hnsw';
    const definition = (await db.query<{ definition: string }>(`SELECT pg_get_indexdef('exai.${indexName}'::regclass) AS definition`)).rows[0]!.definition;
    await db.query(`DROP INDEX exai.${indexName}`);
    const bigStored = await storeUser(db, embedder, big.id, size.messages, 7_001);
    const buildMs = await buildIndex(context, db, definition);
    const smallStored = await storeUser(db, embedder, small.id, smallUserMessages, 4_242);
    await db.query('ANALYZE exai.messages');
    await db.query('ANALYZE exai.message_embeddings');
    progress(
      `search-scope: ${bigStored.messages.toLocaleString('en-US')} messages of one user and ${smallStored.messages} of another (${smallStored.conversations} conversations) ` +
        `stored and embedded, the index built in ${(buildMs / 1000).toFixed(1)} s; ${((performance.now() - start) / 1000).toFixed(1)} s in all`,
    );

    // The small user's searches: held-out search-like texts on the corpus's topics.
    const queries = new SyntheticCorpus().queries(size.queries + warmUp, 9_001).map((query) => query.content);
    const variants: { name: 'direct' | 'walk'; deps: SearchDeps }[] = [
      { name: 'direct', deps: { db, embedder, logger: context.logger } },
      { name: 'walk', deps: { db, embedder, logger: context.logger, exactScanUpTo: 0 } },
    ];
    const ms: Record<'direct' | 'walk', number[]> = { direct: [], walk: [] };
    const found: Record<'direct' | 'walk', number[]> = { direct: [], walk: [] };
    const agreement: number[] = [];
    start = performance.now();
    for (const [index, query] of queries.entries()) {
      const answers: Partial<Record<'direct' | 'walk', string[]>> = {};
      // Rotate which goes first.
      for (const variant of index % 2 === 0 ? variants : [...variants].reverse()) {
        const t = performance.now();
        const answer = await searchConversations(variant.deps, small.id, { query, signals: 'vector', threshold: 0, limit: 10 });
        const took = performance.now() - t;
        if (index < warmUp) continue;
        ms[variant.name].push(took);
        found[variant.name].push(answer.results.length);
        answers[variant.name] = answer.results.map((result) => result.continuation_id);
      }
      if (index >= warmUp) {
        const direct = answers.direct ?? [];
        const walk = new Set(answers.walk ?? []);
        agreement.push(direct.length === 0 ? 1 : direct.filter((id) => walk.has(id)).length / direct.length);
      }
    }
    progress(
      `search-scope: ${size.queries} searches each in ${((performance.now() - start) / 1000).toFixed(1)} s: direct p50/p95 ${fmt(percentile(ms.direct, 0.5))}/${fmt(percentile(ms.direct, 0.95))} ms, ` +
        `${mean(found.direct).toFixed(1)} conversations; index walk ${fmt(percentile(ms.walk, 0.5))}/${fmt(percentile(ms.walk, 0.95))} ms, ${mean(found.walk).toFixed(1)} conversations, ` +
        `${(mean(agreement) * 100).toFixed(0)}% of the direct answer`,
    );

    const backend = context.backend.name;
    const data =
      `${bigStored.messages.toLocaleString('en-US')} synthetic messages of one user and ${smallStored.messages} of another (${smallStored.conversations} conversations), ` +
      `embedded with ${embedder.model}; the index (m 16, ef_construction 64) built after the big user's bulk load, the small user's vectors inserted into it. ` +
      `${size.queries} held-out search-like texts of 4–16 words as the small user's queries (signals vector, threshold 0, limit 10), after ${warmUp} warm-up queries; the two paths interleaved.`;
    const details = {
      'direct: p50 / p95 (ms)': `${fmt(percentile(ms.direct, 0.5))} / ${fmt(percentile(ms.direct, 0.95))}`,
      'index walk: p50 / p95 (ms)': `${fmt(percentile(ms.walk, 0.5))} / ${fmt(percentile(ms.walk, 0.95))}`,
      'conversations per search: direct / index walk': `${mean(found.direct).toFixed(2)} / ${mean(found.walk).toFixed(2)}`,
    };
    return [
      makeResult({
        name: `search-scope: vector search for 60 messages beside ${bigStored.messages.toLocaleString('en-US')} of another user (p95)`,
        backend,
        value: percentile(ms.direct, 0.95),
        unit: 'ms',
        baseline: percentile(ms.walk, 0.95),
        better: 'lower',
        target: null,
        notes: `${data} Project: searchConversations, which compares the small scope's vectors directly; baseline: the same with exactScanUpTo 0 (the HNSW walk under row-level security). Informational.`,
        details,
      }),
      makeResult({
        name: `search-scope: share of the direct answer's conversations the index walk finds`,
        backend,
        value: mean(agreement),
        unit: 'share',
        baseline: 1,
        better: 'higher',
        target: null,
        notes: `${data} Value: per search, the share of the conversations searchConversations finds (comparing every vector of the user: the exact answer) that the index walk finds too, averaged. Informational.`,
        details,
      }),
    ];
  } finally {
    await fresh.close();
  }
}

export const searchScopeBenchmark: Benchmark = {
  id: 'search-scope',
  description:
    'Vector search for a user with 60 messages beside another user\'s 100K (20K with --quick) in one HNSW index: the direct comparison of a small scope vs the index walk under row-level security',
  run: measure,
};
