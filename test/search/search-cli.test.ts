/**
 * `exai search reindex` on an embedded home with no server running: it embeds
 * every message in rounds, then the chunks of files' extracted text, printing
 * progress, and a second run has nothing to do.
 */
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryCache } from '../../src/cache/memory.js';
import { ConversationStore } from '../../src/conversations/store.js';
import { embeddedDataDir } from '../../src/db/open.js';
import { openPglite } from '../../src/db/pglite.js';
import { asService } from '../../src/db/session.js';
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
      // A stored file's extracted text, as the processing job leaves it: 30 paragraphs, about 40 chunks.
      const key = `sha256/${'ab'.repeat(32)}`;
      const text = Array.from({ length: 30 }, (_, index) => `Paragraph ${index}: ${'the retry policy backs off exponentially '.repeat(30)}`).join('\n\n');
      await asService(db, async (tx) => {
        await tx.query('INSERT INTO exai.file_objects (storage_key, size, stored_key, stored_size) VALUES ($1, $2, $1, $2)', [key, text.length]);
        await tx.query("INSERT INTO exai.file_texts (storage_key, format, content) VALUES ($1, 'text', $2)", [key, text]);
      });
    } finally {
      await db.close();
    }
    const first = await runCli(['search', 'reindex', '--json'], { EXAI_HOME: home }, 120_000);
    expect(first.code, first.stderr).toBe(0);
    const result = JSON.parse(first.stdout) as { chunks_indexed: number };
    expect(result).toEqual({ indexed: 3000, remaining: 0, chunks_indexed: expect.any(Number), chunks_remaining: 0, model: 'exai-local-hash-384', index: 'ready' });
    expect(result.chunks_indexed).toBeGreaterThan(30);
    // Rounds of 10 batches of 200 messages, then the file's chunks: progress after each.
    // While messages are left, the file's text waits, uncut: one piece of file work left.
    expect(first.stderr).toMatch(/embedded 2000 messages \(1000 left\) and 0 file chunks \(1 left\) with exai-local-hash-384/);
    expect(first.stderr).toContain(`embedded 3000 messages (0 left) and ${result.chunks_indexed} file chunks (0 left) with exai-local-hash-384`);
    const second = await runCli(['search', 'reindex'], { EXAI_HOME: home }, 60_000);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/Every message and file chunk has a vector for exai-local-hash-384 \(0 messages and 0 chunks embedded now\)/);
  }, 180_000);
});
