/**
 * Users are isolated through the API: with her own key, Bob can neither see
 * nor touch Alice's threads, stored files, model calls or MCP session, nor
 * find them by search, and
 * every answer he gets for one of her ids is the answer for an id nobody has
 * (no existence oracle). Per-tool scopes are enforced. Real server, real databases, fake
 * provider.
 */
import { randomUUID } from 'node:crypto';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asService } from '../../src/db/session.js';
import type { Database } from '../../src/db/types.js';
import { countPendingFileWork } from '../../src/search/file-indexer.js';
import { countPending } from '../../src/search/indexer.js';
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

interface FileView {
  file_id: string;
  sha256: string;
  deduplicated?: boolean;
}

/** Stored objects the file processing job has not processed (text extraction) yet. */
async function unprocessed(db: Database): Promise<number> {
  const counted = await asService(db, (tx) => tx.query<{ n: number }>('SELECT count(*)::int AS n FROM exai.file_objects WHERE processed_at IS NULL'));
  return counted.rows[0]!.n;
}

const base64 = (text: string) => Buffer.from(text).toString('base64');

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
    /** Alice's stored files as file_upload described them, and what they hold. */
    const aliceFiles: (FileView & { content: string })[] = [];
    let bobFile: FileView;

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
      // Alice's files: one linked to her first thread; Bob has one of his own.
      for (const [name, content, extra] of [
        ['alice-plan.md', 'Alice: the private plan\n', { continuation_id: first }],
        ['alice-notes.txt', 'Alice: private notes\n', {}],
      ] as const) {
        const uploaded = await aliceMcp.call('file_upload', { name, content_base64: base64(content), ...extra });
        expect(uploaded.isError, textOf(uploaded)).toBeFalsy();
        aliceFiles.push({ ...structured<FileView>(uploaded), content });
      }
      const bobs = await bobMcp.call('file_upload', { name: 'bob.txt', content_base64: base64('Bob: his own file\n') });
      expect(bobs.isError, textOf(bobs)).toBeFalsy();
      bobFile = structured<FileView>(bobs);
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

    it("finds Alice's threads, by her messages and by her linked file's text, for her and never for Bob", async () => {
      const { services } = exai.server;
      const model = services.search.embedder.model;
      // The jobs process the file and embed turns and chunks after the calls: wait for them.
      const deadline = Date.now() + 30_000;
      const pending = async () => (await countPending(services.db, model)) + (await countPendingFileWork(services.db, model)) + (await unprocessed(services.db));
      while ((await pending()) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await pending()).toBe(0);
      const [first] = [...aliceThreads.keys()];
      type Found = { results: { continuation_id: string; file?: string }[] };
      const byFile = structured<Found>(await aliceMcp.call('conversation_search', { query: 'private plan' })).results;
      expect(byFile.find((result) => result.file === 'alice-plan.md')?.continuation_id).toBe(first);
      const byMessage = structured<Found>(await aliceMcp.call('conversation_search', { query: 'queue or log' })).results;
      expect(byMessage.map((result) => result.continuation_id)).toContain(first);
      for (const query of ['private plan', 'queue or log', 'Alice second thread']) {
        const bobs = structured<Found>(await bobMcp.call('conversation_search', { query })).results;
        for (const id of aliceThreads.keys()) expect(bobs.map((result) => result.continuation_id)).not.toContain(id);
      }
      for (const id of aliceThreads.keys()) {
        expect(await answersLikeUnknown((target) => bobMcp.call('conversation_search', { similar_to: target }), id)).toMatch(/^No conversation/);
        const within = structured<Found>(await bobMcp.call('conversation_search', { query: 'Alice', continuation_id: id })).results;
        expect(within).toEqual([]);
      }
    });

    it("lists none of Alice's files to Bob, even given a cursor from her listing", async () => {
      const listed = (result: CallToolResult) => structured<{ files: FileView[]; next_cursor?: string }>(result);
      expect(listed(await bobMcp.call('file_list', {})).files.map((file) => file.file_id)).toEqual([bobFile.file_id]);
      const alicePage = listed(await aliceMcp.call('file_list', { limit: 1 }));
      expect(alicePage.next_cursor).toBeDefined();
      const paged = listed(await bobMcp.call('file_list', { cursor: alicePage.next_cursor }));
      for (const file of aliceFiles) expect(paged.files.map((shown) => shown.file_id)).not.toContain(file.file_id);
    });

    it("answers Bob's file_info, file_delete and smart_file_query on her files exactly like an unknown id, asking no model", async () => {
      const before = fake.requests.length;
      for (const { file_id: id } of aliceFiles) {
        expect(await answersLikeUnknown((target) => bobMcp.call('file_info', { file_id: target }), id)).toMatch(/^No file .*: it does not exist/);
        expect(await answersLikeUnknown((target) => bobMcp.call('file_delete', { file_id: target }), id)).toMatch(/^No file .*: it does not exist/);
        const query = (target: string) => bobMcp.call('smart_file_query', { file_id: target, question: 'What does it say?', model: 'glm-4.6' });
        expect(await answersLikeUnknown(query, id)).toMatch(/^No file .*: it does not exist/);
      }
      expect(fake.requests.length).toBe(before);
    });

    it('answers a chat of Bob\'s naming her file exactly like an unknown id, sending nothing to a model', async () => {
      const before = fake.requests.length;
      for (const { file_id: id } of aliceFiles) {
        const text = await answersLikeUnknown((target) => bobMcp.call('chat', { prompt: 'Bob: read this', files: [target], model: 'glm-4.6' }), id);
        expect(text).toMatch(/^No file .*: it does not exist/);
        // Not even alongside a file of his own, nor to link hers into a thread of his.
        const mixed = (target: string) => bobMcp.call('chat', { prompt: 'Bob: read both', files: [bobFile.file_id, target], model: 'glm-4.6' });
        expect(await answersLikeUnknown(mixed, id)).toMatch(/^No file .*: it does not exist/);
      }
      expect(fake.requests.length).toBe(before);
    });

    it("answers Bob linking a file into her thread exactly like an unknown thread, linking nothing", async () => {
      const [thread] = aliceThreads.keys();
      const links = async () => (await exai.rows('conversation_files')).filter((row) => row.conversation_id === thread);
      const linkedBefore = await links();
      const upload = (target: string) => bobMcp.call('file_upload', { name: 'bob-intrusion.txt', content_base64: base64(`Bob: intrusion ${randomUUID()}`), continuation_id: target });
      await answersLikeUnknown(upload, thread!);
      expect(await links()).toEqual(linkedBefore);
    });

    it("gives Bob his own file for the same bytes as hers, without telling him hers exist", async () => {
      const [mine] = aliceFiles;
      const result = await bobMcp.call('file_upload', { name: 'copy.md', content_base64: base64(mine!.content) });
      expect(result.isError, textOf(result)).toBeFalsy();
      const copy = structured<FileView>(result);
      expect(copy).toMatchObject({ sha256: mine!.sha256, deduplicated: false });
      expect(copy.file_id).not.toBe(mine!.file_id);
      expect(textOf(result)).toMatch(/^Stored: /);
      // Deleting his copy leaves hers alone.
      expect((await bobMcp.call('file_delete', { file_id: copy.file_id })).isError).toBeFalsy();
      expect((await aliceMcp.call('file_info', { file_id: mine!.file_id })).isError).toBeFalsy();
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

    it("leaves Alice's files as they were, still linked to her thread", async () => {
      const listed = structured<{ files: FileView[] }>(await aliceMcp.call('file_list', {})).files;
      expect(new Set(listed.map((file) => file.file_id))).toEqual(new Set(aliceFiles.map((file) => file.file_id)));
      for (const file of aliceFiles) expect(listed.find((shown) => shown.file_id === file.file_id)!.sha256).toBe(file.sha256);
      const [thread] = aliceThreads.keys();
      const links = (await exai.rows('conversation_files')).filter((row) => row.conversation_id === thread).map((row) => row.file_id);
      expect(links).toEqual([aliceFiles[0]!.file_id]);
      // And she can still use them.
      const before = fake.requests.length;
      const read = await aliceMcp.call('chat', { prompt: 'Alice: read my notes', files: [aliceFiles[1]!.file_id], model: 'glm-4.6' });
      expect(read.isError, textOf(read)).toBeFalsy();
      expect(JSON.stringify(fake.requests[before]!.body.messages)).toContain('Alice: private notes');
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
        ['file_upload', { name: 'a.txt', content_base64: 'YQ==' }, 'files:write'],
        ['file_delete', { file_id: randomUUID() }, 'files:write'],
        ['smart_file_query', { file_id: randomUUID(), question: 'q', model: 'glm-4.6' }, 'conversations:write'],
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
