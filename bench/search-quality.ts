/**
 * Retrieval quality of conversation search: does fusing full text and vectors
 * (hybrid, the default) find the right conversations better than either
 * signal alone?
 *
 * The labelled set under test/fixtures/search/ (hand-written conversations of
 * developers asking models about software work, some in German, Japanese and
 * Chinese, and queries each labelled with the conversations a person asking
 * it would want) is loaded through the store into a fresh database, indexed
 * by the search job's indexPendingMessages with the built-in LocalHashEmbedder,
 * then every query runs through searchConversations as the user (row-level
 * security) with signals text, vector and hybrid, limit 10.
 *
 * Figures per signal: recall@5 (the share of a query's relevant conversations
 * in the top 5, averaged over queries), recall@10 and MRR (1 / rank of the
 * first relevant conversation, 0 when none is in the top 10).
 *
 * Target: hybrid beats both text-only and vector-only on recall@5 and on MRR.
 * The harness prints the comparison of a figure from its unit and reads only
 * "/s" units as higher-is-better, so the figures are the lower-is-better
 * complements: "missed@5" = 1 − recall@5 and "MRR loss" = 1 − MRR. Each
 * compares hybrid (the project's path) with the better single signal, and the
 * target is hybrid − best single ≤ −0.001 (strictly fewer misses; the set's
 * resolution is far coarser than 0.001, so it means "any improvement").
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { indexPendingMessages } from '../src/search/indexer.js';
import { LocalHashEmbedder } from '../src/search/local-embedder.js';
import { searchConversations } from '../src/search/search.js';
import { ensureUser } from '../src/users/users.js';
import { makeResult, projectRoot, type BenchContext, type BenchResult, type Benchmark } from './harness.js';
import { mean, openFreshBackend, percentile } from './search-data.js';

export interface FixtureConversation {
  id: string;
  title: string;
  tool: string;
  model: string;
  turns: { role: 'user' | 'assistant'; content: string }[];
}

export interface FixtureQuery {
  query: string;
  relevant: string[];
  kind?: string;
}

type Signals = 'text' | 'vector' | 'hybrid';
const signalsMeasured: Signals[] = ['text', 'vector', 'hybrid'];
const limit = 10;

export function loadRetrievalSet(): { conversations: FixtureConversation[]; queries: FixtureQuery[] } {
  const folder = path.join(projectRoot(), 'test', 'fixtures', 'search');
  const conversations = JSON.parse(readFileSync(path.join(folder, 'conversations.json'), 'utf8')) as FixtureConversation[];
  const queries = JSON.parse(readFileSync(path.join(folder, 'queries.json'), 'utf8')) as FixtureQuery[];
  const ids = new Set(conversations.map((conversation) => conversation.id));
  for (const query of queries) {
    for (const id of query.relevant) if (!ids.has(id)) throw new Error(`queries.json: "${query.query}" names unknown conversation ${id}`);
  }
  return { conversations, queries };
}

interface QueryOutcome {
  query: FixtureQuery;
  /** Fixture ids in result order. */
  ranked: string[];
  recallAt5: number;
  recallAt10: number;
  reciprocalRank: number;
  ms: number;
}

function judge(query: FixtureQuery, ranked: string[], ms: number): QueryOutcome {
  const relevant = new Set(query.relevant);
  const found = (k: number) => ranked.slice(0, k).filter((id) => relevant.has(id)).length / relevant.size;
  const first = ranked.findIndex((id) => relevant.has(id));
  return { query, ranked, recallAt5: found(5), recallAt10: found(10), reciprocalRank: first === -1 ? 0 : 1 / (first + 1), ms };
}

interface Summary {
  recallAt5: number;
  recallAt10: number;
  mrr: number;
  p50Ms: number;
  p95Ms: number;
}

function summarise(outcomes: QueryOutcome[]): Summary {
  return {
    recallAt5: mean(outcomes.map((o) => o.recallAt5)),
    recallAt10: mean(outcomes.map((o) => o.recallAt10)),
    mrr: mean(outcomes.map((o) => o.reciprocalRank)),
    p50Ms: percentile(outcomes.map((o) => o.ms), 0.5),
    p95Ms: percentile(outcomes.map((o) => o.ms), 0.95),
  };
}

const f3 = (value: number) => value.toFixed(3);

