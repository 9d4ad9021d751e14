/**
 * Stored files through MCP, as a remote client uses them: it shares no
 * filesystem with the server, so bytes go up as base64. Uploads are
 * content-addressed and deduplicated, listed, described and deleted; any AI
 * tool takes a file id in `files`; smart_file_query sends a small file inline
 * and has a large one read through the model provider's files API (Kimi and
 * GLM, each its own fake), uploading it once, reusing the id, and uploading
 * again, once, when the provider has lost it.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { systemPrompts } from '../../src/tools/prompts.js';
import { silentLogger, storageBackends } from '../support/backends.js';
import { startAuthExai, textOf, type AuthExai, type McpSession } from '../support/auth-server.js';
import { purgeDeletedFiles } from '../../src/files/file-cleanup.js';
import { startFakeOpenAI, type FakeOpenAI, type RecordedRequest } from '../support/fake-openai.js';

/** EXAI_MAX_FILE_BYTES here: files above it are "large" for smart_file_query. */
const maxFileBytes = 4096;

interface StoredFile {
  file_id: string;
  name: string;
  bucket: string;
  size: number;
  mime_type: string;
  sha256: string;
  created_at: string;
}

interface Message {
  role: string;
  content: string;
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const base64 = (text: string | Buffer) => Buffer.from(text).toString('base64');
const structured = <T>(result: CallToolResult) => result.structuredContent as T;

/** A tool error whose text matches every pattern; returns the text. */
function expectToolError(result: CallToolResult, ...patterns: RegExp[]): string {
  const text = textOf(result);
  expect(result.isError, `expected a tool error, got: ${text}`).toBe(true);
  for (const pattern of patterns) expect(text).toMatch(pattern);
  expect(text).not.toContain('Internal error');
  return text;
}

function expectOk(result: CallToolResult): void {
  expect(result.isError, textOf(result)).toBeFalsy();
}

/** Text of `size` bytes or more, unique to this call, with a line that can be asked about. */
function document(label: string, size: number): string {
  const lines = [`# ${label} ${randomUUID()}`, `The secret word of ${label} is "${label}-${randomUUID().slice(0, 8)}".`];
  for (let line = 1; Buffer.byteLength(lines.join('\n')) < size; line += 1) lines.push(`Line ${line}: the quarterly numbers for ${label} went up.`);
  return `${lines.join('\n')}\n`;
}

const chatRequests = (fake: FakeOpenAI) => fake.requests.filter((request) => request.path.endsWith('/chat/completions'));
const fileRequests = (fake: FakeOpenAI) => fake.requests.filter((request) => request.file !== undefined);
const uploads = (fake: FakeOpenAI) => fileRequests(fake).filter((request) => request.method === 'POST');
const messagesOf = (request: RecordedRequest) => request.body.messages as Message[];

describe.each(storageBackends())('stored files through MCP on $name', (backend) => {
  let kimi: FakeOpenAI;
  let glm: FakeOpenAI;
  let exai: AuthExai;
  let mcp: McpSession;
  let userId: string;
  let root: string;
  let elsewhere: string;

  const upload = async (args: Record<string, unknown>) => mcp.call('file_upload', args);
  async function uploaded(name: string, content: string | Buffer, extra: Record<string, unknown> = {}): Promise<StoredFile & { deduplicated: boolean }> {
    const result = await upload({ name, content_base64: base64(content), ...extra });
    expectOk(result);
    return structured(result);
  }
  const listAll = async () => structured<{ files: StoredFile[] }>(await mcp.call('file_list', { limit: 500 })).files;
  /** The file ids linked to a thread, read as the service. */
  const linkedFiles = async (threadId: string) =>
    (await exai.rows('conversation_files')).filter((row) => row.conversation_id === threadId).map((row) => row.file_id);

  beforeAll(async () => {
    [kimi, glm] = await Promise.all([startFakeOpenAI(), startFakeOpenAI()]);
    root = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'exai-file-tools-root-')));
    elsewhere = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'exai-file-tools-elsewhere-')));
    exai = await startAuthExai(backend, {
      KIMI_API_KEY: 'sk-kimi-file-tools-0123456789',
      KIMI_BASE_URL: kimi.baseUrl,
      GLM_API_KEY: 'sk-glm-file-tools-0123456789',
      GLM_BASE_URL: glm.baseUrl,
      EXAI_ALLOWED_ROOTS: root,
      EXAI_MAX_FILE_BYTES: `${maxFileBytes}`,
    });
    const user = await exai.userWithKey('uploader');
    userId = user.userId;
    mcp = await exai.connect(user.key);
  });

  afterAll(async () => {
    await exai?.close();
    await Promise.all([kimi?.close(), glm?.close()]);
    for (const folder of [root, elsewhere]) if (folder) rmSync(folder, { recursive: true, force: true });
  });

  beforeEach(() => {
    for (const fake of [kimi, glm]) {
      fake.requests.length = 0;
      fake.fallback = { kind: 'answer', content: 'ok' };
    }
  });

  describe('file_upload', () => {
    it('stores base64 content with its real SHA-256, and the same bytes again as the same file', async () => {
      const bytes = Buffer.from(document('upload', 200));
      const first = await uploaded('notes.md', bytes);
      expect(first).toMatchObject({ name: 'notes.md', size: bytes.length, sha256: sha256(bytes), mime_type: 'text/markdown', bucket: 'user-uploads', deduplicated: false });
      expect(first.file_id).toMatch(/^[0-9a-f-]{36}$/);
      // Under another name too: the bytes decide.
      const again = await upload({ name: 'copy-of-notes.md', content_base64: base64(bytes) });
      expectOk(again);
      expect(structured(again)).toMatchObject({ file_id: first.file_id, sha256: first.sha256, deduplicated: true });
      expect(textOf(again)).toMatch(/^Already stored: /);
      expect((await listAll()).filter((file) => file.sha256 === first.sha256)).toHaveLength(1);
    });

    it('stores an empty file and binary bytes exactly', async () => {
      const empty = await uploaded('empty.txt', Buffer.alloc(0));
      expect(empty).toMatchObject({ size: 0, sha256: sha256(Buffer.alloc(0)) });
      const binary = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 10, 13]);
      const stored = await uploaded('blob.bin', binary);
      expect(stored).toMatchObject({ size: binary.length, sha256: sha256(binary), mime_type: 'application/octet-stream' });
      // What the server keeps is those bytes, not a text decoding of them.
      expect((await exai.server.services.files.readBytes(userId, stored.file_id, 1024)).bytes).toEqual(binary);
    });

    it('stores the same bytes sent many times at once as one file', async () => {
      const content = base64(document('concurrent', 100));
      const results = await Promise.all([1, 2, 3, 4, 5].map(() => upload({ name: 'same.txt', content_base64: content })));
      for (const result of results) expectOk(result);
      const answers = results.map((result) => structured<StoredFile & { deduplicated: boolean }>(result));
      expect(new Set(answers.map((answer) => answer.file_id)).size).toBe(1);
      expect(answers.filter((answer) => !answer.deduplicated)).toHaveLength(1);
    });

    it('links an upload to a thread of the caller\'s when given its continuation_id', async () => {
      const thread = structured<{ continuation_id: string }>(await mcp.call('chat', { prompt: 'Start a thread', model: 'glm-4.6' })).continuation_id;
      const file = await uploaded('linked.txt', document('linked', 60), { continuation_id: thread });
      expect(await linkedFiles(thread)).toEqual([file.file_id]);
      expectToolError(await upload({ name: 'x.txt', content_base64: base64('x'), continuation_id: 'not-a-thread' }), /"not-a-thread" is not a conversation id/);
    });

    it('refuses an unknown continuation_id as a missing thread, and stores nothing', async () => {
      const unknown = randomUUID();
      const before = (await listAll()).length;
      expectToolError(await upload({ name: 'orphan.txt', content_base64: base64(document('orphan', 40)), continuation_id: unknown }), new RegExp(`No conversation ${unknown} of yours`));
      expect((await listAll()).length).toBe(before);
    });

    it('refuses what is not base64, saying so, and stores nothing', async () => {
      const before = (await listAll()).length;
      for (const content of ['not base64!', 'YWJj=', 'YW Jj\u00e9==']) {
        expectToolError(await upload({ name: 'bad.txt', content_base64: content }), /content_base64 is not valid base64/);
      }
      expect((await listAll()).length).toBe(before);
    });

    it('refuses both content_base64 and path, and neither', async () => {
      const file = path.join(root, 'both.txt');
      writeFileSync(file, 'both');
      expectToolError(await upload({ name: 'both.txt', content_base64: base64('both'), path: file }), /either content_base64 \(with name\) or path, not both/);
      expectToolError(await upload({ name: 'neither.txt' }), /either content_base64 \(with name\) or path/);
      expectToolError(await upload({ content_base64: base64('no name') }), /name is required with content_base64/);
    });

    it('reads a path under EXAI_ALLOWED_ROOTS, and refuses one outside them', async () => {
      const inside = path.join(root, 'inside.txt');
      writeFileSync(inside, 'inside the root\n');
      const stored = structured<StoredFile>(await upload({ path: inside }));
      expect(stored).toMatchObject({ name: inside, size: 16, sha256: sha256(Buffer.from('inside the root\n')) });

      const outside = path.join(elsewhere, 'outside.txt');
      writeFileSync(outside, 'outside the root\n');
      const before = (await listAll()).length;
      expectToolError(await upload({ path: outside }), /outside the folders exai may read/, /EXAI_ALLOWED_ROOTS/);
      expectToolError(await upload({ path: 'relative/notes.md' }), /not an absolute path/);
      expect((await listAll()).length).toBe(before);
    });

    it('refuses a type the conversation-files bucket does not take, naming the bucket that would', async () => {
      const before = (await listAll()).length;
      const refused = await upload({ name: 'setup.exe', content_base64: base64('MZ\u0000\u0001'), bucket: 'conversation-files' });
      expectToolError(refused, /Bucket conversation-files does not take application\/octet-stream files/, /user-uploads/);
      const declared = await upload({ name: 'clip.mp4', content_base64: base64('not a video'), mime_type: 'video/mp4', bucket: 'conversation-files' });
      expectToolError(declared, /does not take video\/mp4/);
      expect((await listAll()).length).toBe(before);
      // The same bytes go to user-uploads, which takes any type.
      expect(await uploaded('setup.exe', 'MZ\u0000\u0001')).toMatchObject({ bucket: 'user-uploads', deduplicated: false });
      // And the bucket takes what it lists.
      expect(await uploaded('readme.md', document('bucket', 50), { bucket: 'conversation-files' })).toMatchObject({ bucket: 'conversation-files', mime_type: 'text/markdown' });
    });
  });

  describe('file_list, file_info and file_delete', () => {
    it('lists files newest first, a page at a time, and describes one', async () => {
      const made = [];
      for (const index of [1, 2, 3]) made.push(await uploaded(`page-${index}.txt`, document(`page ${index}`, 40)));
      const all = await listAll();
      const ids = all.map((file) => file.file_id);
      expect(ids.slice(0, 3)).toEqual(made.map((file) => file.file_id).reverse());

      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = structured<{ files: StoredFile[]; next_cursor?: string }>(await mcp.call('file_list', { limit: 2, ...(cursor === undefined ? {} : { cursor }) }));
        expect(page.files.length).toBeLessThanOrEqual(2);
        seen.push(...page.files.map((file) => file.file_id));
        cursor = page.next_cursor;
        pages += 1;
      } while (cursor !== undefined);
      expect(seen).toEqual(ids);
      expect(pages).toBe(Math.ceil(ids.length / 2));
      expectToolError(await mcp.call('file_list', { cursor: 'bm90IGEgY3Vyc29y' }), /cursor is not one this server gave out/);

      const info = await mcp.call('file_info', { file_id: made[1]!.file_id });
      expectOk(info);
      const { deduplicated: _, ...shown } = made[1]!;
      expect(structured(info)).toEqual(shown);
      expect(textOf(info)).toContain(made[1]!.file_id);
    });

    it('deletes a file: gone from the list and from file_info, and a second delete is not found', async () => {
      const text = document('doomed', 30);
      const file = await uploaded('doomed.txt', text);
      const deleted = await mcp.call('file_delete', { file_id: file.file_id });
      expectOk(deleted);
      expect(structured(deleted)).toEqual({ file_id: file.file_id, deleted: true });
      expect((await listAll()).map((listed) => listed.file_id)).not.toContain(file.file_id);
      expectToolError(await mcp.call('file_info', { file_id: file.file_id }), new RegExp(`No file ${file.file_id}: it does not exist`));
      expectToolError(await mcp.call('file_delete', { file_id: file.file_id }), new RegExp(`No file ${file.file_id}: it does not exist`));
      // A tool that names it now is refused, and asks no model.
      expectToolError(await mcp.call('chat', { prompt: 'Read it', files: [file.file_id], model: 'glm-4.6' }), /No file/);
      expect(chatRequests(glm)).toHaveLength(0);
      // Uploading the bytes again stores them afresh, under a new id.
      const revived = await uploaded('doomed.txt', text);
      expect(revived).toMatchObject({ deduplicated: false, sha256: file.sha256 });
      expect(revived.file_id).not.toBe(file.file_id);
      const audit = (await exai.rows('audit_log')).filter((row) => row.action === 'file.delete' && row.target === `file:${file.file_id}`);
      expect(audit).toHaveLength(1);
    });

    it("leaves a deleted file out of a thread's later turns, saying why", async () => {
      const file = await uploaded('history.md', document('history', 80));
      const thread = structured<{ continuation_id: string }>(await mcp.call('chat', { prompt: 'Read this', files: [file.file_id], model: 'glm-4.6' })).continuation_id;
      expectOk(await mcp.call('file_delete', { file_id: file.file_id }));
      const later = await mcp.call('chat', { prompt: 'And now?', continuation_id: thread });
      expectOk(later);
      const reason = `No file ${file.file_id}: it does not exist, was deleted, or belongs to someone else. file_list shows your files`;
      expect(structured<{ files: unknown }>(later).files).toEqual({ embedded: [], skipped: [{ path: file.file_id, reason }] });
      expect(textOf(later)).toContain(`Note: File ${file.file_id} was not sent: ${reason}.\n`);
      expect(messagesOf(chatRequests(glm).at(-1)!).at(-1)).toEqual({ role: 'user', content: 'And now?' });
    });

    it('refuses an id that is not one, and answers an unknown id as not found', async () => {
      expectToolError(await mcp.call('file_info', { file_id: 'notes.md' }), /is not a file id/);
      const unknown = randomUUID();
      expectToolError(await mcp.call('file_info', { file_id: unknown }), new RegExp(`No file ${unknown}`));
      expectToolError(await mcp.call('file_delete', { file_id: unknown }), new RegExp(`No file ${unknown}`));
    });
  });

  describe('file ids in the AI tools', () => {
    it("chat sends the file's text in the prompt and links the file to the thread", async () => {
      const text = document('chat', 300);
      const file = await uploaded('design.md', text);
      glm.script({ kind: 'answer', content: 'Read it.' });
      const result = await mcp.call('chat', { prompt: 'What does the design say?', files: [file.file_id], model: 'glm-4.6' });
      expectOk(result);
      const answer = structured<{ continuation_id: string; files: { embedded: string[]; skipped: unknown[] } }>(result);
      const shown = `design.md (file ${file.file_id})`;
      expect(answer.files).toEqual({ embedded: [shown], skipped: [] });
      const [request] = chatRequests(glm);
      expect(messagesOf(request!).at(-1)).toEqual({
        role: 'user',
        content: `What does the design say?\n\nFiles for reference:\n\n--- BEGIN FILE: ${shown} ---\n${text}--- END FILE: ${shown} ---`,
      });
      expect(await linkedFiles(answer.continuation_id)).toEqual([file.file_id]);
      expect(await exai.server.services.files.conversationFiles(userId, answer.continuation_id)).toEqual([expect.objectContaining({ id: file.file_id })]);
    });

    it('chat refuses a stored file over EXAI_MAX_FILE_BYTES, pointing at smart_file_query', async () => {
      const file = await uploaded('huge.txt', document('huge', maxFileBytes + 100));
      expectToolError(await mcp.call('chat', { prompt: 'Summarise', files: [file.file_id], model: 'glm-4.6' }), /EXAI_MAX_FILE_BYTES/, /smart_file_query/);
      expect(chatRequests(glm)).toHaveLength(0);
    });
  });

  describe('smart_file_query', () => {
    it('answers about a small file inline', async () => {
      const text = document('small', 500);
      const file = await uploaded('small.txt', text);
      kimi.script({ kind: 'answer', content: 'The numbers went up.' });
      const result = await mcp.call('smart_file_query', { file_id: file.file_id, question: 'Did the numbers go up?', model: 'kimi-k2-0905-preview' });
      expectOk(result);
      const answer = structured<{ via: string; file_id: string; content: string; continuation_id: string }>(result);
      expect(answer).toMatchObject({ via: 'inline', file_id: file.file_id, content: 'The numbers went up.' });
      expect(fileRequests(kimi)).toEqual([]);
      const [request] = chatRequests(kimi);
      const messages = messagesOf(request!);
      expect(messages[0]).toEqual({ role: 'system', content: systemPrompts.smartFileQuery });
      expect(messages.at(-1)!.content).toContain(text);
      expect(await linkedFiles(answer.continuation_id)).toEqual([file.file_id]);
    });

    it('reads a small document that is not text (a .docx) through the files API, not inline', async () => {
      const bytes = Buffer.from(`PK\u0003\u0004 a small word document ${randomUUID()}`);
      const file = await uploaded('memo.docx', bytes);
      expect(file.mime_type).toBe('application/vnd.openxmlformats-officedocument.wordprocessingml.document');
      expect(file.size).toBeLessThan(maxFileBytes);
      const result = await mcp.call('smart_file_query', { file_id: file.file_id, question: 'What does the memo say?', model: 'kimi-k2-0905-preview' });
      expectOk(result);
      expect(structured(result)).toMatchObject({ via: 'provider_file', uploaded: true });
      expect(uploads(kimi).map((request) => request.file)).toEqual([expect.objectContaining({ filename: 'memo.docx', size: bytes.length, purpose: 'file-extract' })]);
    });

    it("cuts a document to the model's file budget, and says so", async () => {
      // moonshot-v1-8k: an 8k context, so about 1,500 tokens of file.
      const file = await uploaded('long.txt', document('long', 32 * 1024));
      const result = await mcp.call('smart_file_query', { file_id: file.file_id, question: 'Summarise', model: 'moonshot-v1-8k' });
      expectOk(result);
      expect(structured(result)).toMatchObject({ via: 'provider_file', truncated: true, model: 'moonshot-v1-8k' });
      const system = messagesOf(chatRequests(kimi)[0]!)[0]!.content;
      expect(system.startsWith(systemPrompts.smartFileQuery)).toBe(true);
      expect(system).toMatch(/\[… the rest of the document did not fit the model's context …\]$/);
      expect(system.length).toBeLessThan(16 * 1024);
    });

    it('answers an unknown file id as not found, asking no model', async () => {
      const unknown = randomUUID();
      expectToolError(await mcp.call('smart_file_query', { file_id: unknown, question: 'What is in it?', model: 'kimi-k2-0905-preview' }), new RegExp(`No file ${unknown}`));
      expect(kimi.requests).toEqual([]);
    });

    describe.each([
      { provider: 'kimi', model: 'kimi-k2-0905-preview', fakeOf: () => kimi, otherOf: () => glm },
      { provider: 'glm', model: 'glm-4.6', fakeOf: () => glm, otherOf: () => kimi },
    ])("a large file through $provider's files API", ({ provider, model, fakeOf, otherOf }) => {
      let text: string;
      let file: StoredFile;
      let firstProviderId: string;

      interface Answer {
        via: string;
        file_id: string;
        provider_file_id: string;
        uploaded: boolean;
        content: string;
        continuation_id: string;
        provider: string;
      }

      async function ask(question: string): Promise<Answer> {
        const result = await mcp.call('smart_file_query', { file_id: file.file_id, question, model });
        expectOk(result);
        return structured<Answer>(result);
      }

      /** The system message of the one chat request: the prompt, then the document as the provider extracted it. */
      function documentSent(): string {
        const chats = chatRequests(fakeOf());
        expect(chats).toHaveLength(1);
        const system = messagesOf(chats[0]!)[0]!;
        expect(system.role).toBe('system');
        const head = `${systemPrompts.smartFileQuery}\n\nThe document "big-${provider}.txt" (file ${file.file_id}):\n\n`;
        expect(system.content.startsWith(head)).toBe(true);
        return system.content.slice(head.length);
      }

      const providerRows = async () =>
        (await exai.rows('provider_files')).filter((row) => row.file_id === file.file_id).map((row) => ({ provider: row.provider, id: row.provider_file_id }));

      beforeAll(async () => {
        text = document(`big ${provider}`, maxFileBytes * 2);
        file = await uploaded(`big-${provider}.txt`, text);
        expect(file.size).toBeGreaterThan(maxFileBytes);
      });

      it('uploads it for extraction, reads back the content and puts it in the system message', async () => {
        fakeOf().script({ kind: 'answer', content: 'They went up.' });
        const answer = await ask('Did the numbers go up?');
        expect(answer).toMatchObject({ via: 'provider_file', file_id: file.file_id, uploaded: true, content: 'They went up.', provider });
        firstProviderId = answer.provider_file_id;
        const files = fileRequests(fakeOf());
        expect(files.map((request) => `${request.method} ${request.path}`)).toEqual(['POST /v1/files', `GET /v1/files/${firstProviderId}/content`]);
        expect(files[0]!.file).toMatchObject({ id: firstProviderId, purpose: 'file-extract', filename: `big-${provider}.txt`, size: Buffer.byteLength(text), mimeType: 'text/plain' });
        expect(fakeOf().files.get(firstProviderId)!.bytes.toString('utf8')).toBe(text);
        // What the provider extracted (the fake's JSON, as Kimi sends it) is the document the model reads.
        expect((JSON.parse(documentSent()) as { content: string }).content).toBe(text);
        expect(otherOf().requests).toEqual([]);
        expect(await providerRows()).toEqual([{ provider, id: firstProviderId }]);
        expect(await linkedFiles(answer.continuation_id)).toEqual([file.file_id]);
      });

      it('reuses the provider file id when asked again', async () => {
        const answer = await ask('And the secret word?');
        expect(answer).toMatchObject({ via: 'provider_file', uploaded: false, provider_file_id: firstProviderId });
        expect(uploads(fakeOf())).toEqual([]);
        expect(fileRequests(fakeOf()).map((request) => `${request.method} ${request.path}`)).toEqual([`GET /v1/files/${firstProviderId}/content`]);
        expect((JSON.parse(documentSent()) as { content: string }).content).toBe(text);
      });

      it('reuses it for the same bytes uploaded again, which are the same file', async () => {
        const again = await uploaded(`big-${provider}-again.txt`, text);
        expect(again).toMatchObject({ file_id: file.file_id, deduplicated: true });
        const answer = await ask('Once more?');
        expect(answer).toMatchObject({ uploaded: false, provider_file_id: firstProviderId });
        expect(uploads(fakeOf())).toEqual([]);
      });

      it('uploads it again, once, when the provider has lost the id, and answers', async () => {
        expect(fakeOf().forgetFile(firstProviderId)).toBe(true);
        fakeOf().script({ kind: 'answer', content: 'Still up.' });
        const answer = await ask('Still up?');
        expect(answer).toMatchObject({ via: 'provider_file', uploaded: true, content: 'Still up.' });
        expect(answer.provider_file_id).not.toBe(firstProviderId);
        expect(fileRequests(fakeOf()).map((request) => `${request.method} ${request.path}`)).toEqual([
          `GET /v1/files/${firstProviderId}/content`,
          'POST /v1/files',
          `GET /v1/files/${answer.provider_file_id}/content`,
        ]);
        expect((JSON.parse(documentSent()) as { content: string }).content).toBe(text);
        expect(await providerRows()).toEqual([{ provider, id: answer.provider_file_id }]);

        // And the new id is the one reused from then on.
        fakeOf().requests.length = 0;
        expect(await ask('And now?')).toMatchObject({ uploaded: false, provider_file_id: answer.provider_file_id });
        expect(uploads(fakeOf())).toEqual([]);
      });
    });

    it('keeps one provider file id per provider for the same file', async () => {
      const file = await uploaded('both-providers.txt', document('both', maxFileBytes + 500));
      const kimiAnswer = structured<{ provider_file_id: string; uploaded: boolean }>(
        await mcp.call('smart_file_query', { file_id: file.file_id, question: 'Kimi?', model: 'kimi-k2-0905-preview' }),
      );
      const glmAnswer = structured<{ provider_file_id: string; uploaded: boolean }>(await mcp.call('smart_file_query', { file_id: file.file_id, question: 'GLM?', model: 'glm-4.6' }));
      expect([kimiAnswer.uploaded, glmAnswer.uploaded]).toEqual([true, true]);
      expect(uploads(kimi)).toHaveLength(1);
      expect(uploads(glm)).toHaveLength(1);
      const rows = (await exai.rows('provider_files')).filter((row) => row.file_id === file.file_id).map((row) => `${row.provider}:${row.provider_file_id}`);
      expect(rows.sort()).toEqual([`glm:${glmAnswer.provider_file_id}`, `kimi:${kimiAnswer.provider_file_id}`]);
      // Deleted and purged, the file is deleted at both providers too.
      expect(kimi.files.has(kimiAnswer.provider_file_id) && glm.files.has(glmAnswer.provider_file_id)).toBe(true);
      await mcp.call('file_delete', { file_id: file.file_id });
      const { services } = exai.server;
      await purgeDeletedFiles({ db: services.db, store: services.files.store, providerFiles: services.providerFiles, logger: silentLogger }, { graceMs: 0 });
      expect(kimi.files.has(kimiAnswer.provider_file_id)).toBe(false);
      expect(glm.files.has(glmAnswer.provider_file_id)).toBe(false);
      expect((await exai.rows('provider_files')).filter((row) => row.file_id === file.file_id)).toEqual([]);
    });
  });
});
