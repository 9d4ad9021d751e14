/** Private redis-server processes a test may kill and restart (the shared server is never touched). */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { waitFor } from './backends.js';

function findRedisServer(): string | undefined {
  try {
    const found = execFileSync('which', ['redis-server'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return found === '' ? undefined : found;
  } catch {
    return undefined;
  }
}

export const redisServer = findRedisServer();

/** A loopback port nothing listens on (at the moment of asking). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** One private redis-server: its own port, its own data folder, started and killed at will. */
export class PrivateRedis {
  private process: ChildProcess | undefined;
  readonly folder = mkdtempSync(path.join(os.tmpdir(), 'exai-test-redis-'));

  constructor(
    readonly port: number,
    private readonly password?: string,
  ) {}

  get url(): string {
    return this.password === undefined ? `redis://127.0.0.1:${this.port}` : `redis://:${this.password}@127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (redisServer === undefined) throw new Error('redis-server is not installed');
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.folder, '--dbfilename', 'dump.rdb'];
    if (this.password !== undefined) args.push('--requirepass', this.password);
    const child = spawn(redisServer, args, { stdio: 'ignore' });
    this.process = child;
    await waitFor(async () => child.exitCode !== null || (await this.answers()), 5000, `redis-server on port ${this.port}`);
    if (child.exitCode !== null) throw new Error(`redis-server on port ${this.port} exited with code ${child.exitCode}`);
  }

  /** Sends one command over a connection of its own (the cache under test is not involved). */
  async command(name: string, ...args: string[]): Promise<unknown> {
    const client = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
    client.on('error', () => undefined); // a refused connection rejects connect() below
    try {
      await client.connect();
      return await client.call(name, ...args);
    } finally {
      client.disconnect();
    }
  }

  private async answers(): Promise<boolean> {
    try {
      return (await this.command('PING')) === 'PONG';
    } catch {
      return false;
    }
  }

  async kill(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }

  async destroy(): Promise<void> {
    await this.kill();
    rmSync(this.folder, { recursive: true, force: true });
  }
}