async function measure(context: BenchContext): Promise<BenchResult[]> {
  const { progress, logger } = context;
  const { conversations, queries } = loadRetrievalSet();
  const fresh = await openFreshBackend(context);
  try {
    const db = fresh.db;
    const user = await ensureUser(db, `bench-search-quality-${randomBytes(4).toString('hex')}`);
    let start = performance.now();
    const fixtureIdOf = new Map<string, string>();
    for (const conversation of conversations) {
      const thread = await fresh.store.createThread(user.id, { title: conversation.title, toolName: conversation.tool });
      fixtureIdOf.set(thread.id, conversation.id);
      const provider = conversation.model.startsWith('glm') ? 'glm' : 'kimi';
      await fresh.store.appendTurns(
        user.id,
        thread.id,
        conversation.turns.map((turn) =>
          turn.role === 'user'
            ? { role: 'user', content: turn.content, toolName: conversation.tool }
            : { role: 'assistant', content: turn.content, toolName: conversation.tool, provider, model: conversation.model },
        ),
      );
    }
    const turns = conversations.reduce((sum, conversation) => sum + conversation.turns.length, 0);
    progress(`search-quality: ${conversations.length} conversations (${turns} turns) stored in ${((performance.now() - start) / 1000).toFixed(1)} s`);

    const embedder = new LocalHashEmbedder();
    const deps = { db, embedder, logger };
    start = performance.now();
    const indexed = await indexPendingMessages(deps, { batchSize: 200 });
    if (indexed.remaining !== 0) throw new Error(`${indexed.remaining} messages are still not indexed`);
    progress(`search-quality: ${indexed.indexed} messages indexed in ${((performance.now() - start) / 1000).toFixed(1)} s`);
    await db.query('ANALYZE exai.messages');
    await db.query('ANALYZE exai.message_embeddings');

    // Warm-up: plans and caches for each signal.
    for (const signals of signalsMeasured) await searchConversations(deps, user.id, { query: queries[0]!.query, limit, signals });

    // Signals interleaved query by query, so drift hits all three alike.
    const outcomes: Record<Signals, QueryOutcome[]> = { text: [], vector: [], hybrid: [] };
    for (const query of queries) {
      for (const signals of signalsMeasured) {
        const t = performance.now();
        const answer = await searchConversations(deps, user.id, { query: query.query, limit, signals });
        const ms = performance.now() - t;
        outcomes[signals].push(judge(query, answer.results.map((result) => fixtureIdOf.get(result.continuation_id) ?? result.continuation_id), ms));
      }
    }
    const summary = { text: summarise(outcomes.text), vector: summarise(outcomes.vector), hybrid: summarise(outcomes.hybrid) };
    for (const signals of signalsMeasured) {
      const s = summary[signals];
      progress(`search-quality: ${signals.padEnd(6)} recall@5 ${f3(s.recallAt5)}  recall@10 ${f3(s.recallAt10)}  MRR ${f3(s.mrr)}  p95 ${s.p95Ms.toFixed(1)} ms`);
    }

    const kinds = [...new Set(queries.map((query) => query.kind ?? 'all'))];
    const byKind: Record<string, string> = {};
    for (const kind of kinds) {
      const count = queries.filter((query) => (query.kind ?? 'all') === kind).length;
      const line = signalsMeasured
        .map((signals) => {
          const s = summarise(outcomes[signals].filter((o) => (o.query.kind ?? 'all') === kind));
          return `${signals} ${f3(s.recallAt5)} / ${f3(s.mrr)}`;
        })
        .join(', ');
      byKind[`"${kind}" queries (${count}): recall@5 / MRR`] = line;
    }
    // Where hybrid loses to a single signal: the queries to look at when tuning the fusion.
    const worse = outcomes.hybrid
      .map((hybrid, index) => ({ hybrid, text: outcomes.text[index]!, vector: outcomes.vector[index]! }))
      .filter(({ hybrid, text, vector }) => hybrid.reciprocalRank < Math.max(text.reciprocalRank, vector.reciprocalRank));
    const missedByAll = outcomes.hybrid.filter((o, index) => o.recallAt10 === 0 && outcomes.text[index]!.recallAt10 === 0 && outcomes.vector[index]!.recallAt10 === 0);
    const rankOf = (o: QueryOutcome) => (o.reciprocalRank === 0 ? '-' : String(Math.round(1 / o.reciprocalRank)));
    for (const { hybrid, text, vector } of worse) {
      progress(`search-quality: hybrid ranks below a single signal: "${hybrid.query.query}" first relevant at hybrid ${rankOf(hybrid)}, text ${rankOf(text)}, vector ${rankOf(vector)}`);
    }

    const table = signalsMeasured.map((signals) => {
      const s = summary[signals];
      return [`${signals}: recall@5 / recall@10 / MRR`, `${f3(s.recallAt5)} / ${f3(s.recallAt10)} / ${f3(s.mrr)}`] as const;
    });
    const latency = signalsMeasured.map((signals) => [`${signals}: search p50 / p95 (ms)`, `${summary[signals].p50Ms.toFixed(1)} / ${summary[signals].p95Ms.toFixed(1)}`] as const);
    const details: Record<string, string | number> = {
      ...Object.fromEntries(table),
      'the better single signal: by recall@5 / by MRR': `${summary.text.recallAt5 >= summary.vector.recallAt5 ? 'text' : 'vector'} / ${summary.text.mrr >= summary.vector.mrr ? 'text' : 'vector'}`,
      ...byKind,
      'queries where hybrid ranks the first relevant lower than text or vector': `${worse.length} of ${queries.length}`,
      'queries no signal finds in the top 10': missedByAll.length === 0 ? 0 : missedByAll.map((o) => `"${o.query.query}"`).join(', '),
      ...Object.fromEntries(latency),
    };

    const set = `the labelled set in test/fixtures/search (${conversations.length} conversations, ${turns} turns, ${queries.length} queries, ` +
      `${queries.filter((q) => q.relevant.length > 1).length} with more than one relevant conversation), stored through ConversationStore into a fresh database, ` +
      `indexed by indexPendingMessages with LocalHashEmbedder (${embedder.model}, lexical). Each query through searchConversations as the user, limit ${limit}, ` +
      `default threshold and recall, signals text, vector and hybrid interleaved per query.`;
    const bestRecall = summary.text.recallAt5 >= summary.vector.recallAt5 ? 'text' : 'vector';
    const bestMrr = summary.text.mrr >= summary.vector.mrr ? 'text' : 'vector';
    return [
      makeResult({
        name: 'search-quality: missed@5 (1 − recall@5), hybrid vs the better single signal',
        backend: context.backend.name,
        value: 1 - summary.hybrid.recallAt5,
        unit: 'missed@5',
        baseline: 1 - summary[bestRecall].recallAt5,
        better: 'lower',
        target: -0.001,
        targetOn: 'difference',
        notes:
          `${set} missed@5 = 1 − recall@5, recall@5 = the share of a query's relevant conversations in the top 5, averaged over queries. ` +
          `Baseline: the better of text-only (recall@5 ${f3(summary.text.recallAt5)}) and vector-only (${f3(summary.vector.recallAt5)}); hybrid ${f3(summary.hybrid.recallAt5)}. ` +
          'Target: hybrid misses strictly less than both single signals (difference ≤ −0.001).',
        details,
      }),
      makeResult({
        name: 'search-quality: MRR loss (1 − MRR), hybrid vs the better single signal',
        backend: context.backend.name,
        value: 1 - summary.hybrid.mrr,
        unit: 'MRR loss',
        baseline: 1 - summary[bestMrr].mrr,
        better: 'lower',
        target: -0.001,
        targetOn: 'difference',
        notes:
          `${set} MRR = mean over queries of 1 / rank of the first relevant conversation (0 when none is in the top ${limit}). ` +
          `Baseline: the better of text-only (MRR ${f3(summary.text.mrr)}) and vector-only (${f3(summary.vector.mrr)}); hybrid ${f3(summary.hybrid.mrr)}. ` +
          'Target: hybrid strictly better than both single signals (difference ≤ −0.001).',
      }),
      makeResult({
        name: 'search-quality: search latency, hybrid vs text only (p95)',
        backend: context.backend.name,
        value: summary.hybrid.p95Ms,
        unit: 'ms',
        baseline: summary.text.p95Ms,
        better: 'lower',
        target: null,
        notes: `searchConversations over the labelled set (${turns} messages): hybrid (embeds the query, HNSW + full text, fused) vs text only; ${queries.length} queries each, interleaved. Informational.`,
      }),
    ];
  } finally {
    await fresh.close();
  }
}

export const searchQualityBenchmark: Benchmark = {
  id: 'search-quality',
  description: 'conversation search on a labelled set: recall@5 and MRR of hybrid vs full text only vs vectors only (LocalHashEmbedder)',
  run: measure,
};
