/**
 * How a CLI command reaches the data. With DATABASE_URL it connects directly
 * (PostgreSQL is built for many clients). With the embedded database it opens it
 * only when no other process owns it; otherwise it calls the owner's loopback
 * API, so two processes never open the same PGlite files.
 */
import type { Config } from '../config.js';
import type { Thread, ThreadPage, ThreadStatus } from '../conversations/types.js';
import { migrationStatus, type MigrationStatus } from '../db/migrate.js';
import { ExaiError } from '../errors.js';
import type { Logger } from '../logger.js';
import { isLock, OwnerLock } from '../embedded/owner-lock.js';
import { readOwnerInfo, type OwnerInfo } from '../embedded/owner-info.js';
import { createServices, type Services } from '../app/services.js';
import { findUserByHandle } from '../users/users.js';

export interface ListOptions {
  limit?: number;
  before?: string;
  status?: ThreadStatus;
}

export interface DataAccess {
  /** Where the data was reached: `direct` or the owner's URL. */
  readonly via: string;
  migrationStatus(): Promise<MigrationStatus>;
  listThreads(userHandle: string | undefined, options: ListOptions): Promise<ThreadPage>;
  loadThread(userHandle: string | undefined, id: string): Promise<Thread>;
}

class DirectAccess implements DataAccess {
  readonly via = 'direct';
  constructor(private readonly services: Services) {}

  migrationStatus(): Promise<MigrationStatus> {
    return migrationStatus(this.services.db);
  }

  private async userId(handle: string | undefined): Promise<string> {
    if (handle === undefined || handle === this.services.localUser.handle) return this.services.localUser.id;
    const user = await findUserByHandle(this.services.db, handle);
    if (user === undefined) throw new ExaiError('not_found', `No user with handle ${JSON.stringify(handle)}.`);
    return user.id;
  }

  async listThreads(handle: string | undefined, options: ListOptions): Promise<ThreadPage> {
    return this.services.conversations.listThreads(await this.userId(handle), options);
  }

  async loadThread(handle: string | undefined, id: string): Promise<Thread> {
    return this.services.conversations.loadThread(await this.userId(handle), id);
  }
}

class RemoteAccess implements DataAccess {
  constructor(private readonly owner: OwnerInfo) {}

  get via(): string {
    return this.owner.url;
  }

  private async call<T>(path: string, query: Record<string, string | undefined> = {}): Promise<T> {
    const url = new URL(`/internal/v1${path}`, this.owner.url);
    for (const [key, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(key, value);
    let response: Response;
    try {
      response = await fetch(url, { headers: { authorization: `Bearer ${this.owner.token}` } });
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
 * Runs `fn` with access to the data, opening and closing what it needs.
 * `applyMigrations` is for `exai migrate`, which may bring a schema up to date.
 */
export async function withDataAccess<T>(
  config: Config,
  logger: Logger,
  fn: (access: DataAccess) => Promise<T>,
  options: { applyMigrations?: boolean } = {},
): Promise<T> {
  if (config.database.url !== undefined) return withDirect(config, logger, fn, options);
  const deadline = Date.now() + ownerWaitMs;
  for (;;) {
    const result = await OwnerLock.acquire(config.home, 'cli');
    if (isLock(result)) {
      try {
        return await withDirect(config, logger, fn, options);
      } finally {
        await result.release();
      }
    }
    if (result.role === 'server') {
      const owner = readOwnerInfo(config.home);
      // owner.json appears once the server listens; until then it is still starting.
      if (owner !== undefined && owner.pid === result.pid) return fn(new RemoteAccess(owner));
    }
    if (Date.now() > deadline) {
      throw new ExaiError(
        'embedded_database_busy',
        `The embedded database in ${config.home} is in use by another exai process (pid ${result.pid}) that did not become reachable within ${ownerWaitMs / 1000} s. Try again when it has started or finished.`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function withDirect<T>(
  config: Config,
  logger: Logger,
  fn: (access: DataAccess) => Promise<T>,
  options: { applyMigrations?: boolean },
): Promise<T> {
  const services = await createServices(config, logger, { migrate: options.applyMigrations === true });
  try {
    return await fn(new DirectAccess(services));
  } finally {
    await services.close();
  }
}
