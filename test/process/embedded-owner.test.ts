/**
 * The embedded database belongs to one process. Real processes: a server, a
 * second server, CLI commands beside it, servers racing, an owner killed -9.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Thread, ThreadPage, ThreadSummary } from '../../src/conversations/types.js';
import { loadMigrations } from '../../src/db/migrate.js';
import { waitFor } from '../support/backends.js';
import { cleanEnv, exaiBin, ownerApi, preparedHome, runCli, startServe, type ServeProcess } from '../support/cli.js';

describe('embedded database ownership', () => {
  const homes: string[] = [];
  const servers: ServeProcess[] = [];

  afterAll(async () => {
    for (const server of servers) if (server.child.exitCode === null) await server.kill9();
    for (const home of homes) rmSync(home, { recursive: true, force: true });
  });

  async function home(): Promise<string> {
    const folder = await preparedHome();
    homes.push(folder);
    return folder;
  }

  it('serves on embedded defaults, logs JSON on stderr only, and answers /health ok', async () => {
    const exaiHome = await home();
    const server = await startServe({ EXAI_HOME: exaiHome });
    servers.push(server);
    const response = await fetch(`${server.url}/health`);
    expect(response.status).toBe(200);
    const health = (await response.json()) as { status: string; components: Record<string, { status: string; backend: string }> };
    expect(health.status).toBe('ok');
    expect(health.components.database).toMatchObject({ status: 'ok', backend: 'pglite' });
    expect(health.components.cache).toMatchObject({ status: 'ok', backend: 'memory' });
    expect((await fetch(`${server.url}/health/live`)).status).toBe(200);
    expect((await fetch(`${server.url}/health/ready`)).status).toBe(200);
    expect(server.stdout()).toBe('');
    for (const line of server.stderr().split('\n').filter((text) => text.startsWith('{'))) {
      expect(() => JSON.parse(line)).not.toThrow();
    }
    expect(await server.stop()).toBe(0);
  });

  it('refuses a second server on the same EXAI_HOME with a clear message', async () => {
    const exaiHome = await home();
    const first = await startServe({ EXAI_HOME: exaiHome });
    servers.push(first);
    const second = await runCli(['serve'], { EXAI_HOME: exaiHome });
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`already owns the embedded database in ${exaiHome}`);
    expect(second.stderr).toContain(`pid ${first.child.pid}`);
    expect(second.stderr).not.toMatch(/\n\s+at /);
    expect((await fetch(`${first.url}/health`)).status).toBe(200);
    await first.stop();
  });

  it('lets CLI commands reach the data through the running owner', async () => {
    const exaiHome = await home();
    const server = await startServe({ EXAI_HOME: exaiHome });
    servers.push(server);
    for (const authorization of [undefined, 'Bearer wrong-token']) {
      const refused = await fetch(`${server.url}/internal/v1/threads`, authorization === undefined ? {} : { headers: { authorization } });
      expect(refused.status).toBe(401);
    }
    const created = await ownerApi<ThreadSummary>(exaiHome, 'POST', '/threads', { title: 'made through the server' });
    expect(created.status).toBe(201);
    const turn = await ownerApi<{ turn: { seq: number } }>(exaiHome, 'POST', `/threads/${created.body.id}/turns`, { role: 'user', content: 'hello' });
    expect(turn.body.turn.seq).toBe(1);

    const list = await runCli(['threads', 'list', '--json'], { EXAI_HOME: exaiHome });
    expect(list.code).toBe(0);
    const page = JSON.parse(list.stdout) as ThreadPage;
    expect(page.threads.map((thread) => thread.id)).toContain(created.body.id);

    const show = await runCli(['threads', 'show', created.body.id, '--json'], { EXAI_HOME: exaiHome });
    expect(show.code).toBe(0);
    expect((JSON.parse(show.stdout) as Thread).turns.map((entry) => entry.content)).toEqual(['hello']);

    const migrate = await runCli(['migrate', '--json'], { EXAI_HOME: exaiHome });
    expect(migrate.code).toBe(0);
    expect(JSON.parse(migrate.stdout)).toMatchObject({ via: server.url, pending: [] });

    const missing = await runCli(['threads', 'show', '6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab'], { EXAI_HOME: exaiHome });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('No conversation with continuation_id 6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab');
    await server.stop();
  });

  it('survives askers that hang up on the owner lock before its answer', async () => {
    const exaiHome = await home();
    const server = await startServe({ EXAI_HOME: exaiHome });
    servers.push(server);
    for (let index = 0; index < 200; index += 1) {
      const socket = net.connect(path.join(exaiHome, 'owner.sock'));
      socket.on('error', () => undefined);
      socket.on('connect', () => socket.destroy());
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(server.child.exitCode).toBeNull();
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    await server.stop();
  });

  it('lets exactly one of two servers started together own the database', async () => {
    const exaiHome = await home();
    const outcomes = await Promise.allSettled([startServe({ EXAI_HOME: exaiHome }), startServe({ EXAI_HOME: exaiHome })]);
    const started = outcomes.filter((outcome): outcome is PromiseFulfilledResult<ServeProcess> => outcome.status === 'fulfilled');
    const refused = outcomes.filter((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
    started.forEach((outcome) => servers.push(outcome.value));
    expect(started).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect((refused[0]!.reason as { stderr: string }).stderr).toContain('already owns the embedded database');
    await started[0]!.value.stop();
  });

  it('frees the database the instant its owner is killed with SIGKILL', async () => {
    const exaiHome = await home();
    const first = await startServe({ EXAI_HOME: exaiHome });
    servers.push(first);
    const created = await ownerApi<ThreadSummary>(exaiHome, 'POST', '/threads', { title: 'outlives its server' });
    await first.kill9();
    const second = await startServe({ EXAI_HOME: exaiHome });
    servers.push(second);
    const shown = await runCli(['threads', 'show', created.body.id, '--json'], { EXAI_HOME: exaiHome });
    expect(shown.code).toBe(0);
    expect((JSON.parse(shown.stdout) as Thread).title).toBe('outlives its server');
    await second.stop();
  });

  it('opens the database directly when no server runs, and migrates a fresh home', async () => {
    const exaiHome = await home();
    const list = await runCli(['threads', 'list', '--json'], { EXAI_HOME: exaiHome });
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual({ threads: [] });

    const fresh = `${exaiHome}-fresh`;
    homes.push(fresh);
    const before = await runCli(['migrate', '--status', '--json'], { EXAI_HOME: fresh });
    expect(JSON.parse(before.stdout)).toMatchObject({ current: 0, via: 'direct' });
    const migrated = await runCli(['migrate', '--json'], { EXAI_HOME: fresh });
    expect(migrated.code).toBe(0);
    expect(JSON.parse(migrated.stdout)).toMatchObject({ current: loadMigrations().length, pending: [], via: 'direct' });
  });
});

describe('embedded database ownership across network namespaces', () => {
  // Two containers sharing one volume do not share abstract sockets: the socket file in EXAI_HOME must hold.
  const canUnshare = (() => {
    try {
      execFileSync('unshare', ['-n', 'true'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  it.runIf(canUnshare)('refuses a second server started in another network namespace', async () => {
    const exaiHome = await preparedHome();
    try {
      const first = await startServe({ EXAI_HOME: exaiHome });
      try {
        const second = spawnSync('unshare', ['-n', process.execPath, exaiBin, 'serve'], {
          env: cleanEnv({ EXAI_HOME: exaiHome }),
          encoding: 'utf8',
          timeout: 60_000,
        });
        expect(second.status).toBe(1);
        expect(second.stderr).toContain('already owns the embedded database');
      } finally {
        await first.stop();
      }
    } finally {
      rmSync(exaiHome, { recursive: true, force: true });
    }
  });

  it('reclaims a socket file left behind by a crashed owner', async () => {
    const exaiHome = await preparedHome();
    try {
      // A socket file nobody listens on, as an owner killed with SIGKILL leaves it.
      const socketFile = path.join(exaiHome, 'owner.sock');
      const squatter = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(socketFile)})`]);
      await waitFor(() => existsSync(socketFile), 5000, 'the socket file');
      squatter.kill('SIGKILL');
      await once(squatter, 'exit');
      expect(existsSync(socketFile)).toBe(true);
      const server = await startServe({ EXAI_HOME: exaiHome });
      expect((await fetch(`${server.url}/health`)).status).toBe(200);
      await server.stop();
    } finally {
      rmSync(exaiHome, { recursive: true, force: true });
    }
  });
});
