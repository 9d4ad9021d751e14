/**
 * Users are isolated through the API: with her own key, Bob can neither see
 * nor touch Alice's threads, model calls or MCP session, and every answer he
 * gets for one of her ids is the answer for an id nobody has (no existence
 * oracle). Per-tool scopes are enforced. Real server, real databases, fake
 * provider.
 */
import { randomUUID } from 'node:crypto';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageBackends } from '../support/backends.js';
import { mcpHeaders, startAuthExai, textOf, type AuthExai, type McpSession } from '../support/auth-server.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';

interface Turn {
  seq: number;
  role: string;
  content: string;
}

interface CallRecordView {
  userId: string | null;
}

const structured = <T>(result: CallToolResult) => result.structuredContent as T;

/** Calls `call` with Alice's id and with a fresh uuid: the two answers must be the same, ids aside. */
async function answersLikeUnknown(call: (id: string) => Promise<CallToolResult>, foreignId: string): Promise<string> {
  const unknownId = randomUUID();
  const foreign = await call(foreignId);
  const unknown = await call(unknownId);
  expect(foreign.isError, textOf(foreign)).toBe(true);
  const normalised = (result: CallToolResult, id: string) => JSON.stringify(result).replaceAll(id, '<id>');
  expect(normalised(foreign, foreignId)).toBe(normalised(unknown, unknownId));
  return textOf(foreign);
}

/** A raw MCP request on a session id; returns status and body. */
async function onSession(exai: AuthExai, key: string, sessionId: string, method: 'POST' | 'GET' | 'DELETE') {
  const headers: Record<string, string> = { accept: mcpHeaders.accept, authorization: `Bearer ${key}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' };
  const post = { headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list', params: {} }) };
  const response = await exai.raw('/mcp', { method, ...(method === 'POST' ? post : { headers }) });
  return { status: response.status, body: response.text };
}

/** tools/call over raw HTTP on a session, with this credential; the JSON-RPC message that answers it. */
async function callOnSession(exai: AuthExai, key: string, sessionId: string, name: string, args: Record<string, unknown>) {
  const response = await exai.raw('/mcp', {
    method: 'POST',
    headers: { ...mcpHeaders, authorization: `Bearer ${key}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name, arguments: args } }),
  });
  expect(response.status, response.text).toBe(200);
  // The answer comes as one server-sent event (or plain JSON).
  const payload = response.text.startsWith('{') ? response.text : response.text.split('\n').find((line) => line.startsWith('data: '))!.slice('data: '.length);
  return JSON.parse(payload) as { result?: CallToolResult; error?: { message: string } };
}

