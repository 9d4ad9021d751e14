/**
 * The file jobs inside a running server: an upload queues processing at once
 * (no waiting for the every-minute schedule), and the purge and sweep are
 * scheduled on the durable runner.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asService } from '../../src/db/session.js';
import { fileJobNames } from '../../src/files/file-jobs.js';
import { storageBackends } from '../support/backends.js';
import { startAuthExai, type AuthExai } from '../support/auth-server.js';

describe.each(storageBackends())('file jobs in a running server on $name', (backend) => {
  let exai: AuthExai;

  beforeAll(async () => {
    exai = await startAuthExai(backend, {});
  }, 60_000);

  afterAll(async () => {
    await exai?.close();
  });

  it('processes a new upload right away and keeps the purge and sweep on a schedule', async () => {
    const { services } = exai.server;
    const alice = await exai.userWithKey('alice');
    const text = Buffer.from(Array.from({ length: 5_000 }, (_, index) => `line ${index} of the release notes\n`).join(''));
    const { file } = await services.files.upload({ userId: alice.userId, name: 'release.md', body: text });
    const deadline = Date.now() + 20_000;
    let row: { processed_at: Date | null; stored_encoding: string } | undefined;
    while (Date.now() < deadline) {
      const found = await asService(services.db, (tx) =>
        tx.query<{ processed_at: Date | null; stored_encoding: string }>('SELECT processed_at, stored_encoding FROM exai.file_objects WHERE storage_key = $1', [file.storageKey]),
      );
      row = found.rows[0];
      if (row?.processed_at !== null && row?.processed_at !== undefined) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(row?.processed_at).not.toBeNull();
    expect(row?.stored_encoding).toBe('gzip');
    // pg-boss's own schema, read as the connecting role that runs it.
    const schedules = await services.db.query<{ name: string }>('SELECT name FROM exai_jobs.schedule ORDER BY name');
    expect(schedules.rows.map((schedule) => schedule.name)).toEqual(expect.arrayContaining(Object.values(fileJobNames)));
  }, 30_000);
});
