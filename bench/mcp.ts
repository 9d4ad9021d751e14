/**
 * "MCP overhead": what exai adds to one tool call over stdio, beside a bare
 * MCP server made with the official SDK on the same transport, in the same run.
 *
 * - Project: the built `exai stdio` (`node bin/exai.js stdio`), driven by the
 *   official SDK client, answering `chat` with {prompt, continuation_id,
 *   model: 'bench-model'} against a zero-latency fake OpenAI-compatible
 *   provider (bench/fake-provider.ts). The whole path a user's call takes:
 *   JSON-RPC over stdio, on the embedded database the relay to the owner
 *   (`exai serve`, started by `exai stdio` itself) over loopback HTTP, tool
 *   dispatch, loading the thread (a cache hit), the streamed model call, and
 *   storing the question and answer. On PostgreSQL + Redis `exai stdio`
 *   serves directly, on a fresh database created and dropped by the bench.
 * - Baseline: bench/echo-server.ts (McpServer + StdioServerTransport, one
 *   `echo` tool), called with the same prompt by the same kind of client.
 *
 * Thread length: every measured call continues its own thread of exactly 10
 * turns (5 earlier `chat` calls, made through exai in an untimed set-up with
 * 4 calls in flight), so the thread never grows under the measurement; each
 * call checks it got turn 12. Warm-up calls use threads of their own too, so
 * exai's database holds one 10-turn thread per call: 220 threads on --quick,
 * 2,100 on a full run (the figures are in the notes, since an append that
 * scans the messages table slows as it grows).
 *
 * Calls are sequential, one in flight, timed one by one with
 * performance.now() around client.callTool; sides run in alternating blocks
 * (their order rotating) so drift hits all alike. calls/s is the sequential
 * rate, 1000 / mean latency in ms. Targets: exai's p50 at most 1 ms above the
 * bare server's, its p99 at most 5 ms above (the LiteLLM proxy publishes 2 ms
 * p50 / 13 ms p99 of overhead).
 *
 * Where the time goes (the `details` of the p50 and p99 figures), measured in
 * the same blocks:
 * - an MCP ping (no tool, no storage, no model) to exai over stdio and to the
 *   bare server: the difference is what exai's transport adds (on the
 *   embedded database, the relay to the owner);
 * - embedded only: the same ping over HTTP straight to the owner's /mcp, so the
 *   stdio leg of the relay is the difference with the ping over stdio;
 * - the model call alone, straight at the fake: raw fetch of the SSE stream,
 *   and the openai SDK's stream (what exai's provider client uses), with a
 *   request body like exai's (system prompt, 10 turns, the prompt);
 * - the storage alone, in this process on the bench's own backend (the same
 *   kind: PGlite + memory cache, or PostgreSQL + Redis): loadThread of a cached
 *   10-turn thread and appendTurns of the question and the answer.
 * A percentile of a difference is not the difference of percentiles: the
 * derived lines are indications.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import pg from 'pg';
import type { ConversationStore } from '../src/conversations/store.js';
import { readOwnerInfo } from '../src/embedded/owner-info.js';
import { isProcessAlive } from '../src/embedded/process-alive.js';
import { redactUrl } from '../src/logger.js';
import { ensureUser } from '../src/users/users.js';
import { externalUrls } from './backends.js';
import { fakeAnswer, startFakeProvider, type FakeProvider } from './fake-provider.js';
import { latencyStats, makeResult, projectRoot, type BenchContext, type BenchResult, type Benchmark, type LatencyStats } from './harness.js';

const model = 'bench-model';
const threadTurns = 10;
/** Set-up calls in flight at once (EXAI_PROVIDER_CONCURRENCY's default). */
const setupConcurrency = 4;
const targetP50Ms = 1;
const targetP99Ms = 5;

const sizes = {
  quick: { iterations: 200, warmup: 20, blocks: 4 },
  full: { iterations: 2000, warmup: 100, blocks: 20 },
};

/** Roughly exai's chat system prompt, for the direct provider calls. */
const systemPrompt =
  'You are a senior engineer giving a second opinion to another AI coding assistant. ' +
  'Be direct and specific; say when you disagree and why; prefer concrete code and steps over generalities.';

function prompt(index: number): string {
  return `Bench question ${index}: does the retry loop in src/providers/client.ts give up after the first token?`;
}

// Processes ------------------------------------------------------------------

