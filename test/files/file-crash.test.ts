/**
 * A real crash between the object write and the row write: a process uploads
 * through the file handler on PostgreSQL and is killed with SIGKILL once the
 * bytes are stored. No row may exist afterwards, and the orphan sweep removes
 * the object. (The same state on PGlite, reached through a failed row write,
 * is covered in file-handler.test.ts: an embedded database has one process.)
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asService } from '../../src/db/session.js';
import { sweepOrphanObjects } from '../../src/files/file-cleanup.js';
import { LocalObjectStore } from '../../src/files/storage/local-object-store.js';
import { ensureUser } from '../../src/users/users.js';
import { createPostgresDatabase, silentLogger, type TestDatabase } from '../support/backends.js';
import { externalBackends } from '../support/env.js';

const script = fileURLToPath(new URL('../support/crash-after-put.mjs', import.meta.url));

describe.runIf(externalBackends() !== undefined)('a crash between storing the bytes and writing the rows, on PostgreSQL', () => {
  let database: TestDatabase;
  let folder: string;

  beforeAll(async () => {
    database = await createPostgresDatabase();
    folder = mkdtempSync(path.join(os.tmpdir(), 'exai-crash-objects-'));
  });

  afterAll(async () => {
    await database?.destroy();
    rmSync(folder, { recursive: true, force: true });
  });

  it('leaves no row, and the sweep removes the orphaned object', async () => {
    const alice = (await ensureUser(database.db, 'alice')).id;
    const child = spawn(process.execPath, [script, database.location, folder, alice], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, killed) => resolve(killed)));
    expect(signal, err).toBe('SIGKILL');
    const key = out.trim();
    expect(key).toMatch(/^sha256\/[0-9a-f]{64}$/);
    const store = new LocalObjectStore(folder);
    expect(existsSync(store.localPath(key))).toBe(true);
    const rows = await asService(database.db, (tx) =>
      tx.query<{ n: number }>('SELECT (SELECT count(*) FROM exai.file_metadata)::int + (SELECT count(*) FROM exai.file_objects)::int AS n'),
    );
    expect(rows.rows[0]!.n).toBe(0);
    const swept = await sweepOrphanObjects({ db: database.db, store, logger: silentLogger }, { graceMs: -60_000 });
    expect(swept.objects).toBe(1);
    expect(existsSync(store.localPath(key))).toBe(false);
  }, 30_000);
});
