/**
 * `exai search reindex` on an embedded home with no server running: it embeds
 * every message in rounds, printing progress, and a second run has nothing to do.
 */
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryCache } from '../../src/cache/memory.js';
import { ConversationStore } from '../../src/conversations/store.js';
import { embeddedDataDir } from '../../src/db/open.js';
import { openPglite } from '../../src/db/pglite.js';
import { countPending } from '../../src/search/indexer.js';
import { ensureUser } from '../../src/users/users.js';
import { silentLogger } from '../support/backends.js';
import { preparedHome, runCli } from '../support/cli.js';

describe('exai search reindex', () => {
  let home: string | undefined;

  afterAll(() => {
    if (home !== undefined) rmSync(home, { recursive: true, force: true });
  });

  it('embeds every message with progress, and a second run has nothing to do', async () => {
    home = await preparedHome();
    const db = await openPglite(embeddedDataDir(home));
    try {
      const cache = new MemoryCache({ maxEntries: 100, maxBytes: 1024 * 1024 });
      const store = new ConversationStore(db, cache, { cacheTtlMs: 60_000, maxMessageBytes: 1024 * 1024, maxThreadDepth: 5 }, silentLogger);
      const user = (await ensureUser(db, 'local')).id;
      for (let index = 0; index < 30; index += 1) {
        const thread = await store.createThread(user, { title: `thread ${index}` });
        await store.appendTurns(user, thread.id, Array.from({ length: 100 }, (_, turn) => ({ role: turn % 2 === 0 ? 'user' : 'assistant', content: `message ${turn} of thread ${index} about topic ${turn % 7}` })));
      }
      expect(await countPending(db, 'exai-local-hash-384')).toBe(3000);
    } finally {
      await db.close();
    }
    const first = await runCli(['search', 'reindex', '--json'], { EXAI_HOME: home }, 120_000);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toEqual({ indexed: 3000, remaining: 0, model: 'exai-local-hash-384' });
    // Rounds of 10 batches of 200: progress after each.
    expect(first.stderr).toMatch(/embedded 2000 messages with exai-local-hash-384, 1000 left/);
    expect(first.stderr).toMatch(/embedded 3000 messages with exai-local-hash-384, 0 left/);
    const second = await runCli(['search', 'reindex'], { EXAI_HOME: home }, 60_000);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/Every message has a vector for exai-local-hash-384 \(0 embedded now\)/);
  }, 180_000);
});
