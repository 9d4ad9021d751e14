/** MCP over Streamable HTTP, driven by the official SDK client against a real server and a fake provider. */
import { rmSync } from 'node:fs';
import { request } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../src/app/server.js';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../support/backends.js';
import { preparedHome } from '../support/cli.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';

describe('MCP over Streamable HTTP', () => {
  let home: string;
  let fake: FakeOpenAI;
  let server: RunningServer;
  const clients: Client[] = [];

  beforeAll(async () => {
    home = await preparedHome();
    fake = await startFakeOpenAI();
    const config = loadConfig({ EXAI_HOME: home, EXAI_PORT: '0', EXAI_AUTH: 'local', GLM_API_KEY: 'glm-key', GLM_BASE_URL: fake.baseUrl }, { cwd: home });
    server = await startServer(config, silentLogger);
  });

  afterAll(async () => {
    for (const client of clients) await client.close().catch(() => undefined);
    await server?.close();
    await fake?.close();
    rmSync(home, { recursive: true, force: true });
  });

  async function connect(): Promise<Client> {
    const client = new Client({ name: 'exai-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`)));
    clients.push(client);
    return client;
  }

  it('lists the tools and answers version and listmodels', async () => {
    const client = await connect();
    const tools = (await client.listTools()).tools.map((tool) => tool.name);
    expect(tools).toEqual(expect.arrayContaining(['chat', 'listmodels', 'version']));
    const version = await client.callTool({ name: 'version', arguments: {} });
    expect(version.structuredContent).toMatchObject({ database: 'pglite', cache: 'memory', providers: [{ provider: 'glm', state: 'ok' }] });
    const models = await client.callTool({ name: 'listmodels', arguments: {} });
    expect((models.structuredContent as { models: { name: string }[] }).models.map((model) => model.name)).toContain('glm-4.6');
  });

  it('chats, continues the conversation across sessions, and reports progress on slow answers', async () => {
    fake.script({ kind: 'answer', content: 'Prefer composition.', usage: { prompt_tokens: 12, completion_tokens: 3 } });
    const first = await (await connect()).callTool({ name: 'chat', arguments: { prompt: 'Inheritance or composition?', model: 'glm-4.6' } });
    expect(first.isError).toBeFalsy();
    const structured = first.structuredContent as { continuation_id: string; model: string; turn_count: number };
    expect(structured).toMatchObject({ model: 'glm-4.6', turn_count: 2 });
    expect((first.content as { text: string }[])[0]!.text).toContain(`continuation_id: ${structured.continuation_id}`);

    // Another session (another editor window) continues the same thread; the answer streams slowly.
    fake.script({ kind: 'answer', content: 'Because coupling stays low and tests stay simple.', chunkDelayMs: 200 });
    const progress: string[] = [];
    const second = await (await connect()).callTool(
      { name: 'chat', arguments: { prompt: 'Why?', continuation_id: structured.continuation_id } },
      undefined,
      { onprogress: (note) => progress.push(note.message ?? '') },
    );
    expect(second.structuredContent).toMatchObject({ continuation_id: structured.continuation_id, model: 'glm-4.6', turn_count: 4 });
    expect(progress.length).toBeGreaterThan(0);
    const sent = fake.requests.at(-1)!.body.messages as { role: string; content: string }[];
    expect(sent.map((message) => message.content)).toEqual(expect.arrayContaining(['Inheritance or composition?', 'Prefer composition.', 'Why?']));
  });

  it('answers a bad continuation id as a tool error, without calling a model', async () => {
    const before = fake.requests.length;
    const result = await (await connect()).callTool({ name: 'chat', arguments: { prompt: 'hi', continuation_id: 'not-a-thread' } });
    expect(result.isError).toBe(true);
    expect((result.content as { text: string }[])[0]!.text).toContain('continuation_id "not-a-thread" is not valid');
    expect(fake.requests.length).toBe(before);
  });

  it('aborts the provider call when the client cancels, and stores nothing', async () => {
    const client = await connect();
    const listed = async () => ((await client.callTool({ name: 'conversation_list', arguments: {} })).structuredContent as { threads: unknown[] }).threads.length;
    const before = await listed();
    fake.script({ kind: 'hang' });
    const requestsBefore = fake.requests.length;
    const controller = new AbortController();
    const pending = client.callTool({ name: 'chat', arguments: { prompt: 'Take your time.', model: 'glm-4.6' } }, undefined, { signal: controller.signal });
    while (fake.requests.length === requestsBefore) await new Promise((resolve) => setTimeout(resolve, 20));
    controller.abort();
    await expect(pending).rejects.toThrow();
    const sent = fake.requests[requestsBefore]!;
    for (let waited = 0; !sent.aborted && waited < 5000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(sent.aborted).toBe(true);
    expect(await listed()).toBe(before);
  });

  it('speaks protocol 2025-11-25 to current clients and the older versions to older ones', async () => {
    const client = new Client({ name: 'exai-test', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`));
    await client.connect(transport);
    clients.push(client);
    expect(transport.protocolVersion).toBe('2025-11-25');
    for (const version of ['2025-06-18', '2025-03-26', '2024-11-05']) {
      const response = await fetch(`${server.url}/mcp`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: version, capabilities: {}, clientInfo: { name: 'old', version: '0.1' } } }),
      });
      expect(response.status).toBe(200);
      const text = await response.text();
      const payload = text.startsWith('{') ? text : text.split('\n').find((line) => line.startsWith('data: '))!.slice(6);
      expect((JSON.parse(payload) as { result: { protocolVersion: string } }).result.protocolVersion).toBe(version);
    }
  });

  it('refuses requests whose Host is not this server (DNS rebinding)', async () => {
    // fetch will not send a foreign Host header, so speak HTTP directly.
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const url = new URL(`${server.url}/mcp`);
      const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } });
      const sent = request(
        { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { host: 'attacker.example', 'content-type': 'application/json', accept: 'application/json, text/event-stream' } },
        (response) => {
          response.resume();
          resolve(response.statusCode);
        },
      );
      sent.on('error', reject);
      sent.end(body);
    });
    expect(status).toBe(403);
  });
});