interface Spawned {
  client: Client;
  /** The end of the child's stderr, for error messages. */
  stderr(): string;
}

async function connectStdio(name: string, command: string, args: string[], env: Record<string, string>, cwd: string): Promise<Spawned> {
  const transport = new StdioClientTransport({ command, args, env, cwd, stderr: 'pipe' });
  let tail = '';
  transport.stderr?.on('data', (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-4000);
  });
  const client = new Client({ name: `bench-${name}`, version: '1.0.0' });
  try {
    await client.connect(transport);
  } catch (error) {
    await client.close().catch(() => undefined);
    throw new Error(`${name} did not start: ${(error as Error).message}; stderr: ${tail}`);
  }
  return { client, stderr: () => tail };
}

/** SIGTERM, then SIGKILL if it is still there after `graceMs`. */
async function stopProcess(pid: number, graceMs = 15_000): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return; // already gone
  }
  const deadline = Date.now() + graceMs;
  while (isProcessAlive(pid)) {
    if (Date.now() > deadline) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// PostgreSQL + Redis ---------------------------------------------------------

async function adminQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(url: string, sql: string): Promise<R[]> {
  const admin = new pg.Client({ connectionString: url, application_name: 'exai-bench' });
  await admin.connect();
  try {
    return (await admin.query<R>(sql)).rows;
  } finally {
    await admin.end();
  }
}

/**
 * A fresh database for the exai process (it migrates it itself), dropped at
 * the end, with the Redis keys exai wrote for its users: exai's key prefix is
 * fixed (`exai:`), but every key of a thread names its owner, and the users of
 * a fresh database have fresh ids.
 */
async function createExaiDatabase(adminUrl: string, redisUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `exai_bench_mcp_${randomBytes(6).toString('hex')}`;
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  await adminQuery(adminUrl, `CREATE DATABASE ${name}`);
  let dropped = false;
  return {
    url: url.toString(),
    async drop() {
      if (dropped) return;
      dropped = true;
      const users = await adminQuery<{ id: string }>(url.toString(), 'SELECT id::text AS id FROM exai.users').catch(() => []);
      if (users.length > 0) {
        const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
        try {
          await redis.connect();
          for (const user of users) {
            let cursor = '0';
            do {
              const [next, keys] = await redis.scan(cursor, 'MATCH', `exai:*${user.id}*`, 'COUNT', 1000);
              if (keys.length > 0) await redis.del(...keys);
              cursor = next;
            } while (cursor !== '0');
          }
        } catch (error) {
          process.stderr.write(`bench: could not remove exai's Redis keys at ${redactUrl(redisUrl)}: ${(error as Error).message}\n`);
        } finally {
          redis.disconnect();
        }
      }
      await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch((error: Error) =>
        process.stderr.write(`bench: could not drop database ${name}: ${error.message}\n`),
      );
    },
  };
}

// Calls ----------------------------------------------------------------------

interface ChatOutput {
  continuation_id: string;
  turn_count: number;
}

async function callChat(client: Client, args: Record<string, unknown>): Promise<ChatOutput> {
  const result = (await client.callTool({ name: 'chat', arguments: args })) as CallToolResult;
  const structured = result.structuredContent as Partial<ChatOutput> | undefined;
  if (result.isError || typeof structured?.continuation_id !== 'string' || typeof structured.turn_count !== 'number') {
    const text = result.content.map((part) => (part.type === 'text' ? part.text : `[${part.type}]`)).join(' ');
    throw new Error(`chat failed: ${text || JSON.stringify(result)}`);
  }
  return { continuation_id: structured.continuation_id, turn_count: structured.turn_count };
}

/** `count` threads of exactly `threadTurns` turns, made through exai's own `chat`, a few at a time. */
async function makeThreadPool(client: Client, count: number, progress: (message: string) => void): Promise<string[]> {
  const pool: string[] = new Array<string>(count);
  let next = 0;
  let made = 0;
  let lastNote = performance.now();
  await Promise.all(
    Array.from({ length: setupConcurrency }, async () => {
      for (let index = next++; index < count; index = next++) {
        let id: string | undefined;
        let turns = 0;
        for (let call = 0; turns < threadTurns; call++) {
          const args: Record<string, unknown> = { prompt: `Set-up question ${call} of thread ${index}.`, model };
          if (id !== undefined) args.continuation_id = id;
          const out = await callChat(client, args);
          id = out.continuation_id;
          turns = out.turn_count;
        }
        if (turns !== threadTurns) throw new Error(`mcp bench: a set-up thread has ${turns} turns, expected ${threadTurns}`);
        pool[index] = id!;
        made++;
        if (performance.now() - lastNote > 10_000) {
          lastNote = performance.now();
          progress(`set-up: ${made}/${count} threads of ${threadTurns} turns`);
        }
      }
    }),
  );
  return pool;
}

/** The same threads for the in-process storage figure, built straight on the bench's store. */
async function makeStorePool(store: ConversationStore, userId: string, count: number): Promise<string[]> {
  const pool: string[] = new Array<string>(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let index = next++; index < count; index = next++) {
        const thread = await store.createThread(userId, { toolName: 'chat', title: `Set-up question 0 of thread ${index}.` });
        for (let pair = 0; pair < threadTurns / 2; pair++) {
          await store.appendTurns(userId, thread.id, questionAndAnswer(`Set-up question ${pair} of thread ${index}.`));
          // As exai does: the first continuation loads the thread (a miss that fills the cache), later ones hit.
          if (pair === 0) await store.loadThread(userId, thread.id);
        }
        pool[index] = thread.id;
      }
    }),
  );
  return pool;
}

