/**
 * Every tool call and every provider call is recorded, through the real MCP
 * path against the fake provider: after a burst of calls, performance_stats
 * and usage_stats give exact counts, tokens and costs, and percentiles within
 * 1% of the exact ones computed from the recorded durations.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../src/app/server.js';
import { loadConfig } from '../../src/config.js';
import { rollUpPending } from '../../src/metrics/rollups.js';
import { silentLogger } from '../support/backends.js';
import { cleanEnv, preparedHome, runCli } from '../support/cli.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';
import { exactQuantile } from '../support/metric-events.js';

interface StatsRow {
  tool: string | null;
  model: string | null;
  provider: string | null;
  call_count: number;
  error_count: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
}

const kimiCalls = 40;
const glmCalls = 24;
const glmFailures = 3;


describe('recording tool and provider calls', () => {
  let fake: FakeOpenAI;
  let home: string;
  let server: RunningServer;
  let client: Client;
  const continuations = new Set<string>();

  async function call(name: string, args: Record<string, unknown>) {
    const result = await client.callTool({ name, arguments: args });
    return { isError: result.isError === true, structured: result.structuredContent as Record<string, unknown> };
  }

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    home = await preparedHome();
    server = await startServer(
      loadConfig(
        { EXAI_HOME: home, EXAI_PORT: '0', EXAI_AUTH: 'local', KIMI_API_KEY: 'k', KIMI_BASE_URL: fake.baseUrl, GLM_API_KEY: 'g', GLM_BASE_URL: fake.baseUrl },
        { cwd: home },
      ),
      silentLogger,
    );
    client = new Client({ name: 'metrics-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`)));
    // Kimi answers with growing delays; GLM fails some calls with a bad request (not retried).
    for (let i = 0; i < kimiCalls; i += 1) {
      fake.script({ kind: 'answer', content: `kimi ${i}`, delayMs: (i * 7) % 60, usage: { prompt_tokens: 100 + i, completion_tokens: 10 } });
      const answer = await call('chat', { prompt: `question ${i}`, model: 'kimi-k2-0905-preview' });
      expect(answer.isError).toBe(false);
      continuations.add(String(answer.structured.continuation_id));
    }
    for (let i = 0; i < glmCalls; i += 1) {
      const fails = i < glmFailures;
      fake.script(fails ? { kind: 'error', status: 400, body: { error: { message: 'bad' } } } : { kind: 'answer', content: `glm ${i}`, delayMs: (i * 5) % 30 });
      const answer = await call('thinkdeep', {
        step: `step ${i}`, step_number: 1, total_steps: 1, next_step_required: false, findings: 'f', model: 'glm-4.6',
      });
      expect(answer.isError).toBe(fails);
    }
    await server.services.recorder.flush();
  }, 120_000);

  afterAll(async () => {
    await client?.close();
    await server?.close();
    await fake?.close();
    if (home !== undefined) rmSync(home, { recursive: true, force: true });
  });

  async function rows(args: Record<string, unknown>): Promise<StatsRow[]> {
    const result = await call('performance_stats', args);
    expect(result.isError).toBe(false);
    return result.structured.rows as StatsRow[];
  }

  async function recordedDurations(kind: string, model: string): Promise<number[]> {
    const raw = await server.services.db.query<{ duration_ms: number }>(
      'SELECT duration_ms FROM exai.performance_metrics WHERE kind = $1 AND model = $2',
      [kind, model],
    );
    return raw.rows.map((row) => Number(row.duration_ms));
  }

  async function checkProviderRows(label: string): Promise<void> {
    const summary = await rows({ since: '1h' });
    const kimi = summary.find((row) => row.model === 'kimi-k2-0905-preview')!;
    const glm = summary.find((row) => row.model === 'glm-4.6')!;
    expect(kimi, label).toMatchObject({ tool: 'chat', provider: 'kimi', call_count: kimiCalls, error_count: 0, output_tokens: kimiCalls * 10 });
    const kimiInput = kimiCalls * 100 + (kimiCalls * (kimiCalls - 1)) / 2;
    expect(kimi.input_tokens).toBe(kimiInput);
    // kimi-k2-0905-preview: $0.60 per million in, $2.50 per million out.
    expect(kimi.cost_usd).toBeCloseTo((kimiInput * 0.6 + kimiCalls * 10 * 2.5) / 1_000_000, 6);
    expect(glm, label).toMatchObject({ tool: 'thinkdeep', provider: 'glm', call_count: glmCalls, error_count: glmFailures, cost_usd: 0 });
    for (const row of [kimi, glm]) {
      const durations = await recordedDurations('provider', row.model!);
      expect(durations).toHaveLength(row.call_count);
      for (const [q, value] of [[0.5, row.p50_ms], [0.95, row.p95_ms], [0.99, row.p99_ms]] as const) {
        const exact = exactQuantile(durations, q);
        // Reported values are rounded to 0.1 ms.
        expect(Math.abs(value - exact), `${label} ${row.model} p${q * 100}: ${value} vs ${exact}`).toBeLessThanOrEqual(exact * 0.01 + 0.05);
      }
    }
  }

  it('reports every provider call with exact counts, tokens and costs and percentiles within 1%', async () => {
    await checkProviderRows('from raw calls');
  });

  it('reports each tool call end to end, errors included, under the model that answered', async () => {
    await server.services.recorder.flush();
    const tools = await rows({ since: '1h', kind: 'tool', group_by: ['tool', 'model'] });
    expect(tools.find((row) => row.tool === 'chat')).toMatchObject({ model: 'kimi-k2-0905-preview', call_count: kimiCalls, error_count: 0 });
    expect(tools.find((row) => row.tool === 'thinkdeep')).toMatchObject({ model: 'glm-4.6', call_count: glmCalls, error_count: glmFailures });
    // The stats calls themselves are tool calls too.
    expect(tools.some((row) => row.tool === 'performance_stats')).toBe(true);
    // A tool call lasts at least as long as the provider call inside it.
    const providerMedian = exactQuantile(await recordedDurations('provider', 'kimi-k2-0905-preview'), 0.5);
    expect(exactQuantile(await recordedDurations('tool', 'kimi-k2-0905-preview'), 0.5)).toBeGreaterThanOrEqual(providerMedian);
  });

  it('records the conversation each call belonged to', async () => {
    const recorded = await server.services.db.query<{ conversation_id: string }>(
      "SELECT DISTINCT conversation_id::text FROM exai.performance_metrics WHERE kind = 'provider' AND model = 'kimi-k2-0905-preview'",
    );
    expect(new Set(recorded.rows.map((row) => row.conversation_id))).toEqual(continuations);
  });

  it('gives the same answer after the roll-ups ran', async () => {
    const result = await rollUpPending(server.services.db);
    expect(result.hours).toBeGreaterThan(0);
    await checkProviderRows('from roll-ups');
  });

  it('shows the same counts, costs and percentiles in `exai stats`, through the running server', async () => {
    const result = await runCli(['stats', '--since', '1h', '--json'], cleanEnv({ EXAI_HOME: home }));
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as { rows: StatsRow[] };
    const cli = report.rows.find((row) => row.model === 'kimi-k2-0905-preview');
    const tool = (await rows({ since: '1h' })).find((row) => row.model === 'kimi-k2-0905-preview');
    expect(cli).toEqual(tool);
    const table = await runCli(['stats', '--since', '1h', '--kind', 'tool'], cleanEnv({ EXAI_HOME: home }));
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/thinkdeep.*glm-4\.6/);
  });

  it('reports this month\'s usage per model', async () => {
    const usage = await call('usage_stats', {});
    const report = usage.structured as { rows: { model: string; call_count: number; cost_usd: number }[]; totals: { call_count: number } };
    expect(report.totals.call_count).toBe(kimiCalls + glmCalls);
    expect(report.rows.map((row) => row.model).sort()).toEqual(['glm-4.6', 'kimi-k2-0905-preview']);
  });

  it('refuses bad arguments with a message naming them', async () => {
    const result = await client.callTool({ name: 'performance_stats', arguments: { since: 'yesterday' } });
    expect(result.isError).toBe(true);
    expect(JSON.stringify(result.content)).toMatch(/since/);
  });
});
