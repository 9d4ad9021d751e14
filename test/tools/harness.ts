/**
 * Runs exai as MCP clients meet it — in-process over Streamable HTTP, or as
 * `exai stdio` child processes — with a restart that keeps EXAI_HOME, so a
 * test can continue a conversation on a server that has started afresh.
 */
import { rmSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startServer, type RunningServer } from '../../src/app/server.js';
import { loadConfig } from '../../src/config.js';
import { readOwnerInfo } from '../../src/embedded/owner-info.js';
import { isProcessAlive } from '../../src/embedded/process-alive.js';
import { silentLogger } from '../support/backends.js';
import { cleanEnv, exaiBin, preparedHome } from '../support/cli.js';

export interface McpHarness {
  name: string;
  home: string;
  connect(): Promise<Client>;
  /** Stops every client and the server, then lets the next connect start afresh on the same home. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export type HarnessFactory = (env: Record<string, string>) => Promise<McpHarness>;

async function closeAll(clients: Client[]): Promise<void> {
  await Promise.all(clients.splice(0).map((client) => client.close().catch(() => undefined)));
}

export const httpHarness: HarnessFactory = async (env) => {
  const home = await preparedHome();
  const clients: Client[] = [];
  const start = () => startServer(loadConfig({ EXAI_HOME: home, EXAI_PORT: '0', EXAI_AUTH: 'local', ...env }, { cwd: home }), silentLogger);
  let server: RunningServer = await start();
  return {
    name: 'Streamable HTTP',
    home,
    async connect() {
      const client = new Client({ name: 'exai-e2e', version: '1.0.0' });
      await client.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`)));
      clients.push(client);
      return client;
    },
    async restart() {
      await closeAll(clients);
      await server.close();
      server = await start();
    },
    async close() {
      await closeAll(clients);
      await server.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
};

async function stopOwner(home: string): Promise<void> {
  const owner = readOwnerInfo(home);
  if (owner === undefined) return;
  try {
    process.kill(owner.pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let waited = 0; waited < 20_000; waited += 100) {
    if (!isProcessAlive(owner.pid)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the owner process ${owner.pid} did not stop`);
}

export const stdioHarness: HarnessFactory = async (env) => {
  const home = await preparedHome();
  const clients: Client[] = [];
  return {
    name: 'stdio',
    home,
    async connect() {
      const client = new Client({ name: 'exai-e2e', version: '1.0.0' });
      await client.connect(
        new StdioClientTransport({ command: process.execPath, args: [exaiBin, 'stdio'], env: cleanEnv({ EXAI_HOME: home, ...env }), stderr: 'ignore' }),
      );
      clients.push(client);
      return client;
    },
    async restart() {
      await closeAll(clients);
      await stopOwner(home);
    },
    async close() {
      await closeAll(clients);
      await stopOwner(home);
      rmSync(home, { recursive: true, force: true });
    },
  };
};
