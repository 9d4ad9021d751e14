/**
 * "load 20-turn thread": latency of ConversationStore.loadThread for a thread
 * of 20 turns (300–1500 characters each), on a cache hit and on a cache miss,
 * beside the plainest way to fetch the same data. Figures are the median (p50)
 * of single, sequential operations, in µs; the mean and p99 are in the notes.
 *
 * Cache hit — project: loadThread with the thread in the cache (getLog, then
 * one JSON.parse of the head and of each turn, plus the id check). Baseline:
 * - Redis: one ioredis GET of a key holding the thread's JSON (the same bytes,
 *   JSON.stringify of the loaded thread), returning the string unparsed;
 * - memory cache: a Map.get of that JSON string followed by JSON.parse of it —
 *   a Map.get alone costs next to nothing, so the parse is the work to compare.
 * Target: ratio <= 2.
 *
 * Cache miss — project: loadThread after the cache entry was deleted (untimed,
 * before each load). loadThread fills the cache on the next turn of the event
 * loop, after returning; the untimed step before each load lets that fill go
 * out and then deletes the entry (on Redis queued behind the fill on the same
 * connection), so every timed load starts from a miss. Baseline: the
 * conversation row and its 20 message rows as the superuser, with the same
 * column lists, in one round trip (two plain SELECTs in one script).
 * Target: ratio <= 1.5.
 */
import { randomBytes } from 'node:crypto';
import { threadColumns, turnColumns } from '../src/conversations/rows.js';
import type { Thread } from '../src/conversations/types.js';
import { ensureUser } from '../src/users/users.js';
import {
  compareLatency,
  countingDatabase,
  makeResult,
  type BenchContext,
  type BenchResult,
  type Benchmark,
  type LatencyStats,
} from './harness.js';
import { makeTurns } from './workload.js';

const turnsPerThread = 20;

function describe(stats: LatencyStats): string {
  return `p50 ${stats.p50.toFixed(1)} / mean ${stats.mean.toFixed(1)} / p99 ${stats.p99.toFixed(1)} µs`;
}

function expectThread(thread: Thread, id: string): void {
  if (thread.id !== id || thread.turns.length !== turnsPerThread) {
    throw new Error(`load bench: expected thread ${id} with ${turnsPerThread} turns, got ${thread.turns.length}`);
  }
}

