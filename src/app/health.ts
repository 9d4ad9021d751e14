/** Health of the running server and its parts, as /health and `exai health` report it. */
import type { Cache } from '../cache/types.js';
import type { Database } from '../db/types.js';
import { version } from '../version.js';

export type HealthStatus = 'ok' | 'degraded' | 'down';

export interface ComponentHealth {
  status: HealthStatus;
  backend: string;
  latency_ms?: number;
  detail?: string;
}

export interface HealthReport {
  status: HealthStatus;
  version: string;
  uptime_s: number;
  components: { database: ComponentHealth; cache: ComponentHealth };
}

const databaseCheckTimeoutMs = 2000;

function failureReason(error: unknown): string {
  const cause = error instanceof Error && error.cause !== undefined ? error.cause : error;
  const code = (cause as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[A-Z0-9_]{2,20}$/.test(code)) return code;
  return error instanceof Error && error.message.startsWith('no answer within') ? 'timeout' : 'error';
}

async function checkDatabase(db: Database): Promise<ComponentHealth> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      db.ping(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${databaseCheckTimeoutMs} ms`)), databaseCheckTimeoutMs);
      }),
    ]);
    return { status: 'ok', backend: db.kind, latency_ms: Math.round((performance.now() - started) * 100) / 100 };
  } catch (error) {
    // /health answers anyone: a short reason, never the error text (which names the server).
    return { status: 'down', backend: db.kind, detail: `unreachable (${failureReason(error)})` };
  } finally {
    clearTimeout(timer);
  }
}

export async function checkHealth(db: Database, cache: Cache, startedAt: number): Promise<HealthReport> {
  const database = await checkDatabase(db);
  const cacheHealth = cache.health();
  const cacheComponent: ComponentHealth = { status: cacheHealth.status, backend: cacheHealth.backend };
  if (cacheHealth.detail !== undefined) cacheComponent.detail = cacheHealth.detail;
  const status: HealthStatus = database.status === 'down' ? 'down' : cacheComponent.status === 'ok' ? 'ok' : 'degraded';
  return {
    status,
    version,
    uptime_s: Math.round((Date.now() - startedAt) / 1000),
    components: { database, cache: cacheComponent },
  };
}
