/**
 * A turn acknowledged to the caller survives kill -9 of the server the next
 * instant, on embedded PGlite and on PostgreSQL (+ Redis): real processes,
 * real SIGKILL while appends are in flight.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Thread, ThreadSummary } from '../../src/conversations/types.js';
import { storageBackends, waitFor, type TestDatabase } from '../support/backends.js';
import { ownerApi, preparedHome, startServe, type ServeProcess } from '../support/cli.js';
import { suiteCleanups } from '../support/cleanups.js';

describe.each(storageBackends())('durability under kill -9 on $name', (backend) => {
  const cleanups = suiteCleanups();

  it('keeps every acknowledged turn, once each, in a gap-free sequence', async () => {
    let env: Record<string, string>;
    let exaiHome: string;
    if (backend.kind === 'pglite') {
      exaiHome = await preparedHome();
      env = { EXAI_HOME: exaiHome };
    } else {
      const database: TestDatabase = await backend.createDatabase();
      cleanups.push(() => database.destroy());
      exaiHome = mkdtempSync(path.join(os.tmpdir(), 'exai-test-home-'));
      env = { EXAI_HOME: exaiHome, ...backend.env(database) };
    }
    cleanups.push(async () => rmSync(exaiHome, { recursive: true, force: true }));

    const first: ServeProcess = await startServe(env);
    cleanups.push(async () => {
      if (first.child.exitCode === null) await first.kill9();
    });
    const thread = await ownerApi<ThreadSummary>(exaiHome, 'POST', '/threads', { title: 'kill -9' });
    expect(thread.status).toBe(201);

    const acknowledged: string[] = [];
    let stopped = false;
    const writers = Array.from({ length: 8 }, async (_, writer) => {
      for (let index = 0; !stopped; index += 1) {
        const content = `writer ${writer} turn ${index}`;
        try {
          const reply = await ownerApi<{ turn: { seq: number } }>(exaiHome, 'POST', `/threads/${thread.body.id}/turns`, {
            role: 'user',
            content,
            idempotencyKey: content,
          });
          if (reply.status === 201) acknowledged.push(content);
        } catch {
          return; // the server is gone
        }
      }
    });
    await waitFor(() => acknowledged.length >= 150, 30_000, '150 acknowledged turns');
    expect(await first.kill9()).toBeNull();
    stopped = true;
    await Promise.all(writers);
    const acknowledgedBeforeKill = [...acknowledged];

    const second = await startServe(env);
    cleanups.push(async () => {
      if (second.child.exitCode === null) await second.kill9();
    });
    const loaded = await ownerApi<Thread>(exaiHome, 'GET', `/threads/${thread.body.id}`);
    expect(loaded.status).toBe(200);
    const contents = loaded.body.turns.map((turn) => turn.content);
    expect(loaded.body.turns.map((turn) => turn.seq)).toEqual(contents.map((_, index) => index + 1));
    expect(new Set(contents).size).toBe(contents.length);
    const missing = acknowledgedBeforeKill.filter((content) => !contents.includes(content));
    expect(missing).toEqual([]);
    expect(loaded.body.turnCount).toBe(contents.length);

    // The thread continues after the crash.
    const next = await ownerApi<{ turn: { seq: number } }>(exaiHome, 'POST', `/threads/${thread.body.id}/turns`, { role: 'assistant', content: 'after the crash' });
    expect(next.body.turn.seq).toBe(contents.length + 1);
    await second.stop();
  });
});
