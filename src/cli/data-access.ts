/**
 * How a CLI command reaches the data. With DATABASE_URL it connects directly
 * (PostgreSQL is built for many clients). With the embedded database it opens it
 * only when no other process owns it; otherwise it calls the owner's loopback
 * API, so two processes never open the same PGlite files.
 */
import type { Config } from '../config.js';
import type { Thread, ThreadPage, ThreadStatus } from '../conversations/types.js';
import { migrate, migrationStatus, type MigrationStatus } from '../db/migrate.js';
import { openDatabase } from '../db/open.js';
import type { Database } from '../db/types.js';
import { ExaiError } from '../errors.js';
import type { Logger } from '../logger.js';
import { isLock, OwnerLock } from '../embedded/owner-lock.js';
import { servingOwner, type OwnerInfo } from '../embedded/owner-info.js';
import { createServices, type Services } from '../app/services.js';
import { runAdminOperation, type AdminOperationName, type AdminResult } from '../admin/operations.js';
import type { AuditActor } from '../audit/audit-log.js';

export interface ListOptions {
  limit?: number;
  before?: string;
  status?: ThreadStatus;
}

export interface DataAccess {
  listThreads(userHandle: string | undefined, options: ListOptions): Promise<ThreadPage>;
  loadThread(userHandle: string | undefined, id: string): Promise<Thread>;
}

class DirectAccess implements DataAccess {
  constructor(private readonly services: Services) {}

  async listThreads(handle: string | undefined, options: ListOptions): Promise<ThreadPage> {
    return this.services.conversations.listThreads(await this.services.userIdFor(handle), options);
  }

  async loadThread(handle: string | undefined, id: string): Promise<Thread> {
    return this.services.conversations.loadThread(await this.services.userIdFor(handle), id);
  }
}

class RemoteAccess implements DataAccess {
  constructor(private readonly owner: OwnerInfo) {}

  async call<T>(path: string, query: Record<string, string | undefined> = {}, payload?: unknown): Promise<T> {
    const url = new URL(`/internal/v1${path}`, this.owner.url);
    for (const [key, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(key, value);
    let response: Response;
    try {
      const headers: Record<string, string> = { authorization: `Bearer ${this.owner.token}` };
      if (payload !== undefined) headers['content-type'] = 'application/json';
      response = await fetch(url, payload === undefined ? { headers } : { method: 'POST', headers, body: JSON.stringify(payload) });
    } catch (error) {
      throw new ExaiError(
        'server_unreachable',
        `The exai server (pid ${this.owner.pid}) owns the embedded database but does not answer at ${this.owner.url}: ${(error as Error).message}.`,
      );
    }
    const body = (await response.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
    if (!response.ok) {
      const code = (body.error?.code ?? 'internal') as ExaiError['code'];
      throw new ExaiError(code, body.error?.message ?? `The server answered ${response.status}.`);
    }
    return body as T;
  }

  migrationStatus(): Promise<MigrationStatus> {
    return this.call('/migrations');
  }

  listThreads(user: string | undefined, options: ListOptions): Promise<ThreadPage> {
    return this.call('/threads', {
      user,
      limit: options.limit === undefined ? undefined : String(options.limit),
      before: options.before,
      status: options.status,
    });
  }

  loadThread(user: string | undefined, id: string): Promise<Thread> {
    return this.call(`/threads/${encodeURIComponent(id)}`, { user });
  }
}

const ownerWaitMs = 15_000;

/**
 * Reaches the data one of two ways: `direct` when this process may open the
 * database (PostgreSQL, or a free embedded database, locked for the duration),
 * `remote` through the owner's API when a server owns the embedded database.
 */
async function reach<T>(
  config: Config,
  direct: () => Promise<T>,
  remote: (owner: OwnerInfo) => Promise<T>,
): Promise<T> {
  if (config.database.url !== undefined) return direct();
  const deadline = Date.now() + ownerWaitMs;
  for (;;) {
    const result = await OwnerLock.acquire(config.home, 'cli');
    if (isLock(result)) {
      try {
        return await direct();
      } finally {
        await result.release();
      }
    }
    const owner = servingOwner(config.home, result);
    if (owner !== undefined) return remote(owner);
    if (Date.now() > deadline) {
      throw new ExaiError(
        'embedded_database_busy',
        `The embedded database in ${config.home} is in use by another exai process (pid ${result.pid}) that did not become reachable within ${ownerWaitMs / 1000} s. Try again when it has started or finished.`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Runs `fn` with access to the data, opening and closing what it needs. */
export function withDataAccess<T>(config: Config, logger: Logger, fn: (access: DataAccess) => Promise<T>): Promise<T> {
  return reach(
    config,
    async () => {
      const services = await createServices(config, logger, { migrate: false });
      try {
        return await fn(new DirectAccess(services));
      } finally {
        await services.close();
      }
    },
    (owner) => fn(new RemoteAccess(owner)),
  );
}

async function requireCurrentSchema(db: Database): Promise<void> {
  const status = await migrationStatus(db);
  if (status.pending.length > 0) {
    throw new ExaiError('database_error', `The database schema is at version ${status.current}, but this exai needs version ${status.latest}. Run \`exai migrate\` first.`);
  }
}

/** Opens the database for one command, checks it answers, and closes it afterwards. */
async function withDatabase<T>(config: Config, logger: Logger, fn: (db: Database) => Promise<T>): Promise<T> {
  const db = await openDatabase(config, logger);
  try {
    await db.ping();
    return await fn(db);
  } finally {
    await db.close();
  }
}

/**
 * `exai migrate`: applies pending migrations (unless only the status is asked
 * for) and reports the schema's state. A running owner applied them at start.
 */
export function migrateThroughOwner(
  config: Config,
  logger: Logger,
  apply: boolean,
): Promise<MigrationStatus & { via: string }> {
  return reach(
    config,
    () =>
      withDatabase(config, logger, async (db) => {
        if (apply) await migrate(db, logger);
        return { via: 'direct', ...(await migrationStatus(db)) };
      }),
    async (owner) => ({ via: owner.url, ...(await new RemoteAccess(owner).migrationStatus()) }),
  );
}

/**
 * Runs an administration operation (users, keys, audit): directly against the
 * database, or through the server that owns the embedded database.
 */
export function runAdmin<N extends AdminOperationName>(
  config: Config,
  logger: Logger,
  name: N,
  input: unknown,
  actor: AuditActor,
): Promise<AdminResult<N>> {
  return reach(
    config,
    () =>
      withDatabase(config, logger, async (db) => {
        // Keys are often made before an embedded server first starts: bring its schema up to date, as
        // serve would. A shared PostgreSQL is migrated by its servers or `exai migrate`, never as a side effect.
        if (db.kind === 'pglite') await migrate(db, logger);
        else await requireCurrentSchema(db);
        return (await runAdminOperation({ db, config, actor }, name, input)) as AdminResult<N>;
      }),
    (owner) => new RemoteAccess(owner).call<AdminResult<N>>(`/admin/${name}`, {}, { input, actor: actor.label }),
  );
}
