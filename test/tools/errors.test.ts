/**
 * The errors users hit, each through the real MCP server (SDK client over
 * Streamable HTTP, server in process) against a fake provider: every one must
 * come back as a tool error (not a JSON-RPC failure, not a hang) that says
 * what went wrong and how to fix it, holds no API key, and leaves nothing
 * stored.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../src/app/server.js';
import { loadConfig } from '../../src/config.js';
import { asService } from '../../src/db/session.js';
import { defaultRetryPolicy } from '../../src/providers/retry.js';
import { ensureUser } from '../../src/users/users.js';
import { silentLogger, storageBackends, waitFor, type StorageBackend, type TestDatabase } from '../support/backends.js';
import { preparedHome } from '../support/cli.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';

/** The GLM key every provider-backed server runs with; no error may show it. */
const apiKey = 'sk-glm-test-secret-5f0c7a91d2e84b36';

/** A call that hangs fails here instead of at the suite's timeout. */
const callTimeoutMs = 30_000;

interface Exai {
  server: RunningServer;
  call(name: string, args: Record<string, unknown>): Promise<CallToolResult>;
  /** Rows in exai.conversations and exai.messages, of every user. */
  stored(): Promise<{ conversations: number; messages: number }>;
  close(): Promise<void>;
}

async function startExai(backend: StorageBackend, env: Record<string, string>): Promise<Exai> {
  const home = await preparedHome();
  const database: TestDatabase | undefined = backend.kind === 'postgres' ? await backend.createDatabase() : undefined;
  const config = loadConfig({ EXAI_HOME: home, EXAI_PORT: '0', EXAI_AUTH: 'local', ...(database === undefined ? {} : backend.env(database)), ...env }, { cwd: home });
  const server = await startServer(config, silentLogger);
  const client = new Client({ name: 'exai-errors-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`)));
  return {
    server,
    // A JSON-RPC error rejects here, and fails the test: every failure must be a tool result.
    call: async (name, args) => (await client.callTool({ name, arguments: args }, undefined, { timeout: callTimeoutMs })) as CallToolResult,
    async stored() {
      const counts = await asService(server.services.db, (tx) =>
        tx.query<{ conversations: number; messages: number }>(
          'SELECT (SELECT count(*)::int FROM exai.conversations) AS conversations, (SELECT count(*)::int FROM exai.messages) AS messages',
        ),
      );
      const row = counts.rows[0]!;
      return { conversations: Number(row.conversations), messages: Number(row.messages) };
    },
    async close() {
      await client.close().catch(() => undefined);
      await server.close();
      await database?.destroy();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

function textOf(result: CallToolResult): string {
  return result.content.map((part) => (part.type === 'text' ? part.text : '')).join('\n');
}

/** A tool error whose text matches every pattern and leaks nothing; returns the text. */
function expectToolError(result: CallToolResult, ...patterns: RegExp[]): string {
  const text = textOf(result);
  expect(result.isError, `expected a tool error, got: ${text}`).toBe(true);
  for (const pattern of patterns) expect(text).toMatch(pattern);
  expect(text).not.toContain(apiKey);
  expect(text).not.toContain('Internal error');
  expect(text).not.toMatch(/\n\s+at .+:\d+:\d+/); // no stack trace
  return text;
}

describe.each(storageBackends())('errors users hit, through MCP, on $name', (backend) => {
  let fake: FakeOpenAI;
  /**
   * GLM against the fake; files only from `root`, at most 1 KiB each. Its
   * circuit opens after 5 failed calls in a row; the cases here fail at most 3
   * in a row (3b, 4, 7a, with successes between), so every call reaches the fake.
   */
  let exai: Exai;
  /** The same, with a 2 s provider timeout. */
  let quick: Exai;
  /** No provider configured at all. */
  let bare: Exai;
  let root: string;
  let elsewhere: string;

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    root = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'exai-errors-root-')));
    elsewhere = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'exai-errors-elsewhere-')));
    const glm = { GLM_API_KEY: apiKey, GLM_BASE_URL: fake.baseUrl, EXAI_ALLOWED_ROOTS: root, EXAI_MAX_FILE_BYTES: '1KiB' };
    exai = await startExai(backend, glm);
    quick = await startExai(backend, { ...glm, EXAI_PROVIDER_TIMEOUT: '2s' });
    bare = await startExai(backend, { EXAI_ALLOWED_ROOTS: root });
  });

  afterAll(async () => {
    await exai?.close();
    await quick?.close();
    await bare?.close();
    await fake?.close();
    for (const folder of [root, elsewhere]) if (folder) rmSync(folder, { recursive: true, force: true });
  });

  beforeEach(() => {
    fake.fallback = { kind: 'answer', content: 'ok' };
  });

  /** Runs `act`, then checks that no model was asked (unless `requests` says how many were) and nothing was stored. */
  async function leavesNothing<T>(server: Exai, act: () => Promise<T>, requests = 0): Promise<T> {
    const before = await server.stored();
    const sent = fake.requests.length;
    const result = await act();
    expect(fake.requests.length - sent).toBe(requests);
    expect(await server.stored()).toEqual(before);
    return result;
  }

  it('1. no provider configured: chat names the variables to set', async () => {
    for (const args of [{ prompt: 'Is this design sound?' }, { prompt: 'Is this design sound?', model: 'glm-4.6' }]) {
      const result = await leavesNothing(bare, () => bare.call('chat', args));
      expectToolError(result, /no provider is configured/, /KIMI_API_KEY/, /GLM_API_KEY/, /OPENAI_COMPAT_BASE_URL/);
    }
  });

  it('2. the provider refuses the key (401): says so, names GLM_API_KEY, does not retry or echo the key', async () => {
    // Providers quote the key they refused; that quote must not reach the caller.
    fake.fallback = { kind: 'error', status: 401, body: { error: { message: `Incorrect API key provided: ${apiKey}`, type: 'invalid_request_error', code: 'invalid_api_key' } } };
    const expert = { step: 'Conclude', step_number: 1, total_steps: 1, next_step_required: false, findings: 'all found' };
    for (const [tool, args] of [['chat', { prompt: 'Review my plan', model: 'glm-4.6' }], ['thinkdeep', { ...expert, model: 'glm-4.6' }]] as const) {
      const result = await leavesNothing(exai, () => exai.call(tool, args), 1);
      expectToolError(result, /glm model glm-4\.6/, /401/, /did not accept the API key/, /GLM_API_KEY/);
    }
  });

  it('3a. rate limited (429) with Retry-After, then an answer: retried after the wait and answered', async () => {
    const before = await exai.stored();
    const sent = fake.requests.length;
    fake.script({ kind: 'error', status: 429, headers: { 'retry-after': '1' } }, { kind: 'answer', content: 'Answered after the wait.' });
    const result = await exai.call('chat', { prompt: 'Which queue should I use?', model: 'glm-4.6' });
    expect(result.isError).toBeFalsy();
    expect(textOf(result)).toContain('Answered after the wait.');
    const [limited, answered] = fake.requests.slice(sent);
    expect(fake.requests.length - sent).toBe(2);
    // Retry-After: 1 s (timers may fire a few ms early; backoff alone would wait at most 500 ms).
    expect(answered!.at - limited!.at).toBeGreaterThanOrEqual(950);
    expect(await exai.stored()).toEqual({ conversations: before.conversations + 1, messages: before.messages + 2 });
  });

  it('3b. rate limited (429) on every attempt: the error says rate limited, after the retries', async () => {
    fake.fallback = { kind: 'error', status: 429, headers: { 'retry-after': '0' } };
    const result = await leavesNothing(exai, () => exai.call('chat', { prompt: 'Which queue should I use?', model: 'glm-4.6' }), defaultRetryPolicy.maxAttempts);
    expectToolError(result, /glm-4\.6/, /rate.limited/i, new RegExp(`${defaultRetryPolicy.maxAttempts} attempts`), /try again/i);
  });

  it('4. the provider fails with 500 on every attempt: an error after the retries', async () => {
    fake.fallback = { kind: 'error', status: 500 };
    const result = await leavesNothing(exai, () => exai.call('chat', { prompt: 'Summarise the risks', model: 'glm-4.6' }), defaultRetryPolicy.maxAttempts);
    expectToolError(result, /glm-4\.6/, /500/, new RegExp(`${defaultRetryPolicy.maxAttempts} attempts`), /try again/i);
  });

  it('5. the provider never answers: the error says it did not finish within 2 s, and the request was aborted', async () => {
    fake.script({ kind: 'hang' });
    const result = await leavesNothing(quick, () => quick.call('chat', { prompt: 'Think hard about this', model: 'glm-4.6' }), 1);
    expectToolError(result, /glm-4\.6/, /did not finish within 2 s/, /EXAI_PROVIDER_TIMEOUT/);
    const hung = fake.requests.at(-1)!;
    await waitFor(() => hung.aborted, 5000, 'the fake provider to see its request aborted');
  });

  it('6a. a stream of malformed JSON: a clear provider error', async () => {
    fake.script({ kind: 'raw', body: 'data: {not json\n\ndata: [DONE]\n\n' });
    const result = await leavesNothing(exai, () => exai.call('chat', { prompt: 'Explain the bug', model: 'glm-4.6' }), 1);
    expectToolError(result, /glm model glm-4\.6 sent a malformed reply/, /not valid JSON/, /GLM_BASE_URL/);
  });

  it('6b. a reply that is no event stream at all (an HTML error page with 200): an error, not an empty answer', async () => {
    fake.script({ kind: 'raw', contentType: 'text/html', body: '<html><body><h1>502 Bad Gateway</h1></body></html>' });
    const result = await leavesNothing(exai, () => exai.call('chat', { prompt: 'Explain the bug', model: 'glm-4.6' }), 1);
    expectToolError(result, /glm model glm-4\.6 answered with text\/html instead of a stream/, /GLM_BASE_URL/);
  });

  it('7a. the connection breaks off mid-answer: a clear error, not retried, and no partial answer stored', async () => {
    fake.script({ kind: 'cut', content: 'The first half of an answer that never ends.', chunks: 3 });
    const result = await leavesNothing(exai, () => exai.call('chat', { prompt: 'Tell me everything', model: 'glm-4.6' }), 1);
    expectToolError(result, /glm model glm-4\.6/, /the connection broke off in the middle of the answer/, /try again/i);
  });

  it('7b. the stream ends early without finishing (no finish_reason, no [DONE]): an error, and no partial answer stored', async () => {
    fake.script({ kind: 'cut', content: 'The first half of an answer that never ends.', chunks: 3, end: 'close' });
    const result = await leavesNothing(exai, () => exai.call('chat', { prompt: 'Tell me everything', model: 'glm-4.6' }), 1);
    const text = expectToolError(result, /glm model glm-4\.6 stopped in the middle of its answer/, /incomplete/, /try again/i);
    expect(text).not.toContain('The first half of');
  });

  it('8. an unknown model: the error lists the available models, and no model is asked', async () => {
    const result = await leavesNothing(exai, () => exai.call('chat', { prompt: 'hi', model: 'gpt-9' }));
    expectToolError(result, /Model "gpt-9" is not available/, /Available: .*glm-4\.6/, /glm-4\.5-air/);
  });

  it("9. an unknown continuation_id and another user's read the same; a malformed one is an invalid argument", async () => {
    const db = exai.server.services.db;
    const mallory = await ensureUser(db, 'mallory');
    const foreign = await exai.server.services.conversations.createThread(mallory.id, { toolName: 'chat', title: 'private' });
    await exai.server.services.conversations.appendTurn(mallory.id, foreign.id, { role: 'user', content: 'a secret plan', toolName: 'chat' });
    const unknown = randomUUID();

    const shown = async (tool: string, args: Record<string, unknown>, id: string) => {
      const result = await leavesNothing(exai, () => exai.call(tool, { ...args, continuation_id: id }));
      return expectToolError(result, new RegExp(id)).replaceAll(id, '<id>');
    };
    const chat = { prompt: 'Go on', model: 'glm-4.6' };
    const unknownText = await shown('chat', chat, unknown);
    expect(unknownText).toMatch(/No conversation with continuation_id <id> was found/);
    expect(await shown('chat', chat, foreign.id)).toBe(unknownText);
    // A step tool continuing a thread says the same.
    const step = { step: 'Look further', step_number: 2, total_steps: 3, next_step_required: true, findings: 'none yet' };
    expect(await shown('thinkdeep', step, foreign.id)).toBe(await shown('thinkdeep', step, unknown));

    const malformed = await leavesNothing(exai, () => exai.call('chat', { ...chat, continuation_id: 'not-a-thread' }));
    expectToolError(malformed, /continuation_id "not-a-thread" is not valid: expected a UUID/);
    // Mallory's thread is untouched.
    expect((await exai.server.services.conversations.loadThread(mallory.id, foreign.id)).turns.map((turn) => turn.content)).toEqual(['a secret plan']);
  });

  it('10. invalid arguments: a tool error with the validation message, and the server serves the next call', async () => {
    const cases: [string, Record<string, unknown>, RegExp[]][] = [
      ['chat', { prompt: 'hi', temperature: 5 }, [/temperature/, /<=\s*2|less than or equal to 2/i]],
      ['chat', { model: 'glm-4.6' }, [/prompt/, /expected string/i]],
      ['thinkdeep', { step: 'Start', step_number: 0, total_steps: 2, next_step_required: true, findings: '' }, [/step_number/, />=\s*1|greater than or equal to 1/i]],
    ];
    for (const [tool, args, patterns] of cases) {
      const result = await leavesNothing(exai, () => exai.call(tool, args));
      expectToolError(result, new RegExp(`Invalid arguments for tool ${tool}`), ...patterns);
      const version = await exai.call('version', {});
      expect(version.isError).toBeFalsy();
    }
  });

  /** Refused: the error names the file, the allowed roots and EXAI_ALLOWED_ROOTS, and shows nothing of the file. */
  async function expectRefused(file: string): Promise<string> {
    const result = await leavesNothing(exai, () => exai.call('chat', { prompt: 'Read this', model: 'glm-4.6', files: [file] }));
    const text = expectToolError(result, new RegExp(`File ${file} `), /outside the folders exai may read/, new RegExp(`\\(${root}\\)`), /EXAI_ALLOWED_ROOTS/);
    expect(text).not.toContain('OUTSIDE-THE-ROOT-MARKER');
    return text;
  }

  it('11a. files outside the allowed roots: refused, naming the roots and EXAI_ALLOWED_ROOTS, and no model is asked', async () => {
    const outside = path.join(elsewhere, 'notes.txt');
    writeFileSync(outside, 'OUTSIDE-THE-ROOT-MARKER\n');
    for (const file of [outside, ...(existsSync('/etc/hostname') ? ['/etc/hostname'] : [])]) await expectRefused(file);
    // A step tool refuses them before recording the step.
    const step = { step: 'Start', step_number: 1, total_steps: 2, next_step_required: true, findings: 'a lead', relevant_files: [outside] };
    const refused = await leavesNothing(exai, () => exai.call('codereview', step));
    expectToolError(refused, new RegExp(`File ${outside} `), /outside the folders exai may read/, /EXAI_ALLOWED_ROOTS/);
  });

  it('11b. a symlink inside the root that points outside: refused, saying where it leads', async () => {
    const target = path.join(elsewhere, 'linked.txt');
    writeFileSync(target, 'OUTSIDE-THE-ROOT-MARKER\n');
    const link = path.join(root, 'link.txt');
    symlinkSync(target, link);
    const text = await expectRefused(link);
    // The link itself lies inside the root: "outside" only makes sense with where it leads.
    expect(text).toContain(target);
  });

  it('11c. a file over EXAI_MAX_FILE_BYTES: the call succeeds, the file is skipped and the result says why', async () => {
    const big = path.join(root, 'big.log');
    writeFileSync(big, `${'BIG-FILE-MARKER '.repeat(128)}\n`); // 2049 bytes, over 1 KiB
    fake.script({ kind: 'answer', content: 'Answered without the file.' });
    const sent = fake.requests.length;
    const result = await exai.call('chat', { prompt: 'What does the log say?', model: 'glm-4.6', files: [big] });
    expect(result.isError).toBeFalsy();
    const structured = result.structuredContent as { files: { embedded: string[]; skipped: { path: string; reason: string }[] } };
    expect(structured.files.embedded).toEqual([]);
    expect(structured.files.skipped).toEqual([{ path: big, reason: expect.stringMatching(/too large: 2049 bytes, the limit is 1024 \(EXAI_MAX_FILE_BYTES\)/) }]);
    expect(textOf(result)).toContain(`Note: File ${big} was not sent: too large`);
    expect(fake.requests.length - sent).toBe(1);
    expect(JSON.stringify(fake.requests.at(-1)!.body)).not.toContain('BIG-FILE-MARKER');
  });

  it('12. a step tool at step 2 without continuation_id: says to pass the one from step 1', async () => {
    const step = { step: 'Continue', step_number: 2, total_steps: 3, next_step_required: true, findings: 'more' };
    const result = await leavesNothing(exai, () => exai.call('debug', step));
    expectToolError(result, /step_number is 2 but continuation_id is missing/, /continuation_id returned by step 1/);
  });
});
