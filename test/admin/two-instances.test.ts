/**
 * Two exai instances sharing one PostgreSQL and one Redis, as a scaled-out
 * deployment runs them: a key's request rate, its calls in flight and its
 * revocation must hold across both. In-process servers, the official MCP client
 * with the key as bearer, and a fake provider that counts what reaches it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAdminOperation, type AdminOperationName } from '../../src/admin/operations.js';
import { startServer, type RunningServer } from '../../src/app/server.js';
import { loadConfig } from '../../src/config.js';
import { silentLogger, storageBackends, type TestDatabase } from '../support/backends.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';

// Under CI=true without TEST_DATABASE_URL/TEST_REDIS_URL this throws while the file loads: a failure, not a skip.
const postgres = storageBackends().find((backend) => backend.kind === 'postgres');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function textOf(result: CallToolResult): string {
  return result.content.map((part) => (part.type === 'text' ? part.text : '')).join('');
}

describe.runIf(postgres !== undefined)('two exai instances sharing PostgreSQL and Redis', () => {
  let database: TestDatabase;
  let fake: FakeOpenAI;
  const servers: RunningServer[] = [];
  const homes: string[] = [];
  const clients: Client[] = [];

  beforeAll(async () => {
    database = await postgres!.createDatabase();
    fake = await startFakeOpenAI();
    for (let index = 0; index < 2; index += 1) {
      const home = mkdtempSync(path.join(os.tmpdir(), 'exai-test-home-'));
      homes.push(home);
      const config = loadConfig(
        {
          EXAI_HOME: home,
          EXAI_PORT: '0',
          ...postgres!.env(database),
          GLM_API_KEY: 'glm-key',
          GLM_BASE_URL: fake.baseUrl,
          // Provider slots and failed-login counts live under fixed Redis keys that suites running in
          // parallel share; generous limits keep them from refusing anything here.
          EXAI_PROVIDER_CONCURRENCY: '1000',
          EXAI_AUTH_FAILURES_PER_MINUTE: '100000',
        },
        { cwd: home },
      );
      servers.push(await startServer(config, silentLogger));
    }
    await admin('users.create', { handle: 'alice' });
  });

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
    for (const server of servers) await server.close();
    await fake?.close();
    await database?.destroy();
    for (const home of homes) rmSync(home, { recursive: true, force: true });
  });

  /** An administration operation, run as the CLI would against instance 1's database. */
  function admin<N extends AdminOperationName>(name: N, input: unknown) {
    return runAdminOperation({ db: servers[0]!.services.db, config: servers[0]!.services.config, actor: { label: 'cli:test', source: 'cli' } }, name, input);
  }

  async function connect(server: RunningServer, key: string): Promise<Client> {
    const client = new Client({ name: 'exai-two-instances', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${key}` } } }));
    clients.push(client);
    return client;
  }

  const chat = (client: Client, prompt: string) =>
    client.callTool({ name: 'chat', arguments: { prompt, model: 'glm-4.6' } }) as Promise<CallToolResult>;

  it('lets exactly the per-minute request limit through across both instances, and no refused call reaches the provider', async () => {
    // Only the request rate applies, so every refusal is for it.
    const key = await admin('keys.create', { user: 'alice', requestsPerMinute: 5, tokensPerMinute: 0, concurrentCalls: 0 });
    const [one, two] = await Promise.all(servers.map((server) => connect(server, key.key)));
    fake.requests.length = 0;

    const results = await Promise.all(Array.from({ length: 20 }, (_, index) => chat(index % 2 === 0 ? one! : two!, `question ${index}`)));

    const answered = results.filter((result) => result.isError !== true);
    const refused = results.filter((result) => result.isError === true);
    // Counted per instance, 10 would have gone through.
    expect(answered).toHaveLength(5);
    expect(refused).toHaveLength(15);
    for (const result of answered) expect(result.structuredContent).toMatchObject({ model: 'glm-4.6', content: 'ok' });
    for (const result of refused) {
      expect(textOf(result)).toMatch(/^Rate limit reached: 5 requests per minute for this key\. Retry after \d+ s\.$/);
      const structured = result.structuredContent as { error: string; retry_after_s: number };
      expect(structured.error).toBe('rate_limited');
      expect(structured.retry_after_s).toBeGreaterThan(0);
    }
    expect(fake.requests).toHaveLength(5);
  });

  it('refuses a key on the other instance within a second of its revocation', async () => {
    const key = await admin('keys.create', { user: 'alice', requestsPerMinute: 0 });
    const [one, two] = await Promise.all(servers.map((server) => connect(server, key.key)));
    // Instance 2 has just checked the key and holds it in its cache: the slowest case for a revocation.
    expect((await two!.callTool({ name: 'listmodels', arguments: {} })).isError).toBeFalsy();

    await admin('keys.revoke', { key: key.prefix });
    const revokedAt = Date.now();
    // One poll at a time, stopping at the first refusal: every refused poll counts as a failed login
    // from 127.0.0.1 in Redis, which other suites' servers read too.
    let refusal: { afterMs: number; status: unknown; message: string } | undefined;
    while (refusal === undefined && Date.now() - revokedAt <= 1000) {
      const sentAfterMs = Date.now() - revokedAt;
      const outcome = await two!.callTool({ name: 'listmodels', arguments: {} }).then(
        () => undefined,
        // The SDK's StreamableHTTPError carries the HTTP status as its code.
        (error: unknown) => error as Error & { code?: unknown },
      );
      if (outcome !== undefined) refusal = { afterMs: sentAfterMs, status: outcome.code, message: outcome.message };
      else await sleep(50);
    }
    expect(refusal, 'instance 2 still accepted the key 1 s after its revocation').toBeDefined();
    expect(refusal!.afterMs).toBeLessThanOrEqual(1000);
    expect(refusal!.status).toBe(401);
    expect(refusal!.message).toContain('The API key has been revoked.');

    // Instance 1, where it was revoked, refuses it as well; nothing reached a model on the way.
    const onOne = await one!.callTool({ name: 'listmodels', arguments: {} }).then(
      () => 'answered',
      (error: unknown) => (error as Error).message,
    );
    expect(onOne).toContain('The API key has been revoked.');
  });

  it('lets one call in flight per key across both instances, and frees the slot when it ends', async () => {
    const key = await admin('keys.create', { user: 'alice', requestsPerMinute: 0, tokensPerMinute: 0, concurrentCalls: 1 });
    const [one, two] = await Promise.all(servers.map((server) => connect(server, key.key)));
    fake.requests.length = 0;
    // Slow enough that the other call is admitted while this one still holds the slot.
    fake.script({ kind: 'answer', content: 'a slow answer', delayMs: 2000 });

    const results = await Promise.all([chat(one!, 'slow question on instance 1'), chat(two!, 'slow question on instance 2')]);

    const answered = results.filter((result) => result.isError !== true);
    const refused = results.filter((result) => result.isError === true);
    expect(answered).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(answered[0]!.structuredContent).toMatchObject({ content: 'a slow answer' });
    expect(textOf(refused[0]!)).toBe('Too many calls in flight for this key (limit 1); wait for one to finish.');
    expect(refused[0]!.structuredContent).toMatchObject({ error: 'rate_limited', retry_after_s: 1 });
    expect(fake.requests).toHaveLength(1);

    // The refused instance gets the slot the other one released.
    const refusedClient = results[0]!.isError === true ? one! : two!;
    const retried = await chat(refusedClient, 'my turn now');
    expect(retried.isError).toBeFalsy();
    expect(fake.requests).toHaveLength(2);
  });
});