async function waitForCached(context: BenchContext, key: string): Promise<void> {
  const deadline = Date.now() + 2000;
  while ((await context.backend.cache.getLog(key)) === undefined) {
    if (Date.now() > deadline) throw new Error(`load bench: the cache never received ${key}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function checkCacheHealthy(context: BenchContext): void {
  const health = context.backend.cache.health();
  if (health.status !== 'ok') throw new Error(`load bench: the cache became ${health.status} during the run (${health.detail ?? ''})`);
}

export const loadBenchmark: Benchmark = {
  id: 'load',
  description: 'load a 20-turn thread, cache hit and miss, vs raw GET / raw SELECT',
  async run(context) {
    const { backend, quick } = context;
    const counting = countingDatabase(backend.db);
    const store = backend.createStore(counting.db);
    const user = await ensureUser(backend.db, `bench-load-${randomBytes(4).toString('hex')}`);
    const created = await store.createThread(user.id, { title: 'a 20-turn review', toolName: 'chat' });
    for (const turn of makeTurns(turnsPerThread, 42)) await store.appendTurn(user.id, created.id, turn);
    const key = `thread:${user.id}:${created.id}`;

    await backend.cache.deleteLog(key);
    const loaded = await store.loadThread(user.id, created.id);
    expectThread(loaded, created.id);
    await waitForCached(context, key);
    const serialized = JSON.stringify(loaded);
    const bytes = Buffer.byteLength(serialized);
    const results: BenchResult[] = [];

    // Cache hit ----------------------------------------------------------------
    context.progress('load 20-turn thread, cache hit');
    let hitBaseline: () => Promise<unknown>;
    let hitBaselineName: string;
    if (backend.redis !== undefined) {
      const redis = backend.redis;
      const rawKey = `${backend.redisPrefix ?? ''}bench:raw-thread:${created.id}`;
      await redis.set(rawKey, serialized);
      if ((await redis.get(rawKey)) !== serialized) throw new Error('load bench: the raw Redis key does not hold the thread');
      hitBaseline = () => redis.get(rawKey);
      hitBaselineName = 'ioredis GET of the same JSON (string, unparsed)';
    } else {
      const map = new Map<string, string>([[key, serialized]]);
      hitBaseline = async () => JSON.parse(map.get(key)!) as unknown;
      hitBaselineName = 'Map.get of the same JSON + JSON.parse';
    }
    const dbCallsBefore = { ...counting.counts };
    const hit = await compareLatency({
      warmup: quick ? 300 : 2000,
      iterations: quick ? 3000 : 20000,
      blocks: 10,
      project: { op: () => store.loadThread(user.id, created.id) },
      baseline: { op: hitBaseline },
    });
    checkCacheHealthy(context);
    const dbCalls = counting.counts.execs + counting.counts.queries + counting.counts.transactions;
    if (dbCalls !== dbCallsBefore.execs + dbCallsBefore.queries + dbCallsBefore.transactions) {
      throw new Error('load bench: a cache-hit load reached the database (the thread was not in the cache)');
    }
    expectThread(await store.loadThread(user.id, created.id), created.id);
    results.push(
      makeResult({
        name: 'load 20-turn thread, cache hit (p50)',
        backend: backend.name,
        value: hit.project.p50,
        unit: 'µs',
        baseline: hit.baseline.p50,
        better: 'lower',
        target: 2,
        notes:
          `project: loadThread served from the ${backend.cache.backend} cache (${describe(hit.project)}); ` +
          `baseline: ${hitBaselineName} (${describe(hit.baseline)}); thread JSON ${bytes} bytes; ${hit.project.count} ops per side`,
      }),
    );

    // Cache miss ---------------------------------------------------------------
    context.progress('load 20-turn thread, cache miss');
    const rawScript = [
      `SELECT ${threadColumns} FROM exai.conversations WHERE id = '${created.id}'::uuid`,
      `SELECT ${turnColumns} FROM exai.messages WHERE conversation_id = '${created.id}'::uuid ORDER BY seq`,
    ].join(';\n');
    const raw = await backend.db.exec(rawScript);
    if (raw[0]?.rows.length !== 1 || raw[1]?.rows.length !== turnsPerThread) throw new Error('load bench: the raw SELECT found other rows');
    const execsBefore = counting.counts.execs;
    const missOps = { count: 0 };
    const miss = await compareLatency({
      warmup: quick ? 30 : 200,
      iterations: quick ? 300 : 3000,
      blocks: 10,
      project: {
        // loadThread fills the cache on the next turn of the event loop: let that fill go out first,
        // so this delete (queued behind it) makes the timed load a miss.
        before: async () => {
          await new Promise((resolve) => setImmediate(resolve));
          await backend.cache.deleteLog(key);
        },
        op: () => {
          missOps.count++;
          return store.loadThread(user.id, created.id);
        },
      },
      baseline: { op: () => backend.db.exec(rawScript) },
    });
    checkCacheHealthy(context);
    if (counting.counts.execs - execsBefore !== missOps.count) {
      throw new Error(`load bench: ${missOps.count} cache-miss loads but ${counting.counts.execs - execsBefore} database reads`);
    }
    results.push(
      makeResult({
        name: 'load 20-turn thread, cache miss (p50)',
        backend: backend.name,
        value: miss.project.p50,
        unit: 'µs',
        baseline: miss.baseline.p50,
        better: 'lower',
        target: 1.5,
        notes:
          `project: loadThread with the cache entry deleted before each load, refilling it (${describe(miss.project)}); ` +
          `baseline: SELECT of the conversation row + its ${turnsPerThread} message rows as superuser, one round trip ` +
          `(${describe(miss.baseline)}); ${miss.project.count} ops per side`,
      }),
    );
    return results;
  },
};