describe.each(storageBackends())('users and scopes, through MCP, on $name', (backend) => {
  let fake: FakeOpenAI;
  let exai: AuthExai;

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    exai = await startAuthExai(backend, { GLM_API_KEY: 'sk-glm-isolation-0123456789', GLM_BASE_URL: fake.baseUrl });
  });

  afterAll(async () => {
    await exai?.close();
    await fake?.close();
  });

  describe('isolation between users', () => {
    let alice: { userId: string; key: string };
    let bob: { userId: string; key: string };
    let aliceMcp: McpSession;
    let bobMcp: McpSession;
    /** Alice's threads and their turns as she saw them after writing them. */
    const aliceThreads = new Map<string, Turn[]>();

    const turnsOf = async (session: McpSession, id: string) => structured<{ turns: Turn[] }>(await session.call('conversation_get', { continuation_id: id })).turns;

    beforeAll(async () => {
      alice = await exai.userWithKey('alice');
      bob = await exai.userWithKey('bob');
      aliceMcp = await exai.connect(alice.key);
      bobMcp = await exai.connect(bob.key);
      fake.fallback = { kind: 'answer', content: 'Alice, use a queue.' };
      const first = structured<{ continuation_id: string }>(await aliceMcp.call('chat', { prompt: 'Alice: queue or log?', model: 'glm-4.6' })).continuation_id;
      await aliceMcp.call('chat', { prompt: 'Alice: and why?', continuation_id: first });
      const second = structured<{ continuation_id: string }>(await aliceMcp.call('chat', { prompt: 'Alice: second thread', model: 'glm-4.6' })).continuation_id;
      for (const id of [first, second]) aliceThreads.set(id, await turnsOf(aliceMcp, id));
      // Bob has a thread of his own, so his listing is not empty by accident.
      fake.fallback = { kind: 'answer', content: 'Bob, use a log.' };
      await bobMcp.call('chat', { prompt: 'Bob: my own question', model: 'glm-4.6' });
    });

    it('wrote what Alice asked', () => {
      expect([...aliceThreads.values()].map((turns) => turns.length)).toEqual([4, 2]);
    });

    it("lists none of Alice's threads to Bob, even given a cursor from her listing", async () => {
      const listed = structured<{ threads: { continuation_id: string }[] }>(await bobMcp.call('conversation_list', {})).threads.map((thread) => thread.continuation_id);
      expect(listed).toHaveLength(1);
      for (const id of aliceThreads.keys()) expect(listed).not.toContain(id);
      const alicePage = structured<{ next_cursor?: string }>(await aliceMcp.call('conversation_list', { limit: 1 }));
      expect(alicePage.next_cursor).toBeDefined();
      const paged = structured<{ threads: { continuation_id: string }[] }>(await bobMcp.call('conversation_list', { cursor: alicePage.next_cursor }));
      for (const thread of paged.threads) expect(aliceThreads.has(thread.continuation_id)).toBe(false);
    });

    it("answers Bob's conversation_get on her thread exactly like an unknown id", async () => {
      for (const id of aliceThreads.keys()) {
        const text = await answersLikeUnknown((target) => bobMcp.call('conversation_get', { continuation_id: target }), id);
        expect(text).toMatch(/^No conversation with continuation_id .* was found/);
      }
    });

    it("answers Bob's chat continuing her thread exactly like an unknown id, asking no model", async () => {
      const before = fake.requests.length;
      const [id] = aliceThreads.keys();
      const text = await answersLikeUnknown((target) => bobMcp.call('chat', { prompt: 'Bob: show me', continuation_id: target }), id!);
      expect(text).toMatch(/No conversation with continuation_id/);
      expect(fake.requests.length).toBe(before);
    });

    it("answers Bob's conversation_delete on her thread exactly like an unknown id", async () => {
      for (const id of aliceThreads.keys()) {
        const text = await answersLikeUnknown((target) => bobMcp.call('conversation_delete', { continuation_id: target }), id);
        expect(text).toMatch(/No conversation with continuation_id/);
      }
    });

    it("shows Bob only his own model calls; an admin key sees everyone's", async () => {
      const usersIn = (result: CallToolResult) => new Set(structured<{ recent_calls: CallRecordView[] }>(result).recent_calls.map((call) => call.userId));
      expect(usersIn(await aliceMcp.call('listmodels'))).toEqual(new Set([alice.userId]));
      expect(usersIn(await bobMcp.call('listmodels'))).toEqual(new Set([bob.userId]));
      expect(usersIn(await bobMcp.call('version'))).toEqual(new Set([bob.userId]));
      const bobAdminKey = (await exai.admin('keys.create', { user: 'bob', scopes: ['tools:call', 'admin'] })).key;
      const bobAdmin = await exai.connect(bobAdminKey);
      expect(usersIn(await bobAdmin.call('listmodels'))).toEqual(new Set([alice.userId, bob.userId]));
      expect(usersIn(await bobAdmin.call('version'))).toEqual(new Set([alice.userId, bob.userId]));
    });

    it("answers Bob on Alice's MCP session exactly like an unknown session, and leaves her session alone", async () => {
      for (const method of ['POST', 'GET', 'DELETE'] as const) {
        const foreign = await onSession(exai, bob.key, aliceMcp.sessionId, method);
        const unknown = await onSession(exai, bob.key, randomUUID(), method);
        expect(foreign.status, `${method}: ${foreign.body}`).toBe(404);
        expect(foreign).toEqual(unknown);
      }
      // Bob's DELETE did not end it: Alice's session still answers.
      expect((await aliceMcp.call('listmodels')).isError).toBeFalsy();
    });

    it("leaves Alice's threads as they were", async () => {
      const listed = structured<{ threads: { continuation_id: string }[] }>(await aliceMcp.call('conversation_list', {})).threads.map((thread) => thread.continuation_id);
      expect(new Set(listed)).toEqual(new Set(aliceThreads.keys()));
      for (const [id, turns] of aliceThreads) expect(await turnsOf(aliceMcp, id)).toEqual(turns);
    });
  });

  describe('per-tool scopes', () => {
    it('lets a tools:call-only key call listmodels, and names the missing scope for the others', async () => {
      const { key } = await exai.userWithKey('carol', ['tools:call']);
      const carol = await exai.connect(key);
      const asked = fake.requests.length;
      expect((await carol.call('listmodels')).isError).toBeFalsy();
      const refusals: [string, Record<string, unknown>, string][] = [
        ['chat', { prompt: 'hello', model: 'glm-4.6' }, 'conversations:write'],
        ['conversation_list', {}, 'conversations:read'],
        ['conversation_get', { continuation_id: randomUUID() }, 'conversations:read'],
        ['conversation_delete', { continuation_id: randomUUID() }, 'conversations:write'],
      ];
      for (const [tool, args, scope] of refusals) {
        const result = await carol.call(tool, args);
        expect(result.isError, tool).toBe(true);
        expect(textOf(result)).toContain(`${tool} needs the scope ${scope}`);
      }
      expect(fake.requests.length).toBe(asked);
    });

    it('refuses a key without tools:call at POST /mcp with 403 insufficient_scope', async () => {
      const { key } = await exai.userWithKey('dave', ['conversations:read', 'conversations:write']);
      const response = await exai.raw('/mcp', {
        method: 'POST',
        headers: { ...mcpHeaders, authorization: `Bearer ${key}` },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
      });
      expect(response.status).toBe(403);
      expect(response.headers.get('www-authenticate')).toMatch(/^Bearer .*error="insufficient_scope", scope="tools:call"/);
      expect(JSON.parse(response.text)).toEqual({ error: { code: 'forbidden', message: 'This credential lacks the scope tools:call.' } });
      await expect(exai.connect(key)).rejects.toThrow();
    });

    it('checks scopes against the credential of each request, not the one that opened the session', async () => {
      const { key: broad } = await exai.userWithKey('erin');
      const narrow = (await exai.admin('keys.create', { user: 'erin', scopes: ['tools:call'] })).key;
      const opened = await exai.connect(broad);
      expect((await opened.call('conversation_list')).isError).toBeFalsy();
      const answer = await callOnSession(exai, narrow, opened.sessionId, 'conversation_list', {});
      expect(answer.result?.isError, JSON.stringify(answer)).toBe(true);
      expect(textOf(answer.result!)).toContain('conversation_list needs the scope conversations:read');
    });
  });
});
