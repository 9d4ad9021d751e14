/**
 * `exai users`, `exai keys` and `exai audit` as an operator meets them: the real
 * `exai` binary in child processes, through a running `exai serve` that owns the
 * embedded database, on the embedded database with no server (the command opens
 * it itself), and on PostgreSQL. Keys must be printed once and never stored or
 * echoed; the audit log must record every change and detect rows edited or
 * removed by someone with more power than the application.
 *
 * Each command is a new Node.js process (and, on the embedded database without a
 * server, a PGlite start): seconds of CPU each. So the whole command set, with
 * every refusal, runs once, through the owner; the direct paths run the commands
 * that show they reach the same operations and report refusals the same way.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAdminOperation } from '../../src/admin/operations.js';
import { verifyAudit, type AuditEntry } from '../../src/audit/audit-log.js';
import type { ApiKeyInfo, CreatedApiKey } from '../../src/auth/api-keys.js';
import { loadConfig } from '../../src/config.js';
import { embeddedDataDir } from '../../src/db/open.js';
import { openPglite } from '../../src/db/pglite.js';
import type { Database } from '../../src/db/types.js';
import { storageBackends, type TestDatabase } from '../support/backends.js';
import { type CliResult, preparedHome, runCli, type ServeProcess, startServe, tempHome } from '../support/cli.js';
import { suiteCleanups } from '../support/cleanups.js';

const keyFormat = /^exai_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/;
// The CLI runs as the same OS user as this test, so this is the actor it must record.
const cliActor = `cli:${os.userInfo().username}`;
const day = 86_400_000;
const hour = 3_600_000;

const cleanups = suiteCleanups();

async function preparedTempHome(): Promise<string> {
  const home = await preparedHome();
  cleanups.push(async () => rmSync(home, { recursive: true, force: true }));
  return home;
}

function track(server: ServeProcess): ServeProcess {
  cleanups.push(async () => {
    if (server.child.exitCode === null) await server.kill9();
  });
  return server;
}

/** A command that must succeed; its output is kept so no key can hide in it. */
function succeeded(result: CliResult, what: string): CliResult {
  expect(result.code, `${what}: ${result.stderr}`).toBe(0);
  return result;
}

/** A refusal must say what is wrong on stderr, exit non-zero, print no data and no stack trace. */
function refused(result: CliResult, message: RegExp): void {
  expect(result.code, result.stdout).not.toBe(0);
  expect(result.stderr).toMatch(message);
  expect(result.stderr).not.toMatch(/\n\s+at /);
  expect(result.stdout).toBe('');
}

/** The part of a key that must never be seen again: everything after the prefix. */
const secretOf = (key: string) => key.slice('exai_'.length + 12 + 1);
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Every row of every exai table as text, read as the superuser (past row-level security). */
async function everyRow(db: Database): Promise<string> {
  const tables = await db.query<{ name: string }>(
    "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'exai' AND table_type = 'BASE TABLE'",
  );
  expect(tables.rows.map((table) => table.name)).toEqual(expect.arrayContaining(['api_keys', 'audit_log', 'users']));
  const dumps: string[] = [];
  for (const { name } of tables.rows) {
    const rows = await db.query<{ dump: string | null }>(`SELECT string_agg(t::text, E'\\n') AS dump FROM exai."${name}" t`);
    dumps.push(rows.rows[0]!.dump ?? '');
  }
  return dumps.join('\n');
}

/** Every byte of a data directory: rows, indexes and the WAL, including rows deleted since. */
function everyFile(folder: string): Buffer[] {
  return readdirSync(folder, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => readFileSync(path.join(entry.parentPath, entry.name)));
}

