/**
 * Several `exai stdio` processes on one EXAI_HOME, as editors start them: they
 * share the embedded database through one owner they start themselves, and a
 * thread continued from all of them at once stores every turn once, in order.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Thread } from '../../src/conversations/types.js';
import { readOwnerInfo } from '../../src/embedded/owner-info.js';
import { asService } from '../../src/db/session.js';
import { createPostgresDatabase, type TestDatabase } from '../support/backends.js';
import { externalBackends } from '../support/env.js';
import { cleanEnv, exaiBin, ownerApi, preparedHome } from '../support/cli.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';

describe('exai stdio', () => {
  let home: string;
  let fake: FakeOpenAI;
  const clients: Client[] = [];

  beforeAll(async () => {
    home = await preparedHome();
    fake = await startFakeOpenAI();
  });

  afterAll(async () => {
    for (const client of clients) await client.close().catch(() => undefined);
    const owner = readOwnerInfo(home);
    if (owner !== undefined) {
      try {
        process.kill(owner.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    await fake?.close();
    await new Promise((resolve) => setTimeout(resolve, 500));
    rmSync(home, { recursive: true, force: true });
  });

  async function connect(): Promise<Client> {
    const client = new Client({ name: 'editor', version: '1.0.0' });
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [exaiBin, 'stdio'],
      env: cleanEnv({ EXAI_HOME: home, GLM_API_KEY: 'glm-key', GLM_BASE_URL: fake.baseUrl }),
      stderr: 'ignore',
    });
    await client.connect(transport);
    clients.push(client);
    return client;
  }

  it('lets three processes continue one thread at once: every turn stored once, in order', async () => {
    // Three editor windows start at the same moment; none finds a server, one owner wins.
    const [a, b, c] = await Promise.all([connect(), connect(), connect()]);
    const owner = readOwnerInfo(home);
    expect(owner).toBeDefined();

    fake.fallback = { kind: 'answer', content: 'noted', delayMs: 50 };
    const first = await a!.callTool({ name: 'chat', arguments: { prompt: 'start', model: 'glm-4.6' } });
    const id = (first.structuredContent as { continuation_id: string }).continuation_id;
    const results = await Promise.all(
      [a!, b!, c!].map((client, index) => client.callTool({ name: 'chat', arguments: { prompt: `from window ${index}`, continuation_id: id } })),
    );
    expect(results.every((result) => !result.isError)).toBe(true);

    const thread = await ownerApi<Thread>(home, 'GET', `/threads/${id}`);
    const turns = thread.body.turns;
    expect(turns.map((turn) => turn.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const questions = turns.filter((turn) => turn.role === 'user').map((turn) => turn.content);
    expect(questions.sort()).toEqual(['from window 0', 'from window 1', 'from window 2', 'start']);
    // Each question is followed by its own answer.
    for (let index = 0; index < turns.length; index += 2) {
      expect(turns[index]!.role).toBe('user');
      expect(turns[index + 1]!.role).toBe('assistant');
    }
    expect(readOwnerInfo(home)?.pid).toBe(owner!.pid); // still the one owner
  });
});

describe.runIf(externalBackends() !== undefined)('exai stdio on PostgreSQL', () => {
  let database: TestDatabase | undefined;
  let fake: FakeOpenAI | undefined;
  let client: Client | undefined;
  let home: string | undefined;

  afterAll(async () => {
    await client?.close().catch(() => undefined);
    await fake?.close();
    await database?.destroy();
    if (home !== undefined) rmSync(home, { recursive: true, force: true });
  });

  it('serves MCP directly, with no owner process, and stores the conversation in PostgreSQL', async () => {
    database = await createPostgresDatabase();
    fake = await startFakeOpenAI();
    home = mkdtempSync(path.join(os.tmpdir(), 'exai-test-home-'));
    client = new Client({ name: 'editor', version: '1.0.0' });
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [exaiBin, 'stdio'],
        env: cleanEnv({ EXAI_HOME: home, DATABASE_URL: database.location, GLM_API_KEY: 'glm-key', GLM_BASE_URL: fake.baseUrl }),
        stderr: 'ignore',
      }),
    );
    const answer = await client.callTool({ name: 'chat', arguments: { prompt: 'hello', model: 'glm-4.5' } });
    const id = (answer.structuredContent as { continuation_id: string }).continuation_id;
    const rows = await asService(database.db, (tx) =>
      tx.query<{ n: number }>('SELECT count(*)::int AS n FROM exai.messages WHERE conversation_id = $1', [id]),
    );
    expect(rows.rows[0]!.n).toBe(2);
    expect(readOwnerInfo(home)).toBeUndefined(); // nobody was started to own anything
  });
});

