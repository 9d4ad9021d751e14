/**
 * `exai serve`: takes ownership of the embedded database (when no DATABASE_URL
 * is set), applies pending migrations, and serves HTTP on EXAI_HOST:EXAI_PORT.
 */
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import { ExaiError } from '../errors.js';
import type { Logger } from '../logger.js';
import { isLock, OwnerLock, type LockHolder } from '../embedded/owner-lock.js';
import { newOwnerToken, readOwnerInfo, removeOwnerInfo, writeOwnerInfo } from '../embedded/owner-info.js';
import { settingsFingerprint } from '../embedded/settings-fingerprint.js';
import { buildHttpApp } from '../server/app.js';
import { version } from '../version.js';
import { createServices, type Services } from './services.js';

export interface RunningServer {
  url: string;
  services: Services;
  app: FastifyInstance;
  close(): Promise<void>;
}

const cliLockWaitMs = 30_000;

/** Waits out short-lived CLI commands; a running server is reported as busy. */
async function acquireEmbeddedLock(home: string): Promise<OwnerLock> {
  const deadline = Date.now() + cliLockWaitMs;
  for (;;) {
    const result = await OwnerLock.acquire(home, 'server');
    if (isLock(result)) return result;
    if (result.role === 'server' || Date.now() > deadline) throw busyError(home, result);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function busyError(home: string, holder: LockHolder): ExaiError {
  const info = readOwnerInfo(home);
  const where = info?.pid === holder.pid ? ` at ${info.url}` : '';
  return new ExaiError(
    'embedded_database_busy',
    `Another exai ${holder.role === 'cli' ? 'command' : 'server'} (pid ${holder.pid})${where} already owns the embedded database in ${home}. ` +
      'Use that server, stop it first, set EXAI_HOME to another folder, or set DATABASE_URL to PostgreSQL to run several instances.',
    { details: { pid: holder.pid } },
  );
}

/** The URL a local client uses to reach a server listening on host:port (0.0.0.0 and :: mean this machine). */
export function localUrl(host: string, port: number): string {
  const reachable = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `http://${reachable}:${port}`;
}

export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  const embedded = config.database.url === undefined;
  const lock = embedded ? await acquireEmbeddedLock(config.home) : undefined;
  let services: Services | undefined;
  let app: FastifyInstance | undefined;
  try {
    services = await createServices(config, logger, { migrate: true, jobs: true });
    // The local owner API: how CLI commands on this EXAI_HOME reach the server.
    const ownerToken = newOwnerToken();
    app = await buildHttpApp(services, { ownerToken });
    try {
      await app.listen({ host: config.http.host, port: config.http.port });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
        throw new ExaiError(
          'invalid_config',
          `Cannot listen on ${config.http.host}:${config.http.port} (${code}). Set EXAI_PORT (or EXAI_HOST) to a free address, for example EXAI_PORT=8080.`,
        );
      }
      throw error;
    }
    const address = app.server.address();
    const port = typeof address === 'object' && address !== null ? address.port : config.http.port;
    const url = localUrl(config.http.host, port);
    writeOwnerInfo(config.home, { pid: process.pid, url, token: ownerToken, version, startedAt: new Date().toISOString(), settings: settingsFingerprint(config) });
    logger.info({ url, auth: config.auth.mode, database: services.db.kind, cache: services.cache.backend, home: embedded ? config.home : undefined }, 'exai is serving');
    const running = services;
    const httpApp = app;
    let closing: Promise<void> | undefined;
    return {
      url,
      services: running,
      app: httpApp,
      close() {
        closing ??= (async () => {
          await httpApp.close();
          await running.close();
          removeOwnerInfo(config.home, process.pid);
          await lock?.release();
        })();
        return closing;
      },
    };
  } catch (error) {
    await app?.close().catch(() => undefined);
    await services?.close().catch(() => undefined);
    await lock?.release();
    throw error;
  }
}
