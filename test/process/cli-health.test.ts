/** The CLI and /health as users and orchestrators meet them, in real processes. */
import { rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ThreadSummary } from '../../src/conversations/types.js';
import { createPostgresDatabase, waitFor, type TestDatabase } from '../support/backends.js';
import { ownerApi, preparedHome, runCli, type ServeProcess, startServe, tempHome } from '../support/cli.js';
import { externalBackends } from '../support/env.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { suiteCleanups } from '../support/cleanups.js';

const cleanups = suiteCleanups();

function track(server: ServeProcess): ServeProcess {
  cleanups.push(async () => {
    if (server.child.exitCode === null) await server.kill9();
  });
  return server;
}

describe('exai CLI', () => {
  it('stops on bad configuration naming the variable, the problem and an example', async () => {
    const result = await runCli(['serve'], { EXAI_HOME: tempHome(cleanups), EXAI_PORT: 'abc', EXAI_CACHE_TTL: 'forever' });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('EXAI_PORT: must be a whole number');
    expect(result.stderr).toContain('Example: EXAI_PORT=8079');
    expect(result.stderr).toContain('EXAI_CACHE_TTL');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('rejects malformed DATABASE_URL and REDIS_URL without echoing secrets', async () => {
    const result = await runCli(['serve'], {
      EXAI_HOME: tempHome(cleanups),
      DATABASE_URL: 'mysql://root:hunter2@db/exai',
      REDIS_URL: 'http://cache:6379',
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('DATABASE_URL: must be a URL starting with postgres:// or postgresql://');
    expect(result.stderr).toContain('REDIS_URL: must be a URL starting with redis:// or rediss://');
    expect(result.stderr).not.toContain('hunter2');
  });

  it('exits non-zero with a clear message when the database is unreachable at start', async () => {
    const result = await runCli(['serve'], {
      EXAI_HOME: tempHome(cleanups),
      DATABASE_URL: 'postgresql://exai:hunter2@127.0.0.1:1/exai',
      DATABASE_CONNECT_TIMEOUT: '1s',
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/The database is unavailable \(ECONNREFUSED\)/);
    expect(result.stderr).not.toContain('hunter2');
    expect(result.stdout).toBe('');
  });

  it('reports an unreachable server from exai health with exit code 1', async () => {
    const text = await runCli(['health', '--url', 'http://127.0.0.1:1', '--timeout', '2000'], {});
    expect(text.code).toBe(1);
    expect(text.stdout).toContain('unreachable');
    const json = await runCli(['health', '--url', 'http://127.0.0.1:1', '--json'], {});
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ status: 'unreachable' });
  });

  it('prints its version as text and as JSON', async () => {
    const json = await runCli(['version', '--json'], {});
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ name: 'exai', version: expect.stringMatching(/^\d+\.\d+\.\d+/) });
  });
});

describe('health with Redis unreachable', () => {
  it('serves with status degraded, keeps working, and exai health passes unless --strict', async () => {
    const exaiHome = await preparedHome();
    cleanups.push(async () => rmSync(exaiHome, { recursive: true, force: true }));
    const server = track(await startServe({ EXAI_HOME: exaiHome, REDIS_URL: 'redis://127.0.0.1:1', REDIS_COMMAND_TIMEOUT: '200ms' }));
    const response = await fetch(`${server.url}/health`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { status: string; components: { cache: { status: string; backend: string; detail?: string } } };
    expect(body.status).toBe('degraded');
    expect(body.components.cache).toMatchObject({ status: 'degraded', backend: 'redis' });

    const thread = await ownerApi<ThreadSummary>(exaiHome, 'POST', '/threads', { title: 'no cache needed' });
    expect(thread.status).toBe(201);
    for (let index = 0; index < 3; index += 1) {
      const turn = await ownerApi(exaiHome, 'POST', `/threads/${thread.body.id}/turns`, { role: 'user', content: `turn ${index}` });
      expect(turn.status).toBe(201);
    }
    const loaded = await ownerApi<{ turnCount: number }>(exaiHome, 'GET', `/threads/${thread.body.id}`);
    expect(loaded.body.turnCount).toBe(3);

    expect((await runCli(['health', '--url', server.url], {})).code).toBe(0);
    expect((await runCli(['health', '--url', server.url, '--strict'], {})).code).toBe(1);
    const warnings = server
      .stderr()
      .split('\n')
      .filter((line) => line.includes('Redis unavailable'));
    // One warning per outage from each user of Redis: the cache and the rate limits.
    expect(warnings.filter((line) => line.includes('serving from Postgres'))).toHaveLength(1);
    expect(warnings.filter((line) => line.includes('rate limits apply per instance'))).toHaveLength(1);
    await server.stop();
  });
});

describe.runIf(externalBackends() !== undefined)('health with PostgreSQL going away mid-run', () => {
  it('answers 503 down while the database is unreachable, fails calls clearly, and recovers', async () => {
    const database: TestDatabase = await createPostgresDatabase();
    cleanups.push(() => database.destroy());
    const target = new URL(database.location);
    const proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
    cleanups.push(() => proxy.close());
    const through = new URL(database.location);
    through.port = String(proxy.port);
    const exaiHome = tempHome(cleanups);
    const server = track(
      await startServe({ EXAI_HOME: exaiHome, DATABASE_URL: through.toString(), DATABASE_CONNECT_TIMEOUT: '1s', REDIS_URL: externalBackends()!.redisUrl }),
    );
    const thread = await ownerApi<ThreadSummary>(exaiHome, 'POST', '/threads', { title: 'outage' });

    await proxy.cut();
    const down = await fetch(`${server.url}/health`);
    expect(down.status).toBe(503);
    expect(((await down.json()) as { status: string }).status).toBe('down');
    expect((await fetch(`${server.url}/health/ready`)).status).toBe(503);
    expect((await fetch(`${server.url}/health/live`)).status).toBe(200);
    expect((await runCli(['health', '--url', server.url], {})).code).toBe(1);
    const failed = await ownerApi<{ error: { code: string; message: string } }>(exaiHome, 'POST', `/threads/${thread.body.id}/turns`, {
      role: 'user',
      content: 'lost in the outage',
    });
    expect(failed.status).toBe(503);
    expect(failed.body.error.code).toBe('database_unavailable');

    await proxy.restore();
    await waitFor(async () => (await fetch(`${server.url}/health`)).status === 200, 15_000, 'health to recover');
    const turn = await ownerApi<{ turn: { seq: number } }>(exaiHome, 'POST', `/threads/${thread.body.id}/turns`, { role: 'user', content: 'after' });
    expect(turn.status).toBe(201);
    expect(turn.body.turn.seq).toBe(1);
    expect((await runCli(['health', '--url', server.url], {})).code).toBe(0);
    await server.stop();
  });
});
