import { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isGoneFileError, providerFileApi, type ProviderFileApi } from '../../src/providers/file-api.js';
import { expectExaiError } from '../support/assertions.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';

const apiKey = 'sk-test-secret-0123456789';
const retry = { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 100 };
const text = 'Rotate refresh tokens on every use.\nÜmlauts survive: ✓';

describe('provider file API', () => {
  let fake: FakeOpenAI;
  let kimi: ProviderFileApi;

  const fileRequests = () => fake.requests.filter((request) => request.file !== undefined);
  const upload = (name = 'notes.txt', content = text) => kimi.uploadFile({ name, bytes: Buffer.from(content), mimeType: 'text/plain' });

  beforeAll(async () => {
    fake = await startFakeOpenAI();
  });
  afterAll(async () => {
    await fake.close();
  });
  beforeEach(() => {
    fake.requests.length = 0;
    fake.forgetAllFiles();
    fake.goneStatus = 404;
    fake.maxFileBytes = undefined;
    kimi = providerFileApi({ provider: 'kimi', baseUrl: fake.baseUrl, apiKey, timeoutMs: 5000, retry });
  });

  it('uploads a file and reads back its content as Kimi wraps it', async () => {
    const uploaded = await upload();
    expect(uploaded).toEqual({ id: expect.stringMatching(/^file-/), bytes: Buffer.byteLength(text) });
    const content = await kimi.fileContent(uploaded.id);
    // Passed on as the provider sent it: a JSON text, not parsed.
    expect(JSON.parse(content)).toEqual({ content: text, file_type: 'text/plain', filename: 'notes.txt', title: '', type: 'file' });
  });

  it('logs each file request with its purpose, file name and size', async () => {
    const { id } = await upload('design.md');
    await kimi.fileContent(id);
    expect(fileRequests()).toEqual([
      expect.objectContaining({
        method: 'POST',
        path: '/v1/files',
        body: { purpose: 'file-extract' },
        file: { id, purpose: 'file-extract', filename: 'design.md', size: Buffer.byteLength(text), mimeType: 'text/plain' },
      }),
      expect.objectContaining({ method: 'GET', path: `/v1/files/${id}/content`, file: expect.objectContaining({ id, filename: 'design.md' }) }),
    ]);
    expect(fake.requests[0]!.headers.authorization).toBe(`Bearer ${apiKey}`);
  });

  it('uploads from a stream, and with another purpose when asked', async () => {
    const glm = providerFileApi({ provider: 'glm', baseUrl: fake.baseUrl, apiKey, timeoutMs: 5000, retry });
    const stream = Readable.from([Buffer.from('first part, '), Buffer.from('second part')]);
    const { id, bytes } = await glm.uploadFile({ name: 'parts.txt', stream, mimeType: 'text/plain', purpose: 'agent' });
    expect(bytes).toBe('first part, second part'.length);
    expect(fake.files.get(id)).toMatchObject({ purpose: 'agent', filename: 'parts.txt' });
    expect(fake.files.get(id)!.bytes.toString()).toBe('first part, second part');
  });

  it('deletes a file; deleting it again reports that it was already gone', async () => {
    const { id } = await upload();
    expect(await kimi.deleteFile(id)).toBe(true);
    expect(fake.files.has(id)).toBe(false);
    expect(await kimi.deleteFile(id)).toBe(false);
    expect(isGoneFileError(await expectExaiError(kimi.fileContent(id)))).toBe(true);
  });

  it('reports an expired id as gone, so the caller can upload again', async () => {
    const { id } = await upload();
    expect(fake.forgetFile(id)).toBe(true);
    const error = await expectExaiError(kimi.fileContent(id));
    expect(isGoneFileError(error)).toBe(true);
    expect(error.code).toBe('not_found');
    expect(error.message).toContain(`kimi no longer has file ${id}`);
    expect(fileRequests()).toHaveLength(2); // not retried
    // Some providers answer 400 with a "not found" message instead.
    fake.goneStatus = 400;
    expect(isGoneFileError(await expectExaiError(kimi.fileContent(id)))).toBe(true);
  });

  it('retries a server error, then succeeds', async () => {
    fake.scriptFiles({ kind: 'error', status: 500 });
    const { id } = await upload();
    const uploads = fileRequests().filter((request) => request.method === 'POST');
    expect(uploads).toHaveLength(2);
    expect(uploads.map((request) => request.file?.filename)).toEqual(['notes.txt', 'notes.txt']);
    expect([...fake.files.keys()]).toEqual([id]);

    fake.scriptFiles({ kind: 'drop' }, { kind: 'error', status: 429, headers: { 'retry-after-ms': '5' } });
    expect(JSON.parse(await kimi.fileContent(id))).toMatchObject({ content: text });
  });

  it('gives up on a lasting outage with provider_unavailable after its attempts', async () => {
    fake.scriptFiles({ kind: 'error', status: 503 }, { kind: 'error', status: 503 }, { kind: 'error', status: 503 });
    const error = await expectExaiError(upload());
    expect(error.code).toBe('provider_unavailable');
    expect(error.message).toMatch(/^The kimi file upload of "notes.txt" \(\d+ bytes\) failed after 3 attempts \(http_503\)/);
    expect(fake.files.size).toBe(0);
  });

  it('does not retry a refused key, and never quotes it', async () => {
    fake.scriptFiles({ kind: 'error', status: 401, body: { error: { message: `Incorrect API key provided: ${apiKey}`, type: 'invalid_authentication_error' } } });
    const error = await expectExaiError(upload());
    expect(error.code).toBe('provider_error');
    expect(error.message).toContain('check KIMI_API_KEY');
    expect(error.message).toContain('[redacted]');
    expect(error.message).not.toContain(apiKey);
    expect(JSON.stringify(error.details)).not.toContain(apiKey);
    expect(error.cause).toBeUndefined();
    expect(fileRequests()).toHaveLength(1);
  });

  it('says when a file is too large', async () => {
    fake.maxFileBytes = 10;
    const error = await expectExaiError(upload());
    expect(error.code).toBe('too_large');
    expect(error.message).toMatch(/kimi refused the upload of "notes.txt" .* as too large/);
  });

  it('does not take a 404 on upload for a gone file: the base URL has no file API', async () => {
    fake.scriptFiles({ kind: 'error', status: 404, body: { error: { message: 'not found' } } });
    const error = await expectExaiError(upload());
    expect(isGoneFileError(error)).toBe(false);
    expect(error.code).toBe('provider_error');
    expect(error.message).toContain('KIMI_BASE_URL');
  });

  it('keeps to its deadline, retries included, and can be cancelled', async () => {
    const quick = providerFileApi({ provider: 'kimi', baseUrl: fake.baseUrl, apiKey, timeoutMs: 300, retry });
    fake.scriptFiles({ kind: 'hang' });
    const timedOut = await expectExaiError(quick.uploadFile({ name: 'a.txt', bytes: Buffer.from('a'), mimeType: 'text/plain' }));
    expect(timedOut.code).toBe('timeout');

    const { id } = await upload();
    fake.scriptFiles({ kind: 'hang' });
    const controller = new AbortController();
    const pending = kimi.fileContent(id, { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    expect((await expectExaiError(pending)).code).toBe('cancelled');
  });

  it('lists files and answers their metadata', async () => {
    const { id } = await upload();
    const headers = { authorization: `Bearer ${apiKey}` };
    const listed = (await (await fetch(`${fake.baseUrl}/files`, { headers })).json()) as { data: { id: string }[] };
    expect(listed.data.map((file) => file.id)).toEqual([id]);
    const metadata = await (await fetch(`${fake.baseUrl}/files/${id}`, { headers })).json();
    expect(metadata).toMatchObject({ id, object: 'file', bytes: Buffer.byteLength(text), filename: 'notes.txt', purpose: 'file-extract', status: 'ok' });
    const gone = await fetch(`${fake.baseUrl}/files/file-unknown`, { headers });
    expect(gone.status).toBe(404);
    expect(await gone.json()).toEqual({ error: { message: 'file not found', type: 'invalid_request_error' } });
  });
});
