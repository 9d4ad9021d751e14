import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MemoryCallRecorder } from '../../src/providers/call-recorder.js';
import { ProviderClient } from '../../src/providers/client.js';
import { expectExaiError } from '../support/assertions.js';
import { waitFor } from '../support/backends.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';

const apiKey = 'sk-test-secret-0123456789';

describe('OpenAI-compatible provider client', () => {
  let fake: FakeOpenAI;
  let recorder: MemoryCallRecorder;
  let client: ProviderClient;

  beforeAll(async () => {
    fake = await startFakeOpenAI();
  });
  afterAll(async () => {
    await fake.close();
  });
  beforeEach(() => {
    fake.requests.length = 0;
    fake.fallback = { kind: 'answer', content: 'ok' };
    recorder = new MemoryCallRecorder();
    client = new ProviderClient({
      provider: 'kimi',
      baseUrl: fake.baseUrl,
      apiKey,
      timeoutMs: 5000,
      retry: { maxAttempts: 3, baseDelayMs: 20, maxDelayMs: 2000 },
      recorder,
    });
  });

  it('streams the answer and the reasoning, with usage and one call record', async () => {
    fake.script({ kind: 'answer', content: 'Rotate refresh tokens on every use.', reasoning: 'The user asks about tokens.', usage: { prompt_tokens: 42, completion_tokens: 9 } });
    const deltas: string[] = [];
    const result = await client.chat({
      model: 'kimi-k2-0905-preview',
      messages: [{ role: 'user', content: 'How should refresh tokens work?' }],
      tool: 'chat',
      onDelta: (delta) => deltas.push(delta.content ?? ''),
    });
    expect(result).toMatchObject({
      content: 'Rotate refresh tokens on every use.',
      reasoningContent: 'The user asks about tokens.',
      inputTokens: 42,
      outputTokens: 9,
      attempts: 1,
      provider: 'kimi',
    });
    expect(deltas.join('')).toBe('Rotate refresh tokens on every use.');
    expect(result.timeToFirstTokenMs).not.toBeNull();
    expect(fake.requests[0]!.body).toMatchObject({ model: 'kimi-k2-0905-preview', stream: true });
    expect(fake.requests[0]!.headers.authorization).toBe(`Bearer ${apiKey}`);
    expect(recorder.recent()).toEqual([
      expect.objectContaining({ provider: 'kimi', model: 'kimi-k2-0905-preview', tool: 'chat', outcome: 'ok', errorClass: null, inputTokens: 42, outputTokens: 9, attempts: 1 }),
    ]);
  });

  it('replays reasoning_content of earlier assistant turns and passes provider-specific fields', async () => {
    await client.chat({
      model: 'glm-4.6',
      messages: [
        { role: 'user', content: 'first' },
        { role: 'assistant', content: 'answer', reasoningContent: 'how I got there' },
        { role: 'user', content: 'second' },
      ],
      temperature: 0.2,
      maxTokens: 100,
      extra: { thinking: { type: 'enabled' } },
    });
    expect(fake.requests[0]!.body).toMatchObject({
      temperature: 0.2,
      max_tokens: 100,
      thinking: { type: 'enabled' },
      messages: [
        { role: 'user', content: 'first' },
        { role: 'assistant', content: 'answer', reasoning_content: 'how I got there' },
        { role: 'user', content: 'second' },
      ],
    });
  });

  it('waits as long as Retry-After says before trying again', async () => {
    fake.script({ kind: 'error', status: 429, headers: { 'retry-after': '1' } }, { kind: 'answer', content: 'after the wait' });
    const result = await client.chat({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    expect(result.content).toBe('after the wait');
    expect(result.attempts).toBe(2);
    expect(fake.requests[1]!.at - fake.requests[0]!.at).toBeGreaterThanOrEqual(950);
  });

  it('retries server errors and lost connections, then succeeds', async () => {
    fake.script({ kind: 'error', status: 503 }, { kind: 'drop' }, { kind: 'answer', content: 'third time' });
    const result = await client.chat({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    expect(result).toMatchObject({ content: 'third time', attempts: 3 });
    expect(recorder.recent()[0]).toMatchObject({ outcome: 'ok', attempts: 3 });
  });

  it('does not retry a request the provider rejects as bad', async () => {
    fake.script({ kind: 'error', status: 400, body: { error: { message: 'model does not support thinking', type: 'invalid_request_error' } } });
    const error = await expectExaiError(client.chat({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }));
    expect(error.code).toBe('provider_error');
    expect(error.message).toContain('model does not support thinking');
    expect(fake.requests).toHaveLength(1);
    expect(recorder.recent()[0]).toMatchObject({ outcome: 'error', errorClass: 'http_400', attempts: 1 });
  });

  it('gives up after the last attempt with a clear error that holds no secret', async () => {
    fake.fallback = { kind: 'error', status: 500 };
    const error = await expectExaiError(client.chat({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }));
    expect(error.code).toBe('provider_unavailable');
    expect(error.message).toMatch(/kimi model m failed after 3 attempts \(http_500\)/);
    expect(error.message).not.toContain(apiKey);
    expect(fake.requests).toHaveLength(3);
  });

  it('stops a call that takes longer than its timeout, and closes the connection', async () => {
    const quick = new ProviderClient({ provider: 'glm', baseUrl: fake.baseUrl, apiKey, timeoutMs: 300, recorder });
    fake.script({ kind: 'hang' });
    const error = await expectExaiError(quick.chat({ model: 'glm-4.5', messages: [{ role: 'user', content: 'hi' }] }));
    expect(error.code).toBe('timeout');
    await waitFor(() => fake.requests[0]?.aborted === true, 2000, 'the server to see the connection closed');
    expect(recorder.recent()[0]).toMatchObject({ outcome: 'timeout', errorClass: 'timeout' });
  });

  it('aborts the provider request when the caller cancels mid-stream', async () => {
    fake.script({ kind: 'answer', content: 'a long answer that streams slowly, chunk by chunk', chunkDelayMs: 50 });
    const controller = new AbortController();
    const deltas: string[] = [];
    const call = client.chat({
      model: 'm',
      messages: [{ role: 'user', content: 'hi' }],
      signal: controller.signal,
      onDelta: (delta) => {
        deltas.push(delta.content ?? '');
        if (deltas.length === 2) controller.abort();
      },
    });
    const error = await expectExaiError(call);
    expect(error.code).toBe('cancelled');
    await waitFor(() => fake.requests[0]?.aborted === true, 2000, 'the server to see the connection closed');
    expect(fake.requests).toHaveLength(1); // a cancelled call is not retried
    expect(recorder.recent()[0]).toMatchObject({ outcome: 'cancelled' });
  });
});
