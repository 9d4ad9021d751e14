/**
 * SQL-injection strings in every filter a user or an administrator controls:
 * each is answered with a validation or not-found error (or an empty result)
 * that says what was wrong, never an internal or database error, and the
 * tables are the same afterwards. Through MCP tools, the admin operations and
 * the owner's HTTP API, on both backends.
 */
import { randomUUID } from 'node:crypto';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAudit } from '../../src/audit/audit-log.js';
import { asService } from '../../src/db/session.js';
import { ExaiError } from '../../src/errors.js';
import { storageBackends } from '../support/backends.js';
import { startAuthExai, textOf, type AuthExai, type McpSession, type RawRequest } from '../support/auth-server.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';
import { readOwnerInfo } from '../../src/embedded/owner-info.js';

const hostile = [
  "' OR '1'='1",
  "1; DROP TABLE exai.messages; --",
  "'); DELETE FROM exai.users; --",
  '$$; DROP TABLE exai.conversations; $$',
  '$tag$ OR true $tag$',
  '" OR ""="',
  "\\'; TRUNCATE exai.api_keys; --",
  "00000000-0000-0000-0000-000000000000' OR '1'='1",
  "' UNION SELECT secret_hash FROM exai.api_keys --",
  'ſelect ⁄ Ω≈ç√ 🙂 \u202eesrever\u202c 𝕏 ﷽',
  'x'.repeat(100_000),
];

const tables = ['users', 'api_keys', 'conversations', 'messages', 'audit_log'];

