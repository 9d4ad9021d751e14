/**
 * The embedded database belongs to one process. Whoever opens it holds this
 * lock: a listening local socket whose name derives from EXAI_HOME. On Linux
 * it is an abstract socket, which the kernel frees the instant its process dies
 * (even on kill -9), so a lock is never stale; elsewhere a socket file in
 * EXAI_HOME, reclaimed when nothing answers on it.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, realpathSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export type OwnerRole = 'server' | 'cli';

export interface LockHolder {
  pid: number;
  role: OwnerRole;
}

function lockAddress(home: string): string {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const real = realpathSync(home);
  const digest = createHash('sha256').update(real).digest('hex').slice(0, 32);
  if (process.platform === 'linux') return `\0exai-owner-${digest}`;
  if (process.platform === 'win32') return `\\\\.\\pipe\\exai-owner-${digest}`;
  return path.join(real, 'owner.sock');
}

const usesSocketFile = process.platform !== 'linux' && process.platform !== 'win32';

/** Asks the lock's holder who it is; undefined when nobody holds the lock. */
export function queryHolder(home: string, timeoutMs = 1000): Promise<LockHolder | undefined> {
  const address = lockAddress(home);
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

export class OwnerLock {
  private constructor(
    private readonly server: net.Server,
    private readonly address: string,
  ) {}

  /** Takes the lock, or returns who holds it. */
  static async acquire(home: string, role: OwnerRole): Promise<OwnerLock | LockHolder> {
    const address = lockAddress(home);
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const server = net.createServer((socket) => socket.end(JSON.stringify({ pid: process.pid, role })));
      const outcome = await new Promise<'ok' | 'busy'>((resolve, reject) => {
        server.once('error', (error: NodeJS.ErrnoException) => (error.code === 'EADDRINUSE' ? resolve('busy') : reject(error)));
        server.listen(address, () => resolve('ok'));
      });
      if (outcome === 'ok') {
        server.unref();
        return new OwnerLock(server, address);
      }
      const holder = await queryHolder(home);
      if (holder !== undefined) return holder;
      if (!usesSocketFile) break;
      // A socket file nobody answers on is left over from a crash: reclaim it once.
      try {
        unlinkSync(address);
      } catch {
        // someone else reclaimed it first
      }
    }
    const holder = await queryHolder(home);
    return holder ?? { pid: 0, role: 'server' };
  }

  async release(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (usesSocketFile) {
      try {
        unlinkSync(this.address);
      } catch {
        // already gone
      }
    }
  }
}

export function isLock(value: OwnerLock | LockHolder): value is OwnerLock {
  return value instanceof OwnerLock;
}