function questionAndAnswer(question: string): unknown[] {
  const key = randomUUID();
  return [
    { role: 'user', content: question, toolName: 'chat', idempotencyKey: `${key}:question` },
    {
      role: 'assistant',
      content: fakeAnswer,
      toolName: 'chat',
      provider: 'openai-compat',
      model,
      inputTokens: 64,
      outputTokens: 8,
      idempotencyKey: `${key}:answer`,
    },
  ];
}

/** A chat request body like the one exai sends for a call continuing a 10-turn thread. */
function providerMessages(): { role: 'system' | 'user' | 'assistant'; content: string }[] {
  const messages: { role: 'system' | 'user' | 'assistant'; content: string }[] = [{ role: 'system', content: systemPrompt }];
  for (let pair = 0; pair < threadTurns / 2; pair++) {
    messages.push({ role: 'user', content: `Set-up question ${pair} of thread 0.` }, { role: 'assistant', content: fakeAnswer });
  }
  messages.push({ role: 'user', content: prompt(0) });
  return messages;
}

// Measuring ------------------------------------------------------------------

interface Side {
  label: string;
  op: (index: number) => Promise<void>;
  samples: number[];
  /** Operations started, warm-up included: the index handed to `op`. */
  started: number;
}

function side(label: string, op: (index: number) => Promise<void>): Side {
  return { label, op, samples: [], started: 0 };
}

/** A warm-up per side, then `blocks` blocks in which every side runs `perBlock` timed calls, the order rotating. */
async function measure(sides: Side[], warmup: number, perBlock: number, blocks: number, progress: (message: string) => void): Promise<void> {
  const run = async (s: Side, count: number, record: boolean) => {
    for (let i = 0; i < count; i++) {
      const index = s.started++;
      const start = performance.now();
      await s.op(index);
      const elapsed = performance.now() - start;
      if (record) s.samples.push(elapsed);
    }
  };
  for (const s of sides) await run(s, warmup, false);
  let lastNote = performance.now();
  for (let block = 0; block < blocks; block++) {
    for (let k = 0; k < sides.length; k++) await run(sides[(block + k) % sides.length]!, perBlock, true);
    if (performance.now() - lastNote > 10_000) {
      lastNote = performance.now();
      progress(`measured block ${block + 1}/${blocks}`);
    }
  }
}

const ms = (value: number) => Number(value.toFixed(3));

function summary(stats: LatencyStats): string {
  return `p50 ${stats.p50.toFixed(3)} / p90 ${stats.p90.toFixed(3)} / p99 ${stats.p99.toFixed(3)} ms, mean ${stats.mean.toFixed(3)} ms`;
}

