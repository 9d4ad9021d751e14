/**
 * The embedded database belongs to one process. Whoever opens it holds this
 * lock: listening local sockets named after EXAI_HOME.
 *
 * - A socket file in EXAI_HOME (every platform but Windows): visible to every
 *   process that sees the folder, including other containers sharing the
 *   volume. After a crash the file stays; nobody answers on it, so the next
 *   owner reclaims it, under a short mkdir lock so two never reclaim at once.
 * - On Linux also an abstract socket, which the kernel frees the instant its
 *   process dies (even on kill -9), taken first so that processes on one host
 *   never race on the file at all.
 * - On Windows a named pipe, freed by the system with its process.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, realpathSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export type OwnerRole = 'server' | 'cli';

export interface LockHolder {
  pid: number;
  role: OwnerRole;
}

interface LockAddresses {
  /** Freed by the OS when the process dies; undefined where there is none. */
  ephemeral: string | undefined;
  /** A socket file that can outlive its process; undefined on Windows. */
  file: string | undefined;
}

/** Unix socket paths are limited to about 107 bytes. */
const maxSocketPath = 100;

function lockAddresses(home: string): LockAddresses {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const real = realpathSync(home);
  const digest = createHash('sha256').update(real).digest('hex').slice(0, 32);
  if (process.platform === 'win32') return { ephemeral: `\\\\.\\pipe\\exai-owner-${digest}`, file: undefined };
  const inHome = path.join(real, 'owner.sock');
  // A home too deep for a socket path keeps its socket in the temporary folder instead.
  const file = inHome.length <= maxSocketPath ? inHome : path.join(os.tmpdir(), `exai-owner-${digest}.sock`);
  return { ephemeral: process.platform === 'linux' ? `\0exai-owner-${digest}` : undefined, file };
}

function listen(address: string, role: OwnerRole): Promise<net.Server | undefined> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((socket) => {
      // An asker may hang up before the answer is written; that must not take the owner down.
      socket.on('error', () => socket.destroy());
      socket.end(JSON.stringify({ pid: process.pid, role }));
    });
    server.once('error', (error: NodeJS.ErrnoException) => (error.code === 'EADDRINUSE' ? resolve(undefined) : reject(error)));
    server.listen(address, () => {
      server.unref();
      resolve(server);
    });
  });
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

function ask(address: string, timeoutMs: number): Promise<LockHolder | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect(address);
    let data = '';
    const done = (holder: LockHolder | undefined) => {
      socket.destroy();
      resolve(holder);
    };
    socket.setTimeout(timeoutMs, () => done(undefined));
    socket.on('data', (chunk) => (data += chunk.toString('utf8')));
    socket.on('end', () => {
      try {
        done(JSON.parse(data) as LockHolder);
      } catch {
        done(undefined);
      }
    });
    socket.on('error', () => done(undefined));
  });
}

/** Asks the lock's holder who it is; undefined when nobody holds the lock. */
export async function queryHolder(home: string, timeoutMs = 1000): Promise<LockHolder | undefined> {
  const { ephemeral, file } = lockAddresses(home);
  for (const address of [ephemeral, file]) {
    if (address === undefined) continue;
    const holder = await ask(address, timeoutMs);
    if (holder !== undefined) return holder;
  }
  return undefined;
}

/**
 * Binds the socket file, reclaiming it when it is left over from a crash. The
 * reclaim (unlink + bind) runs under a mkdir lock: without it two processes
 * could each unlink the other's fresh socket and both believe they own it.
 */
async function listenOnFile(file: string, role: OwnerRole): Promise<net.Server | undefined> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const server = await listen(file, role);
    if (server !== undefined) return server;
    if ((await ask(file, 1000)) !== undefined) return undefined; // held by a live owner
    const reclaim = `${file}.reclaim`;
    try {
      mkdirSync(reclaim);
    } catch {
      // Someone else is reclaiming; a reclaim lock older than 10 s was left by a crash.
      try {
        if (Date.now() - statSync(reclaim).mtimeMs > 10_000) rmdirSync(reclaim);
      } catch {
        // gone already
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
      continue;
    }
    try {
      if ((await ask(file, 1000)) !== undefined) return undefined;
      try {
        unlinkSync(file);
      } catch {
        // already gone
      }
      const reclaimed = await listen(file, role);
      if (reclaimed !== undefined) return reclaimed;
    } finally {
      rmdirSync(reclaim);
    }
  }
  return undefined;
}

export class OwnerLock {
  private constructor(private readonly servers: net.Server[]) {}

  /** Takes the lock, or returns who holds it. */
  static async acquire(home: string, role: OwnerRole): Promise<OwnerLock | LockHolder> {
    const { ephemeral, file } = lockAddresses(home);
    const servers: net.Server[] = [];
    const holder = async () => (await queryHolder(home)) ?? { pid: 0, role: 'server' as const };
    if (ephemeral !== undefined) {
      const server = await listen(ephemeral, role);
      if (server === undefined) return holder();
      servers.push(server);
    }
    if (file !== undefined) {
      const server = await listenOnFile(file, role);
      if (server === undefined) {
        for (const taken of servers) await close(taken);
        return holder();
      }
      servers.push(server);
    }
    return new OwnerLock(servers);
  }

  async release(): Promise<void> {
    // Closing a listening socket file also removes it (libuv does); removing it here as well
    // could delete the socket of an owner that bound it in between.
    for (const server of this.servers) await close(server);
  }
}

export function isLock(value: OwnerLock | LockHolder): value is OwnerLock {
  return value instanceof OwnerLock;
}
