/**
 * `exai stdio`: MCP over stdin/stdout for clients that launch the server.
 *
 * With PostgreSQL (DATABASE_URL) every process can serve directly. With the
 * embedded database only its owner may open it, and clients often start
 * several `exai stdio` at once (one per editor window): each then relays MCP to
 * the owner's /mcp over loopback, starting `exai serve` first when none runs.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import path from 'node:path';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { createServices } from '../app/services.js';
import type { Config } from '../config.js';
import { queryHolder } from '../embedded/owner-lock.js';
import { servingOwner, type OwnerInfo } from '../embedded/owner-info.js';
import { settingsFingerprint } from '../embedded/settings-fingerprint.js';
import { ExaiError } from '../errors.js';
import type { Logger } from '../logger.js';
import { createMcpServer } from './server.js';
import { localPrincipal } from '../auth/principal.js';

const ownerStartTimeoutMs = 60_000;

/** Resolves once stdin ends: the client has gone. */
function stdinClosed(): Promise<void> {
  return new Promise((resolve) => {
    process.stdin.once('end', resolve);
    process.stdin.once('close', resolve);
  });
}

async function serveDirectly(config: Config, logger: Logger): Promise<void> {
  const services = await createServices(config, logger, { migrate: true, jobs: true });
  const server = createMcpServer(services, localPrincipal(services.localUser));
  await server.connect(new StdioServerTransport());
  await stdinClosed();
  await server.close();
  await services.close();
}

/** The running owner of the embedded database, starting one when none runs. */
async function ensureOwner(config: Config, logger: Logger): Promise<OwnerInfo> {
  const deadline = Date.now() + ownerStartTimeoutMs;
  let startedAt = 0;
  for (;;) {
    const holder = await queryHolder(config.home);
    const owner = servingOwner(config.home, holder);
    if (owner !== undefined) return owner;
    // Nobody holds the database: start a server (again, if the last one never came up).
    if (holder === undefined && Date.now() - startedAt > 10_000) {
      startedAt = Date.now();
      // Several stdio processes may each start one; the owner lock lets exactly one of them win.
      const log = openSync(path.join(config.home, 'serve.log'), 'a');
      // On loopback, where the relay's owner token is accepted. Any free port: clients find it
      // in owner.json, and EXAI_PORT stays free for a server the user starts.
      const env = { ...process.env, EXAI_HOST: '127.0.0.1', EXAI_PORT: '0' };
      const child = spawn(process.execPath, [process.argv[1]!, 'serve'], { detached: true, stdio: ['ignore', 'ignore', log], env });
      child.unref();
      closeSync(log); // the server has its own copy
      logger.info({ pid: child.pid }, 'started exai serve to own the embedded database');
    }
    if (Date.now() > deadline) {
      throw new ExaiError(
        'server_unreachable',
        `No exai server became reachable for ${config.home} within ${ownerStartTimeoutMs / 1000} s; see ${path.join(config.home, 'serve.log')}.`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function relayToOwner(config: Config, logger: Logger): Promise<void> {
  const owner = await ensureOwner(config, logger);
  if (owner.settings !== undefined && owner.settings !== settingsFingerprint(config)) {
    logger.warn(
      { pid: owner.pid, home: config.home },
      `The exai server that owns ${config.home} (pid ${owner.pid}) was started with other settings (providers, tools, file roots or limits) than this client's; it keeps its own. Run \`exai stop\` with the same EXAI_HOME to restart it with the next client's settings.`,
    );
  }
  // The owner token (readable only by this OS user) proves to the owner that this is its operator.
  const upstream = new StreamableHTTPClientTransport(new URL('/mcp', owner.url), {
    requestInit: { headers: { authorization: `Bearer ${owner.token}`, 'x-exai-user': config.localUser } },
  });
  const downstream = new StdioServerTransport();
  upstream.onmessage = (message: JSONRPCMessage) => {
    const result = (message as { result?: { protocolVersion?: unknown } }).result;
    if (typeof result?.protocolVersion === 'string') upstream.setProtocolVersion(result.protocolVersion);
    void downstream.send(message);
  };
  upstream.onerror = (error) => logger.warn({ err: error.message }, 'relay to the exai server failed');
  downstream.onmessage = (message: JSONRPCMessage) => {
    upstream.send(message).catch((error: unknown) => {
      // A request must get an answer, or the client waits for ever.
      if ('id' in message && 'method' in message) {
        void downstream.send({
          jsonrpc: '2.0',
          id: message.id,
          error: { code: -32603, message: `The exai server at ${owner.url} did not answer: ${(error as Error).message}` },
        });
      }
    });
  };
  await upstream.start();
  await downstream.start();
  logger.info({ owner: owner.url }, 'relaying MCP over stdio to the exai server');
  await stdinClosed();
  await upstream.terminateSession().catch(() => undefined);
  await upstream.close();
}

export async function runStdio(config: Config, logger: Logger): Promise<void> {
  if (config.database.url !== undefined) await serveDirectly(config, logger);
  else await relayToOwner(config, logger);
}