async function withPglite<T>(home: string, fn: (db: Database) => Promise<T>): Promise<T> {
  // Only while no exai process holds this home: PGlite must have one user at a time.
  const db = await openPglite(embeddedDataDir(home));
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

/** The CLI's table as rows of cells (after the header and its rule); an empty cell vanishes into its gap. */
function parseTable(text: string): string[][] {
  return text
    .trim()
    .split('\n')
    .slice(2)
    .map((line) => line.split(/\s{2,}/));
}

const postgresBackend = storageBackends().find((backend) => backend.kind === 'postgres');

/** Output from every command, searched for keys at the end. */
function outputLog() {
  const outputs: CliResult[] = [];
  /** The outputs of create and rotate: the only places a key may appear, once each. */
  const printedOnce = new Set<CliResult>();
  return {
    async run(env: Record<string, string>, ...args: string[]): Promise<CliResult> {
      const result = await runCli(args, env, 120_000);
      outputs.push(result);
      return result;
    },
    printsKey(result: CliResult): CliResult {
      printedOnce.add(result);
      return result;
    },
    expectKeysOnlyWherePrinted(keys: string[]): void {
      for (const key of keys) {
        expect(outputs.filter((output) => output.stdout.includes(secretOf(key)))).toHaveLength(1);
        for (const output of outputs) {
          expect(output.stderr).not.toContain(secretOf(key));
          if (!printedOnce.has(output)) expect(output.stdout).not.toContain(secretOf(key));
        }
      }
    },
  };
}

/** The api_keys rows hold each key's prefix and SHA-256, and no table holds any key. */
async function expectOnlyHashesStored(db: Database, keys: string[]): Promise<void> {
  const rows = await db.query<{ prefix: string; secret_hash: string }>('SELECT prefix, secret_hash FROM exai.api_keys');
  expect(rows.rows.map((row) => [row.prefix, row.secret_hash]).sort()).toEqual(keys.map((key) => [key.slice(5, 17), sha256(key)]).sort());
  const stored = await everyRow(db);
  expect(stored).toContain(keys[0]!.slice(5, 17));
  for (const key of keys) expect(stored).not.toContain(secretOf(key));
}

/** The files hold deleted rows and the WAL too: a key written once would still be found there. */
function expectNoKeyInFiles(home: string, keys: string[]): void {
  const files = everyFile(embeddedDataDir(home));
  expect(files.some((file) => file.includes(keys[0]!.slice(5, 17)))).toBe(true);
  for (const key of keys) expect(files.some((file) => file.includes(secretOf(key)))).toBe(false);
}

describe('exai users, keys and audit through a running exai serve (embedded database)', () => {
  let home: string;
  let env: Record<string, string>;
  let server: ServeProcess;
  const log = outputLog();
  const exai = (...args: string[]) => log.run(env, ...args);
  let key1: CreatedApiKey;
  let key2: CreatedApiKey & { previous: ApiKeyInfo };
  const keys = () => [key1.key, key2.key];

  beforeAll(async () => {
    home = await preparedTempHome();
    env = { EXAI_HOME: home };
    // From here on a command cannot open the files itself: each one succeeds only through the owner's API.
    server = track(await startServe(env));
  });

  it('creates a user, and refuses a duplicate or malformed handle', async () => {
    const created = succeeded(await exai('users', 'create', 'alice'), 'users create');
    expect(created.stdout).toMatch(/^Created user alice \([0-9a-f-]{36}\)\. Next: exai keys create --user alice\n$/);

    // Refusals change nothing, so they may run together.
    const [duplicate, malformed] = await Promise.all([exai('users', 'create', 'alice'), exai('users', 'create', 'Alice Smith')]);
    refused(duplicate!, /^exai: A user with handle "alice" already exists\.\n$/);
    refused(malformed!, /User handle "Alice Smith" is not valid: use lower-case letters, digits/);
  });

  it('creates a key printed once in the documented format, and refuses an unknown user, scope or lifetime', async () => {
    const before = Date.now();
    const [created, unknownUser, unknownScope, badExpiry, hugeExpiry, zeroExpiry] = await Promise.all([
      exai('keys', 'create', '--user', 'alice', '--scopes', 'tools:call,conversations:read', '--expires', '30d', '--name', 'ci', '--rpm', '5', '--tpm', '1000', '--concurrency', '2', '--json'),
      exai('keys', 'create', '--user', 'nobody'),
      exai('keys', 'create', '--user', 'alice', '--scopes', 'tools:call,root'),
      exai('keys', 'create', '--user', 'alice', '--expires', 'soon'),
      // Past what Postgres stores, and a key dead on arrival: refused before the database is asked.
      exai('keys', 'create', '--user', 'alice', '--expires', '99999999d'),
      exai('keys', 'create', '--user', 'alice', '--expires', '0s'),
    ]);
    const after = Date.now();
    key1 = JSON.parse(succeeded(log.printsKey(created!), 'keys create').stdout) as CreatedApiKey;
    expect(key1.key).toMatch(keyFormat);
    expect(key1.key.startsWith(`exai_${key1.prefix}_`)).toBe(true);
    expect(key1).toMatchObject({
      userHandle: 'alice',
      name: 'ci',
      scopes: ['tools:call', 'conversations:read'],
      limits: { requestsPerMinute: 5, tokensPerMinute: 1000, concurrentCalls: 2 },
      state: 'active',
      revokedAt: null,
    });
    const expires = Date.parse(key1.expiresAt!);
    expect(expires).toBeGreaterThanOrEqual(before + 30 * day - 1000);
    expect(expires).toBeLessThanOrEqual(after + 30 * day + 1000);

    refused(unknownUser!, /No user with handle "nobody"; create it with `exai users create nobody`/);
    refused(unknownScope!, /Unknown scope "root"; the scopes are tools:call, conversations:read, conversations:write, files:write, metrics:read, metrics:scrape, admin/);
    refused(badExpiry!, /--expires must be a duration from 1s to 36500d, such as 90m, 24h or 30d \(got "soon"\)/);
    refused(hugeExpiry!, /--expires must be a duration from 1s to 36500d.*\(got "99999999d"\)/);
    refused(zeroExpiry!, /--expires must be a duration from 1s to 36500d.*\(got "0s"\)/);
  });

  it('rotates a key with a grace period, revokes the old one at once, and refuses to rotate a revoked key', async () => {
    const before = Date.now();
    const rotated = succeeded(log.printsKey(await exai('keys', 'rotate', key1.prefix, '--grace', '1h', '--json')), 'keys rotate');
    const after = Date.now();
    key2 = JSON.parse(rotated.stdout) as CreatedApiKey & { previous: ApiKeyInfo };
    expect(key2.key).toMatch(keyFormat);
    expect(key2.prefix).not.toBe(key1.prefix);
    // The new key inherits what the old one was for and could do, and when it would have ended.
    expect(key2).toMatchObject({ userHandle: 'alice', name: 'ci', scopes: key1.scopes, limits: key1.limits, state: 'active' });
    expect(Math.abs(Date.parse(key2.expiresAt!) - Date.parse(key1.expiresAt!))).toBeLessThan(1000);
    expect(key2.previous).toMatchObject({ prefix: key1.prefix, state: 'active', replacedBy: key2.id });
    const graceEnds = Date.parse(key2.previous.expiresAt!);
    expect(graceEnds).toBeGreaterThanOrEqual(before + hour - 1000);
    expect(graceEnds).toBeLessThanOrEqual(after + hour + 1000);

    const revoked = succeeded(await exai('keys', 'revoke', key1.prefix), 'keys revoke');
    expect(revoked.stdout).toBe(`Revoked key ${key1.prefix} of alice.\n`);
    refused(await exai('keys', 'rotate', key1.prefix), new RegExp(`API key ${key1.prefix} is revoked; only an active key can be rotated`));
  });

  it('lists keys and users without ever printing a key', async () => {
    const [keyList, userList] = await Promise.all([exai('keys', 'list'), exai('users', 'list')]);
    const keyRows = parseTable(succeeded(keyList, 'keys list').stdout);
    expect(keyRows.find((row) => row[0] === key1.prefix)).toEqual([key1.prefix, 'alice', 'ci', 'revoked', 'tools:call,conversations:read', key2.previous.expiresAt, key1.id]);
    expect(keyRows.find((row) => row[0] === key2.prefix)).toEqual([key2.prefix, 'alice', 'ci', 'active', 'tools:call,conversations:read', key2.expiresAt, key2.id]);
    for (const key of keys()) expect(keyList.stdout).not.toContain(secretOf(key));

    const alice = parseTable(succeeded(userList, 'users list').stdout).find((row) => row[0] === 'alice');
    // Revoked during its grace period, the old key no longer counts.
    expect(alice?.slice(2, 4)).toEqual(['1', '0']);
  });

  it('deletes the user with their keys', async () => {
    const deleted = succeeded(await exai('users', 'delete', 'alice'), 'users delete');
    expect(deleted.stdout).toBe('Deleted user alice with 0 thread(s) and 2 key(s).\n');
  });

  it('records every change in the audit log as the CLI user, and verifies the chain up to its head', async () => {
    const [list, verify] = await Promise.all([exai('audit', 'list', '--json'), exai('audit', 'verify')]);
    const entries = (JSON.parse(succeeded(list, 'audit list --json').stdout) as AuditEntry[]).reverse();
    // Refused commands changed nothing and left no row.
    expect(entries.map((entry) => [entry.seq, entry.action, entry.target])).toEqual([
      [1, 'user.create', 'user:alice'],
      [2, 'key.create', `key:${key1.prefix}`],
      [3, 'key.rotate', `key:${key1.prefix}`],
      [4, 'key.revoke', `key:${key1.prefix}`],
      [5, 'user.delete', 'user:alice'],
    ]);
    for (const entry of entries) expect(entry).toMatchObject({ actor: cliActor, source: 'cli', outcome: 'success' });
    expect(entries[1]!.details).toMatchObject({ key_id: key1.id, user: 'alice', scopes: key1.scopes });
    expect(entries[2]!.details).toMatchObject({ new_prefix: key2.prefix, grace_ms: hour });
    expect(entries[4]!.details).toMatchObject({ keys: 2, threads: 0 });
    for (const key of keys()) expect(list.stdout).not.toContain(secretOf(key));

    expect(succeeded(verify, 'audit verify').stdout).toBe(`The audit log is intact: 5 row(s), head #5 ${entries[4]!.hash}.\n`);
  });

  it('never prints a key outside create and rotate, nor logs or stores one', async () => {
    log.expectKeysOnlyWherePrinted(keys());
    expect(await server.stop()).toBe(0);
    for (const key of keys()) expect(server.stderr()).not.toContain(secretOf(key));
    expectNoKeyInFiles(home, keys());
  });

  it('detects a row the database superuser edits or removes past the append-only guard, once the server has stopped', async () => {
    await expectTamperingDetected(env, 5, (fn) => withPglite(home, fn));
  });
});

interface DirectMode {
  name: string;
  kind: 'pglite' | 'postgres';
}

const directModes: DirectMode[] = [
  { name: 'the embedded database with no server running', kind: 'pglite' },
  ...(postgresBackend === undefined ? [] : [{ name: 'PostgreSQL (DATABASE_URL)', kind: 'postgres' as const }]),
];

describe.each(directModes)('exai users, keys and audit directly on $name', (mode) => {
  let home: string;
  let env: Record<string, string>;
  let database: TestDatabase | undefined;
  const log = outputLog();
  const exai = (...args: string[]) => log.run(env, ...args);

  beforeAll(async () => {
    if (mode.kind === 'pglite') {
      home = await preparedTempHome();
      env = { EXAI_HOME: home };
      return;
    }
    database = await postgresBackend!.createDatabase();
    cleanups.push(() => database!.destroy());
    home = tempHome(cleanups);
    env = { EXAI_HOME: home, ...postgresBackend!.env(database) };
  });

  /** The database as its superuser; the embedded one only while no command holds it. */
  const superuser = <T>(fn: (db: Database) => Promise<T>): Promise<T> => (mode.kind === 'pglite' ? withPglite(home, fn) : fn(database!.db));

  it('creates a user and a key, refuses a duplicate, revokes the key, and records and verifies it all', async () => {
    expect(succeeded(await exai('users', 'create', 'alice'), 'users create').stdout).toMatch(/^Created user alice \(/);
    refused(await exai('users', 'create', 'alice'), /^exai: A user with handle "alice" already exists\.\n$/);
    const created = succeeded(log.printsKey(await exai('keys', 'create', '--user', 'alice', '--scopes', 'tools:call', '--expires', '30d', '--json')), 'keys create');
    const key = JSON.parse(created.stdout) as CreatedApiKey;
    expect(key.key).toMatch(keyFormat);
    expect(key).toMatchObject({ userHandle: 'alice', scopes: ['tools:call'], state: 'active' });
    expect(succeeded(await exai('keys', 'revoke', key.prefix), 'keys revoke').stdout).toBe(`Revoked key ${key.prefix} of alice.\n`);
    const verify = succeeded(await exai('audit', 'verify'), 'audit verify');

    await superuser(async (db) => {
      await expectOnlyHashesStored(db, [key.key]);
      const audit = await db.query<{ seq: string; actor: string; action: string; target: string; source: string; outcome: string; hash: string }>(
        'SELECT seq::text, actor, action, target, source, outcome, hash FROM exai.audit_log ORDER BY seq',
      );
      expect(audit.rows.map((row) => [row.seq, row.action, row.target, row.actor, row.source, row.outcome])).toEqual([
        ['1', 'user.create', 'user:alice', cliActor, 'cli', 'success'],
        ['2', 'key.create', `key:${key.prefix}`, cliActor, 'cli', 'success'],
        ['3', 'key.revoke', `key:${key.prefix}`, cliActor, 'cli', 'success'],
      ]);
      expect(verify.stdout).toBe(`The audit log is intact: 3 row(s), head #3 ${audit.rows[2]!.hash}.\n`);
    });
    log.expectKeysOnlyWherePrinted([key.key]);
    if (mode.kind === 'pglite') expectNoKeyInFiles(home, [key.key]);
  });

  if (mode.kind === 'postgres') {
    // The test server's postgres role is a superuser, as an attacker with the database's keys would be.
    it('detects a row the database superuser edits or removes past the append-only guard', async () => {
      await expectTamperingDetected(env, 3, (fn) => fn(database!.db));
    });
  }
});

/** Edits made past the append-only triggers, as only a database superuser can. */
async function tamper(db: Database, statements: string[]): Promise<void> {
  await db.transaction(async (tx) => {
    // Replica mode fires no ordinary triggers, so the append-only guard stays silent.
    await tx.query('SET LOCAL session_replication_role = replica');
    for (const statement of statements) await tx.query(statement);
  });
}

/** An edited row, then a removed middle row, must each make `exai audit verify` exit 1 naming the row. */
async function expectTamperingDetected(
  env: Record<string, string>,
  rows: number,
  superuser: (fn: (db: Database) => Promise<void>) => Promise<void>,
): Promise<void> {
  await superuser(async (db) => {
    expect(await verifyAudit(db)).toMatchObject({ ok: true, rows });
    // Row 2 records the key's creation; calling it failed would hide that the key exists.
    await tamper(db, ["UPDATE exai.audit_log SET outcome = 'failure' WHERE seq = 2"]);
  });
  const edited = await runCli(['audit', 'verify'], env);
  expect(edited.code).toBe(1);
  expect(edited.stdout).toBe('The audit log has been tampered with: row #2: its content does not match its hash (the row was edited).\n');

  await superuser((db) => tamper(db, ['DELETE FROM exai.audit_log WHERE seq = 2']));
  const removed = await runCli(['audit', 'verify', '--json'], env);
  expect(removed.code).toBe(1);
  expect(JSON.parse(removed.stdout)).toMatchObject({ ok: false, rows: rows - 1, firstBad: { seq: 3, problem: 'a row before it is missing (numbers skip to 3)' } });
}

describe.each(storageBackends())('the audit log against the application roles on $name', (backend) => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await backend.createDatabase();
    const home = tempHome(cleanups);
    const context = { db: database.db, config: loadConfig({ EXAI_HOME: home }, { cwd: home }), actor: { label: 'test', source: 'test' } };
    await runAdminOperation(context, 'users.create', { handle: 'dave' });
    await runAdminOperation(context, 'keys.create', { user: 'dave' });
  });

  afterAll(async () => {
    await database?.destroy();
  });

  /** What `statement` does as `role` (undefined: the superuser the tests connect as), inside a transaction. */
  async function asRole(role: string | undefined, statement: string): Promise<string> {
    const outcome = await database.db
      .transaction(async (tx) => {
        if (role !== undefined) await tx.query(`SET LOCAL ROLE ${role}`);
        await tx.query(statement);
      })
      .then(
        () => 'allowed',
        (error: unknown) => (error as Error).message,
      );
    return outcome;
  }

  it('lets neither service_role nor authenticated update, delete or truncate a row', async () => {
    for (const role of ['service_role', 'authenticated']) {
      for (const statement of [
        "UPDATE exai.audit_log SET outcome = 'failure'",
        'DELETE FROM exai.audit_log WHERE seq = 1',
        'TRUNCATE exai.audit_log',
      ]) {
        expect(await asRole(role, statement), `${role}: ${statement}`).toMatch(/permission denied/);
      }
    }
    expect(await asRole('authenticated', "INSERT INTO exai.audit_log (actor, action, outcome) VALUES ('x', 'forged', 'success')")).toMatch(/permission denied/);
    // Without replica mode even the superuser meets the append-only triggers.
    expect(await asRole(undefined, "UPDATE exai.audit_log SET outcome = 'failure'")).toMatch(/append-only: UPDATE is not allowed/);
    expect(await asRole(undefined, 'TRUNCATE exai.audit_log')).toMatch(/append-only: TRUNCATE is not allowed/);
    expect(await verifyAudit(database.db)).toMatchObject({ ok: true, rows: 2 });
  });

  it('numbers and chains a row the service role inserts, whatever numbers and hashes it claims', async () => {
    const forged = await asRole(
      'service_role',
      `INSERT INTO exai.audit_log (seq, actor, action, outcome, prev_hash, hash)
       VALUES (1, 'x', 'forged', 'success', repeat('0', 64), repeat('a', 64))`,
    );
    expect(forged).toBe('allowed');
    const rows = await database.db.query<{ seq: string; action: string; hash: string }>('SELECT seq::text, action, hash FROM exai.audit_log ORDER BY seq');
    expect(rows.rows.map((row) => [row.seq, row.action])).toEqual([
      ['1', 'user.create'],
      ['2', 'key.create'],
      ['3', 'forged'],
    ]);
    expect(rows.rows[2]!.hash).not.toBe('a'.repeat(64));
    expect(await verifyAudit(database.db)).toMatchObject({ ok: true, rows: 3, head: { seq: 3 } });
  });
});
