/** A private pgbouncer in transaction mode in front of the test PostgreSQL: the pooler Supabase users meet as Supavisor. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { waitFor } from './backends.js';
import { freePort } from './private-redis.js';

function findPgbouncer(): string | undefined {
  try {
    return execFileSync('which', ['pgbouncer'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || undefined;
  } catch {
    return undefined;
  }
}

export const pgbouncerBinary = findPgbouncer();

export interface Pgbouncer {
  /** `url` with host and port replaced by the pooler's. */
  through(url: string): string;
  stop(): Promise<void>;
}

export async function startPgbouncer(targetUrl: string, poolSize: number): Promise<Pgbouncer> {
  if (pgbouncerBinary === undefined) throw new Error('pgbouncer is not installed (apt-get install pgbouncer)');
  const target = new URL(targetUrl);
  const user = decodeURIComponent(target.username || 'postgres');
  const folder = mkdtempSync(path.join(os.tmpdir(), 'exai-test-pgbouncer-'));
  const port = await freePort();
  writeFileSync(path.join(folder, 'users.txt'), `"${user}" ""\n`);
  writeFileSync(
    path.join(folder, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${target.hostname} port=${target.port || 5432}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${path.join(folder, 'users.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${poolSize}`,
      'max_client_conn = 200',
      `logfile = ${path.join(folder, 'pgbouncer.log')}`,
      `pidfile = ${path.join(folder, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
  );
  const args = [path.join(folder, 'pgbouncer.ini')];
  // pgbouncer refuses to run as root: as root, hand it to the postgres user.
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chmodSync(folder, 0o755);
    chownSync(folder, uid, gid);
    args.unshift('-u', 'postgres');
  }
  const child: ChildProcess = spawn(pgbouncerBinary, args, { stdio: 'ignore' });
  const through = (url: string) => {
    const via = new URL(url);
    via.hostname = '127.0.0.1';
    via.port = String(port);
    return via.toString();
  };
  await waitFor(
    async () => {
      if (child.exitCode !== null) return true;
      const client = new pg.Client({ connectionString: through(targetUrl), connectionTimeoutMillis: 500 });
      try {
        await client.connect();
        await client.query('SELECT 1');
        return true;
      } catch {
        return false;
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    10_000,
    `pgbouncer on port ${port}`,
  );
  if (child.exitCode !== null) throw new Error(`pgbouncer exited with code ${child.exitCode}`);
  return {
    through,
    async stop() {
      if (child.exitCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(folder, { recursive: true, force: true });
    },
  };
}