export const mcpBenchmark: Benchmark = {
  id: 'mcp',
  description: "exai's `chat` over stdio on a 10-turn thread with a zero-latency model vs a bare SDK echo server",
  async run(context: BenchContext): Promise<BenchResult[]> {
    const { backend, quick, progress } = context;
    const size = quick ? sizes.quick : sizes.full;
    const perBlock = Math.ceil(size.iterations / size.blocks);
    const iterations = perBlock * size.blocks;
    const embedded = backend.name.startsWith('pglite');

    const root = projectRoot();
    const exaiBin = path.join(root, 'bin', 'exai.js');
    const echoScript = fileURLToPath(new URL('./echo-server.js', import.meta.url));
    if (!existsSync(path.join(root, 'dist', 'src', 'cli', 'main.js')) || !existsSync(echoScript)) {
      throw new Error(`mcp bench: build first (npm run build): need dist/src/cli/main.js and ${echoScript}`);
    }

    const cleanups: (() => Promise<void>)[] = [];
    let cleaned = false;
    const cleanup = async () => {
      if (cleaned) return;
      cleaned = true;
      for (const step of cleanups.reverse()) await step().catch((error: Error) => process.stderr.write(`bench: mcp clean-up: ${error.message}\n`));
    };
    const unregister = context.registerCleanup?.(cleanup);

    try {
      const fake: FakeProvider = await startFakeProvider();
      cleanups.push(() => fake.close());
      const home = mkdtempSync(path.join(os.tmpdir(), 'exai-bench-home-'));
      cleanups.push(async () => rmSync(home, { recursive: true, force: true }));

      // Only what exai needs: no developer .env (cwd is the fresh home), no stray EXAI_* settings.
      // EXAI_PORT=0: the owner that `exai stdio` starts on the embedded database takes a free port.
      const env: Record<string, string> = {
        EXAI_HOME: home,
        EXAI_PORT: '0',
        EXAI_LOG_LEVEL: 'warn',
        // Thousands of calls a minute from one user: the request limit would stop the run. The
        // token budget and the calls-in-flight slots stay on, so their cost is in the figures.
        EXAI_RATE_REQUESTS_PER_MINUTE: '0',
        OPENAI_COMPAT_BASE_URL: fake.baseUrl,
        OPENAI_COMPAT_MODELS: model,
      };
      if (!embedded) {
        const urls = externalUrls();
        if ('missing' in urls) throw new Error(`mcp bench: ${urls.missing} not set`);
        const database = await createExaiDatabase(urls.databaseUrl, urls.redisUrl);
        cleanups.push(() => database.drop());
        env.DATABASE_URL = database.url;
        env.REDIS_URL = urls.redisUrl;
      }

      // On the embedded database `exai stdio` starts an owner (`exai serve`, detached) that
      // outlives its clients: stop it (after the clients have gone, before the home is removed).
      cleanups.push(async () => {
        const owner = readOwnerInfo(home);
        if (owner !== undefined) await stopProcess(owner.pid);
      });
      const startedAt = performance.now();
      const exai = await connectStdio('exai stdio', process.execPath, [exaiBin, 'stdio'], env, home);
      cleanups.push(() => exai.client.close());
      let ownerUrl: string | undefined;
      let ownerToken: string | undefined;
      if (embedded) {
        const owner = readOwnerInfo(home);
        if (owner === undefined) throw new Error(`mcp bench: exai stdio is relaying, but ${home}/owner.json is missing; stderr: ${exai.stderr()}`);
        ownerUrl = owner.url;
        ownerToken = owner.token;
      }
      progress(`exai stdio ready in ${(performance.now() - startedAt).toFixed(0)} ms${embedded ? ` (relaying to the owner at ${ownerUrl})` : ' (serving directly)'}`);
      const echo = await connectStdio('echo server', process.execPath, [echoScript], {}, root);
      cleanups.push(() => echo.client.close());
      let http: Client | undefined;
      if (ownerUrl !== undefined) {
        const client = new Client({ name: 'bench-http', version: '1.0.0' });
        // As the stdio relay does: the owner token from owner.json authenticates a loopback client.
        await client.connect(new StreamableHTTPClientTransport(new URL('/mcp', ownerUrl), { requestInit: { headers: { authorization: `Bearer ${ownerToken}` } } }));
        http = client;
        cleanups.push(() => client.close());
      }

      // Set-up, untimed: one 10-turn thread per measured and warm-up call, through exai, and the same on the bench's store.
      const poolSize = size.warmup + iterations;
      const setupStart = performance.now();
      const pool = await makeThreadPool(exai.client, poolSize, progress);
      const storeUser = await ensureUser(backend.db, `bench-mcp-${randomBytes(4).toString('hex')}`);
      const storePool = await makeStorePool(backend.store, storeUser.id, poolSize);
      progress(`set-up: ${poolSize} threads of ${threadTurns} turns through exai and on the store in ${((performance.now() - setupStart) / 1000).toFixed(1)} s`);

      const sdk = new OpenAI({ baseURL: fake.baseUrl, apiKey: 'none', maxRetries: 0 });
      const messages = providerMessages();
      const providerBody = JSON.stringify({ model, messages, stream: true, stream_options: { include_usage: true } });
      const turnCounts: number[] = [];

      const chatSide = side('exai chat over stdio', async (index) => {
        const out = await callChat(exai.client, { prompt: prompt(index), continuation_id: pool[index]!, model });
        turnCounts.push(out.turn_count);
      });
      const echoSide = side('bare SDK echo over stdio', async (index) => {
        const result = (await echo.client.callTool({ name: 'echo', arguments: { text: prompt(index) } })) as CallToolResult;
        if (result.isError) throw new Error('echo failed');
      });
      const barePingSide = side('bare SDK server: MCP ping over stdio', async () => {
        await echo.client.ping();
      });
      const pingSide = side('exai: MCP ping over stdio', async () => {
        await exai.client.ping();
      });
      const sides = [chatSide, echoSide, barePingSide, pingSide];
      let pingHttpSide: Side | undefined;
      if (http !== undefined) {
        const client = http;
        pingHttpSide = side('exai: MCP ping over HTTP straight to the owner', async () => {
          await client.ping();
        });
        sides.push(pingHttpSide);
      }
      const fetchSide = side('model call alone: fetch + read the SSE stream', async () => {
        const response = await fetch(`${fake.baseUrl}/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: 'Bearer none' },
          body: providerBody,
        });
        const text = await response.text();
        if (!response.ok || !text.endsWith('data: [DONE]\n\n')) throw new Error(`fake provider: unexpected answer ${response.status}`);
      });
      const sdkSide = side('model call alone: openai SDK stream', async () => {
        const stream = await sdk.chat.completions.create({ model, messages, stream: true, stream_options: { include_usage: true } });
        let content = '';
        for await (const chunk of stream) content += chunk.choices[0]?.delta.content ?? '';
        if (content !== fakeAnswer) throw new Error(`fake provider via openai SDK: unexpected content ${JSON.stringify(content)}`);
      });
      // Its two steps are also timed apart (warm-up included; dropped below).
      const loadSamples: number[] = [];
      const appendSamples: number[] = [];
      const storeSide = side('storage alone, in process: loadThread + appendTurns(2)', async (index) => {
        const id = storePool[index]!;
        const start = performance.now();
        const thread = await backend.store.loadThread(storeUser.id, id);
        const loaded = performance.now();
        await backend.store.appendTurns(storeUser.id, id, questionAndAnswer(prompt(index)));
        appendSamples.push(performance.now() - loaded);
        loadSamples.push(loaded - start);
        if (thread.turns.length !== threadTurns) throw new Error(`store pool thread has ${thread.turns.length} turns`);
      });
      sides.push(fetchSide, sdkSide, storeSide);

      const completionsBefore = fake.completions;
      await measure(sides, size.warmup, perBlock, size.blocks, progress);
      // The bench keeps about one CPU busy while it measures (one call in flight); more means other work ran too.
      const loadAfter = os.loadavg()[0]!;
      const chatCalls = size.warmup + iterations;
      const completions = fake.completions - completionsBefore - 2 * chatCalls; // fetch and SDK sides call the fake too
      if (completions !== chatCalls) throw new Error(`mcp bench: ${chatCalls} chat calls made ${completions} model calls`);
      const minTurns = Math.min(...turnCounts) - 2;
      const maxTurns = Math.max(...turnCounts) - 2;
      if (minTurns !== threadTurns || maxTurns !== threadTurns) throw new Error(`mcp bench: measured calls continued threads of ${minTurns}–${maxTurns} turns`);

      const stats = new Map(sides.map((s) => [s, latencyStats(s.samples)]));
      for (const s of sides) progress(`${s.label}: ${summary(stats.get(s)!)}`);
      const loadStats = latencyStats(loadSamples.slice(size.warmup));
      const appendStats = latencyStats(appendSamples.slice(size.warmup));
      progress(`  of which loadThread (cache hit): ${summary(loadStats)}`);
      progress(`  of which appendTurns (question + answer): ${summary(appendStats)}`);
      const chat = stats.get(chatSide)!;
      const bare = stats.get(echoSide)!;

      /** Every side at one percentile; with `derive`, the differences that attribute the time (p50 only: tails do not subtract). */
      const breakdown = (pick: (l: LatencyStats) => number, derive: boolean): Record<string, number | string> => {
        const of = (s: Side) => pick(stats.get(s)!);
        const details: Record<string, number | string> = {
          'thread turns before each measured call': `${minTurns}–${maxTurns}`,
          'threads in the database (exai, and the in-process store)': poolSize,
          'exai chat over stdio (ms)': ms(of(chatSide)),
          'bare SDK echo over stdio (ms)': ms(of(echoSide)),
          'bare SDK server: MCP ping over stdio (ms)': ms(of(barePingSide)),
          'exai: MCP ping over stdio (ms)': ms(of(pingSide)),
        };
        if (pingHttpSide !== undefined) details['exai: MCP ping over HTTP, straight to the owner (ms)'] = ms(of(pingHttpSide));
        if (derive) {
          details[`= exai's transport${embedded ? ' and relay' : ''} (exai ping - bare ping) (ms)`] = ms(of(pingSide) - of(barePingSide));
          if (pingHttpSide !== undefined) details['=   of which the stdio leg of the relay (ping stdio - ping HTTP) (ms)'] = ms(of(pingSide) - of(pingHttpSide));
          details['= the chat call beyond the transport (chat - exai ping) (ms)'] = ms(of(chatSide) - of(pingSide));
        }
        details['model call alone: fetch + read SSE (ms)'] = ms(of(fetchSide));
        details['model call alone: openai SDK stream (ms)'] = ms(of(sdkSide));
        details['storage alone, in process: loadThread + appendTurns(2) (ms)'] = ms(of(storeSide));
        details['  of which loadThread, cache hit (ms)'] = ms(pick(loadStats));
        details['  of which appendTurns, question + answer (ms)'] = ms(pick(appendStats));
        if (derive) {
          details['= rest of the chat call (chat - exai ping - SDK model call - storage) (ms)'] = ms(
            of(chatSide) - of(pingSide) - of(sdkSide) - of(storeSide),
          );
        }
        return details;
      };

      const transport = embedded ? 'stdio, relayed to the embedded owner over loopback HTTP' : 'stdio, served directly';
      const common =
        `${iterations} sequential calls per side after ${size.warmup} warm-up, in ${size.blocks} alternating blocks; ` +
        `exai: chat {prompt, continuation_id, model: '${model}'} on ${transport}, each call continuing its own ${threadTurns}-turn thread, ` +
        `against a zero-latency fake OpenAI-compatible provider (SSE); baseline: bare SDK McpServer with one echo tool on stdio. ` +
        `exai ${summary(chat)}; bare ${summary(bare)}. ` +
        `exai's database held ${poolSize} threads (${poolSize * threadTurns} turns before the measured calls): the figure depends on it. ` +
        `1-minute load average after the measured blocks: ${loadAfter.toFixed(2)} on ${os.cpus().length} CPUs (the bench alone keeps about 1 busy).`;
      return [
        makeResult({
          name: 'MCP chat overhead, stdio (p50)',
          backend: backend.name,
          value: chat.p50,
          unit: 'ms',
          baseline: bare.p50,
          better: 'lower',
          target: targetP50Ms,
          targetOn: 'difference',
          notes: `${common} Target: exai's p50 at most ${targetP50Ms} ms above the bare server's (LiteLLM proxy: 2 ms p50).`,
          details: breakdown((l) => l.p50, true),
        }),
        makeResult({
          name: 'MCP chat overhead, stdio (p99)',
          backend: backend.name,
          value: chat.p99,
          unit: 'ms',
          baseline: bare.p99,
          better: 'lower',
          target: targetP99Ms,
          targetOn: 'difference',
          notes: `${common} Target: exai's p99 at most ${targetP99Ms} ms above the bare server's (LiteLLM proxy: 13 ms p99).`,
          details: breakdown((l) => l.p99, false),
        }),
        makeResult({
          name: 'MCP chat, stdio, sequential (calls/s)',
          backend: backend.name,
          value: 1000 / chat.mean,
          unit: 'calls/s',
          baseline: 1000 / bare.mean,
          better: 'higher',
          target: null,
          notes: `${common} One call in flight: 1000 / mean latency (ms).`,
        }),
      ];
    } finally {
      await cleanup();
      unregister?.();
    }
  },
};