/** Row counts of every exai table, read as the service role (a missing table fails the read). */
async function counts(exai: AuthExai): Promise<Record<string, number>> {
  return asService(exai.server.services.db, async (tx) => {
    const result: Record<string, number> = {};
    for (const table of tables) result[table] = Number((await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM exai.${table}`)).rows[0]!.n);
    return result;
  });
}

/** A message that is clear: short, about the input, no internals. */
function expectClear(text: string, pattern: RegExp): void {
  expect(text).toMatch(pattern);
  expect(text.length).toBeLessThan(1000);
  expect(text).not.toMatch(/Internal error|Database error|syntax error|SQLSTATE|\n\s+at /);
}

/** The tool's answer: a tool error's text, or a JSON-RPC error's message (SDK argument validation). */
async function refusal(session: McpSession, tool: string, args: Record<string, unknown>): Promise<string> {
  let result: CallToolResult;
  try {
    result = await session.call(tool, args);
  } catch (error) {
    return (error as Error).message;
  }
  expect(result.isError, `${tool} ${JSON.stringify(args).slice(0, 200)} answered ${textOf(result).slice(0, 200)}`).toBe(true);
  return textOf(result);
}

/** The ExaiError an admin operation ends with, or its result when it succeeds. */
async function adminOutcome(run: () => Promise<unknown>): Promise<unknown> {
  return run().catch((error: unknown) => {
    expect(error).toBeInstanceOf(ExaiError);
    return error;
  });
}

const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/**
 * Cursors in the encoding exai uses, holding the strings above, and positions
 * that Date.parse accepts but Postgres cannot read as a timestamptz ("x 2020",
 * "1" and a 31st of February pass Date.parse).
 */
function craftedCursors(): string[] {
  const position = '2020-01-01T00:00:00.000000Z';
  const unreadable = ['x 2020', '1', 'March 7 2020 (DROP)', '+275760-09-13T00:00:00.000Z', '2020-02-31T00:00:00.000000Z'];
  return [...hostile.flatMap((text) => [cursorOf([text, randomUUID()]), cursorOf([position, text])]), ...unreadable.map((text) => cursorOf([text, randomUUID()]))];
}

describe.each(storageBackends())('injection strings in filters on $name', (backend) => {
  let fake: FakeOpenAI;
  let exai: AuthExai;
  let alice: McpSession;
  let before: Record<string, number>;

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    exai = await startAuthExai(backend, { GLM_API_KEY: 'sk-glm-injection-0123456789', GLM_BASE_URL: fake.baseUrl });
    const { key } = await exai.userWithKey('alice');
    alice = await exai.connect(key);
    for (const prompt of ['first question', 'second question']) expect((await alice.call('chat', { prompt, model: 'glm-4.6' })).isError).toBeFalsy();
    before = await counts(exai);
  });

  afterAll(async () => {
    await exai?.close();
    await fake?.close();
  });

  it('refuses them as a conversation_list cursor', async () => {
    for (const cursor of hostile) expectClear(await refusal(alice, 'conversation_list', { cursor }), /^Cursor .* is not valid: pass the nextCursor of a previous page\.$/);
  });

  it('refuses a well-encoded cursor holding them, or a position Postgres cannot read', async () => {
    for (const cursor of craftedCursors()) expectClear(await refusal(alice, 'conversation_list', { cursor }), /^Cursor .* is not valid/);
  });

  it('refuses them as a conversation_list status', async () => {
    for (const status of hostile) expectClear(await refusal(alice, 'conversation_list', { status }), /expected one of "active"\|"archived" at status/);
  });

  it('refuses them as the continuation_id of conversation_get, chat and conversation_delete, asking no model', async () => {
    const asked = fake.requests.length;
    const invalid = /^continuation_id .* is not valid: expected a UUID/;
    for (const id of hostile) {
      expectClear(await refusal(alice, 'conversation_get', { continuation_id: id }), invalid);
      expectClear(await refusal(alice, 'chat', { prompt: 'continue', continuation_id: id }), invalid);
      expectClear(await refusal(alice, 'conversation_delete', { continuation_id: id }), invalid);
    }
    expect(fake.requests.length).toBe(asked);
  });

  it('refuses them in the admin operations with a validation or not-found error', async () => {
    const expectRefused = async (run: () => Promise<unknown>, pattern: RegExp) => {
      const outcome = await adminOutcome(run);
      expect(outcome, `expected a refusal, got ${JSON.stringify(outcome).slice(0, 200)}`).toBeInstanceOf(ExaiError);
      const error = outcome as ExaiError;
      expect(['invalid_argument', 'not_found']).toContain(error.code);
      expectClear(error.message, pattern);
    };
    for (const text of hostile) {
      await expectRefused(() => exai.admin('keys.list', { user: text }), /^(Invalid input for keys\.list: user|No user with handle)/);
      await expectRefused(() => exai.admin('keys.revoke', { key: text }), /^(Invalid input for keys\.revoke: key|No API key )/);
      await expectRefused(() => exai.admin('users.create', { handle: text }), /^(Invalid input for users\.create: handle|User handle .* is not valid)/);
    }
  });

  it('finds nothing for them as an audit.list action, or refuses them', async () => {
    for (const action of hostile) {
      const outcome = await adminOutcome(() => exai.admin('audit.list', { limit: 100, action }));
      if (outcome instanceof ExaiError) expectClear(outcome.message, /^Invalid input for audit\.list: action/);
      else expect(outcome).toEqual([]);
    }
  });

  it('treats an audit.list action literally: LIKE wildcards match no other action', async () => {
    expect((await exai.admin('audit.list', { limit: 100, action: 'user' })).length).toBeGreaterThan(0);
    for (const action of ['%', '_ser', 'use_', 'k%']) expect(await exai.admin('audit.list', { limit: 100, action })).toEqual([]);
  });

  it('answers them on the owner HTTP API with 400 or 404, never a server error', async () => {
    const authorization = `Bearer ${readOwnerInfo(exai.config.home)!.token}`;
    const failures: string[] = [];
    const check = async (path: string, body?: unknown) => {
      const request: RawRequest = body === undefined ? { headers: { authorization } } : { method: 'POST', headers: { authorization, 'content-type': 'application/json' }, body: JSON.stringify(body) };
      const response = await exai.raw(path, request);
      if (response.status !== 400 && response.status !== 404) failures.push(`${response.status} ${path.slice(0, 120)}: ${response.text.slice(0, 200)}`);
    };
    for (const text of hostile.filter((value) => value.length < 2000)) {
      const encoded = encodeURIComponent(text);
      for (const name of ['before', 'status', 'user']) await check(`/internal/v1/threads?${name}=${encoded}`);
      await check(`/internal/v1/threads/${encoded}`);
      await check('/internal/v1/admin/keys.list', { input: { user: text } });
      await check('/internal/v1/admin/keys.revoke', { input: { key: text } });
      await check('/internal/v1/admin/users.create', { input: { handle: text } });
    }
    // Cursors short enough for a URL (Node refuses request heads over 16 KiB with 431 before exai sees them).
    for (const cursor of craftedCursors().filter((value) => value.length < 8000)) await check(`/internal/v1/threads?before=${cursor}`);
    expect(failures).toEqual([]);
  });

  it('leaves every table as it was, and the audit chain whole', async () => {
    expect(await counts(exai)).toEqual(before);
    expect((await verifyAudit(exai.server.services.db)).ok).toBe(true);
    const threads = (await alice.call('conversation_list')).structuredContent as { threads: { turn_count: number }[] };
    expect(threads.threads.map((thread) => thread.turn_count)).toEqual([2, 2]);
  });
});
