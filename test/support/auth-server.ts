/**
 * An in-process exai with authentication required, for the suites under
 * test/auth: users and keys are made through the real admin operations, MCP
 * clients present their bearer credential like any remote client, and raw
 * HTTP goes out from a chosen local address (see http-from.ts for why).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { runAdminOperation, type AdminInput, type AdminOperationName, type AdminResult } from '../../src/admin/operations.js';
import { startServer, type RunningServer } from '../../src/app/server.js';
import type { Scope } from '../../src/auth/scopes.js';
import { loadConfig, type Config } from '../../src/config.js';
import { asService } from '../../src/db/session.js';
import type { Logger } from '../../src/logger.js';
import { silentLogger, type StorageBackend, type TestDatabase } from './backends.js';
import { preparedHome } from './cli.js';
import { fetchFrom, randomLoopbackAddress } from './http-from.js';

/** A hung call fails the test here instead of at the suite's timeout. */
const callTimeoutMs = 30_000;

export interface McpSession {
  client: Client;
  /** The MCP session id the server gave this client. */
  sessionId: string;
  call(name: string, args?: Record<string, unknown>): Promise<CallToolResult>;
}

export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
}

export interface RawRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  /** Local address to send from; a fresh random loopback address when absent. */
  from?: string;
}

export interface AuthExai {
  server: RunningServer;
  config: Config;
  url: string;
  admin<N extends AdminOperationName>(name: N, input: AdminInput<N>): Promise<AdminResult<N>>;
  /** A new user and one key for it (every non-admin scope unless `scopes` says otherwise). */
  userWithKey(handle: string, scopes?: Scope[]): Promise<{ userId: string; key: string; prefix: string }>;
  /** An SDK client over Streamable HTTP presenting `Authorization: Bearer <credential>`. */
  connect(credential: string, from?: string): Promise<McpSession>;
  raw(path: string, request?: RawRequest): Promise<RawResponse>;
  /** Rows of one exai table as JSON objects, read as the service role. */
  rows(table: string): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

export const mcpHeaders = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

export function textOf(result: CallToolResult): string {
  return result.content.map((part) => (part.type === 'text' ? part.text : '')).join('\n');
}

/**
 * Starts exai on `backend` with `env` on top of: authentication required, the
 * provider slot limit out of reach (on Redis it is shared with every other
 * suite running at the same time), nothing read from the developer's .env.
 */
export async function startAuthExai(backend: StorageBackend, env: Record<string, string>, logger: Logger = silentLogger): Promise<AuthExai> {
  // Only the embedded database lives in EXAI_HOME; with PostgreSQL an empty folder will do.
  const home = backend.kind === 'pglite' ? await preparedHome() : mkdtempSync(path.join(os.tmpdir(), 'exai-test-home-'));
  const database: TestDatabase | undefined = backend.kind === 'postgres' ? await backend.createDatabase() : undefined;
  const config = loadConfig(
    { EXAI_HOME: home, EXAI_PORT: '0', EXAI_AUTH: 'required', EXAI_PROVIDER_CONCURRENCY: '1000', ...(database === undefined ? {} : backend.env(database)), ...env },
    { cwd: home },
  );
  const server = await startServer(config, logger);
  const clients: Client[] = [];
  const actor = { label: 'test', source: 'test' };
  const admin = <N extends AdminOperationName>(name: N, input: AdminInput<N>) => runAdminOperation({ db: server.services.db, config, actor }, name, input);
  return {
    server,
    config,
    url: server.url,
    admin,
    async userWithKey(handle, scopes) {
      const user = await admin('users.create', { handle });
      const created = await admin('keys.create', { user: handle, ...(scopes === undefined ? {} : { scopes }) });
      return { userId: user.id, key: created.key, prefix: created.prefix };
    },
    async connect(credential, from = randomLoopbackAddress()) {
      const client = new Client({ name: 'exai-auth-test', version: '1.0.0' });
      const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${credential}` } },
        fetch: fetchFrom(from),
      });
      await client.connect(transport);
      clients.push(client);
      return {
        client,
        sessionId: transport.sessionId!,
        call: async (name, args = {}) => (await client.callTool({ name, arguments: args }, undefined, { timeout: callTimeoutMs })) as CallToolResult,
      };
    },
    async raw(path, request = {}) {
      const response = await fetchFrom(request.from ?? randomLoopbackAddress())(`${server.url}${path}`, {
        method: request.method ?? 'GET',
        headers: request.headers ?? {},
        ...(request.body === undefined ? {} : { body: request.body }),
      });
      return { status: response.status, headers: response.headers, text: await response.text() };
    },
    async rows(table) {
      const result = await asService(server.services.db, (tx) => tx.query(`SELECT to_jsonb(t) AS row FROM exai.${table} t`));
      return result.rows.map((row) => row.row as Record<string, unknown>);
    },
    async close() {
      await Promise.all(clients.splice(0).map((client) => client.close().catch(() => undefined)));
      await server.close();
      await database?.destroy();
      rmSync(home, { recursive: true, force: true });
    },
  };
}
