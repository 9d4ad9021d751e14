/**
 * The server `exai stdio` starts for the embedded database: it takes any free
 * port (EXAI_PORT stays free for the user's own server), a client with other
 * settings is told the owner keeps its own, and `exai stop` ends it.
 */
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readOwnerInfo } from '../../src/embedded/owner-info.js';
import { cleanEnv, exaiBin, preparedHome, runCli } from '../support/cli.js';

describe('the owner exai stdio starts', () => {
  let home: string;
  let busy: Server;
  let busyPort: number;
  const clients: Client[] = [];

  beforeAll(async () => {
    home = await preparedHome();
    busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    busyPort = (busy.address() as AddressInfo).port;
  });

  afterAll(async () => {
    for (const client of clients) await client.close().catch(() => undefined);
    await runCli(['stop'], { EXAI_HOME: home }).catch(() => undefined);
    await new Promise<void>((resolve) => busy.close(() => resolve()));
    rmSync(home, { recursive: true, force: true });
  });

  async function connect(env: Record<string, string>, stderr: string[] = []): Promise<Client> {
    const client = new Client({ name: 'editor', version: '1.0.0' });
    const transport = new StdioClientTransport({ command: process.execPath, args: [exaiBin, 'stdio'], env: cleanEnv({ EXAI_HOME: home, ...env }), stderr: 'pipe' });
    transport.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk.toString('utf8')));
    await client.connect(transport);
    clients.push(client);
    return client;
  }

  it('takes a free port, warns a client whose settings differ, and stops on exai stop', async () => {
    // The user's own server holds EXAI_PORT: the owner must not need it.
    const first = await connect({ EXAI_PORT: String(busyPort), GLM_API_KEY: 'k', EXAI_TOOLS: 'chat,version' });
    expect((await first.listTools()).tools.map((tool) => tool.name)).toEqual(['chat', 'version']);
    const owner = readOwnerInfo(home)!;
    expect(new URL(owner.url).port).not.toBe(String(busyPort));

    const stderr: string[] = [];
    const second = await connect({ GLM_API_KEY: 'k' }, stderr);
    expect((await second.listTools()).tools.map((tool) => tool.name)).toEqual(['chat', 'version']);
    for (let waited = 0; !stderr.join('').includes('was started with other settings') && waited < 5000; waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(stderr.join('')).toContain(`(pid ${owner.pid}) was started with other settings`);
    expect(stderr.join('')).not.toContain('"k"');

    const stopped = await runCli(['stop', '--json'], { EXAI_HOME: home });
    expect(stopped.code).toBe(0);
    expect(JSON.parse(stopped.stdout)).toEqual({ home, stopped: owner.pid });
    expect(() => process.kill(owner.pid, 0)).toThrow();
    const again = await runCli(['stop'], { EXAI_HOME: home });
    expect(again.stdout).toContain(`No exai server owns ${home}.`);
  });
});
