import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ProviderEmbedder, type ProviderEmbedderOptions } from '../../src/search/embedding-client.js';
import { expectExaiError } from '../support/assertions.js';
import { fakeEmbedding, startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';

const apiKey = 'sk-test-secret-0123456789';
const retry = { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 100 };

const unit = (vector: readonly number[]) => {
  const length = Math.hypot(...vector);
  return vector.map((value) => value / length);
};
/** What the embedder should return for `text` from the fake: its vector, at unit length. */
const expected = (text: string, dimensions: number) => unit(fakeEmbedding(text, dimensions));
const texts = (count: number, prefix = 'message') => Array.from({ length: count }, (_, index) => `${prefix} ${index}: about topic ${index % 7}`);

describe('provider embedder', () => {
  let fake: FakeOpenAI;

  const embeddingRequests = () => fake.requests.filter((request) => request.path.endsWith('/embeddings'));
  const make = (options: Partial<ProviderEmbedderOptions> = {}) =>
    new ProviderEmbedder({ provider: 'glm', baseUrl: fake.baseUrl, apiKey, model: 'embedding-3', dimensions: 16, timeoutMs: 5000, retry, ...options });

  beforeAll(async () => {
    fake = await startFakeOpenAI();
  });
  afterAll(async () => {
    await fake.close();
  });
  beforeEach(() => {
    fake.requests.length = 0;
    fake.embeddingDimensionsOverride = undefined;
    fake.shuffleEmbeddings = false;
  });

  it('describes its model', () => {
    const embedder = make({ dimensions: 1024 });
    expect(embedder).toMatchObject({ model: 'embedding-3', dimensions: 1024, local: false, provider: 'glm', batchSize: 64 });
  });

  it('sends the model, the texts and the dimensions, and returns unit vectors in order', async () => {
    const input = ['Rotate refresh tokens.', 'The pool ran dry.', 'Ümlauts and 数据库 and 🎉'];
    const vectors = await make().embed(input);
    expect(vectors).toHaveLength(3);
    input.forEach((text, index) => {
      expect(vectors[index]).toHaveLength(16);
      expect(Math.hypot(...vectors[index]!)).toBeCloseTo(1, 12);
      expect(vectors[index]).toEqual(expected(text, 16).map((value) => expect.closeTo(value, 12)));
    });
    const [request] = embeddingRequests();
    expect(embeddingRequests()).toHaveLength(1);
    expect(request).toMatchObject({ method: 'POST', path: '/v1/embeddings' });
    expect(request!.body).toEqual({ model: 'embedding-3', input, dimensions: 16, encoding_format: 'float' });
    expect(request!.headers.authorization).toBe(`Bearer ${apiKey}`);
  });

  it('keeps the order of the texts when the reply lists the vectors out of order', async () => {
    fake.shuffleEmbeddings = true;
    const input = texts(20);
    const vectors = await make({ dimensions: 8 }).embed(input);
    expect(vectors).toEqual(input.map((text) => expected(text, 8).map((value) => expect.closeTo(value, 12))));
  });

  it('sends texts in batches of batchSize, one after another, and puts the answers together in order', async () => {
    fake.shuffleEmbeddings = true;
    const input = texts(150);
    const vectors = await make({ dimensions: 8 }).embed(input);
    const sent = embeddingRequests().map((request) => request.body.input as string[]);
    expect(sent.map((batch) => batch.length)).toEqual([64, 64, 22]);
    expect(sent.flat()).toEqual(input);
    expect(fake.peakConcurrency).toBe(1);
    expect(vectors).toHaveLength(150);
    expect(vectors[0]).toEqual(expected(input[0]!, 8).map((value) => expect.closeTo(value, 12)));
    expect(vectors[149]).toEqual(expected(input[149]!, 8).map((value) => expect.closeTo(value, 12)));

    fake.requests.length = 0;
    await make({ dimensions: 8, batchSize: 100 }).embed(input);
    expect(embeddingRequests().map((request) => (request.body.input as string[]).length)).toEqual([100, 50]);
  });

  it('does not send blank texts: they get the zero vector, and nothing is sent when all are blank', async () => {
    const vectors = await make({ dimensions: 8 }).embed(['first', '', '  \n', 'second']);
    expect(embeddingRequests().map((request) => request.body.input)).toEqual([['first', 'second']]);
    expect(vectors[1]).toEqual(new Array(8).fill(0));
    expect(vectors[2]).toEqual(new Array(8).fill(0));
    expect(vectors[3]).toEqual(expected('second', 8).map((value) => expect.closeTo(value, 12)));

    fake.requests.length = 0;
    expect(await make().embed([])).toEqual([]);
    expect(await make({ dimensions: 4 }).embed([''])).toEqual([[0, 0, 0, 0]]);
    expect(embeddingRequests()).toHaveLength(0);
  });

  it('retries a server error, a rate limit and a dropped connection, then succeeds', async () => {
    fake.scriptEmbeddings({ kind: 'error', status: 500 });
    const input = ['one', 'two'];
    expect(await make({ dimensions: 8 }).embed(input)).toEqual(input.map((text) => expected(text, 8).map((value) => expect.closeTo(value, 12))));
    expect(embeddingRequests()).toHaveLength(2);
    expect(embeddingRequests().map((request) => request.body.input)).toEqual([input, input]);

    fake.requests.length = 0;
    fake.scriptEmbeddings({ kind: 'error', status: 429, headers: { 'retry-after-ms': '5' } }, { kind: 'drop' });
    expect(await make({ dimensions: 8 }).embed(input)).toHaveLength(2);
    expect(embeddingRequests()).toHaveLength(3);
  });

  it('gives up on a lasting outage with provider_unavailable, returning nothing', async () => {
    // The first batch succeeds; the second fails on every attempt: the call fails whole.
    fake.scriptEmbeddings({ kind: 'serve' }, { kind: 'error', status: 503 }, { kind: 'error', status: 503 }, { kind: 'error', status: 503 });
    const error = await expectExaiError(make({ dimensions: 8, batchSize: 2 }).embed(texts(3)));
    expect(error.code).toBe('provider_unavailable');
    expect(error.message).toMatch(/^glm embedding model embedding-3 failed on batch 2 of 2 \(1 text\) after 3 attempts \(http_503\)/);
    expect(error.message).toContain('try again later');
    expect(embeddingRequests()).toHaveLength(4);
  });

  it('refuses vectors of the wrong dimension clearly, returning nothing', async () => {
    fake.embeddingDimensionsOverride = 768;
    const error = await expectExaiError(make({ dimensions: 1024 }).embed(texts(3)));
    expect(error.code).toBe('provider_error');
    expect(error.message).toBe(
      'glm embedding model embedding-3 returned 768-dimensional vectors, but EXAI_EMBEDDING_DIMENSIONS is 1024. ' +
        'Set EXAI_EMBEDDING_DIMENSIONS to 768, or choose (in EXAI_EMBEDDING_MODEL) a model that supports 1024 dimensions.',
    );
    expect(error.details).toMatchObject({ provider: 'glm', model: 'embedding-3', error_class: 'wrong_dimensions', expected: 1024, received: 768 });
    expect(embeddingRequests()).toHaveLength(1); // not retried
    expect(embeddingRequests()[0]!.body.dimensions).toBe(1024);

    // A later batch of the wrong size fails the whole call too.
    fake.embeddingDimensionsOverride = undefined;
    fake.scriptEmbeddings({ kind: 'serve' }, { kind: 'serve', dimensions: 4 });
    const later = await expectExaiError(make({ dimensions: 8, batchSize: 2 }).embed(texts(4)));
    expect(later.details).toMatchObject({ error_class: 'wrong_dimensions', expected: 8, received: 4 });
  });

  it('refuses a reply with too few vectors, or unusable ones', async () => {
    fake.scriptEmbeddings({ kind: 'serve', omit: 1 });
    const missing = await expectExaiError(make({ dimensions: 8 }).embed(texts(3)));
    expect(missing.code).toBe('provider_error');
    expect(missing.message).toContain('returned 2 vectors for 3 texts');
    expect(missing.details).toMatchObject({ error_class: 'wrong_count', expected: 3, received: 2 });

    const reply = (data: unknown) => ({ kind: 'raw' as const, status: 200, contentType: 'application/json', body: JSON.stringify({ object: 'list', data, model: 'embedding-3' }) });
    fake.scriptEmbeddings(
      reply([
        { index: 0, embedding: [1, 0] },
        { index: 0, embedding: [0, 1] },
      ]),
      reply([{ index: 0, embedding: 'not a vector!' }]),
      reply([{ index: 0, embedding: [1, 'x'] }]),
      { kind: 'raw', status: 200, contentType: 'application/json', body: '{"object":"list"}' },
    );
    const embedder = make({ dimensions: 2 });
    expect((await expectExaiError(embedder.embed(['a', 'b']))).message).toContain('indexes are missing, repeated or out of range');
    expect((await expectExaiError(embedder.embed(['a']))).details).toMatchObject({ error_class: 'malformed_reply' });
    expect((await expectExaiError(embedder.embed(['a']))).message).toContain('not finite numbers');
    expect((await expectExaiError(embedder.embed(['a']))).message).toContain('without a list of vectors');
  });

  it('reads vectors without an index in the order listed, and base64 vectors', async () => {
    const base64 = Buffer.from(new Float32Array([3, 4]).buffer).toString('base64');
    fake.scriptEmbeddings({
      kind: 'raw',
      status: 200,
      contentType: 'application/json',
      body: JSON.stringify({ object: 'list', data: [{ embedding: [0, 2] }, { embedding: base64 }], model: 'nomic-embed-text' }),
    });
    expect(await make({ dimensions: 2 }).embed(['a', 'b'])).toEqual([
      [0, 1],
      [expect.closeTo(0.6, 6), expect.closeTo(0.8, 6)],
    ]);
  });

  it('does not retry a refused key, and never quotes it', async () => {
    fake.scriptEmbeddings({ kind: 'error', status: 401, body: { error: { message: `Incorrect API key provided: ${apiKey}`, type: 'invalid_authentication_error' } } });
    const error = await expectExaiError(make().embed(['hello']));
    expect(error.code).toBe('provider_error');
    expect(error.message).toContain('check GLM_API_KEY');
    expect(error.message).toContain('[redacted]');
    expect(error.message).not.toContain(apiKey);
    expect(JSON.stringify(error.details)).not.toContain(apiKey);
    expect(error.cause).toBeUndefined();
    expect(embeddingRequests()).toHaveLength(1);
  });

  it('says which setting to check when the model or the size is refused', async () => {
    fake.scriptEmbeddings(
      { kind: 'error', status: 404, body: { error: { message: 'model not found' } } },
      { kind: 'error', status: 400, body: { error: { message: 'This model does not support specifying dimensions.' } } },
    );
    const unknown = await expectExaiError(make().embed(['hello']));
    expect(unknown.code).toBe('provider_error');
    expect(unknown.message).toContain('check EXAI_EMBEDDING_MODEL and GLM_BASE_URL');
    const size = await expectExaiError(make().embed(['hello']));
    expect(size.message).toContain('set EXAI_EMBEDDING_DIMENSIONS to a size it supports');
    expect(embeddingRequests()).toHaveLength(2);
  });

  it('keeps to its deadline, retries included, and can be cancelled', async () => {
    fake.scriptEmbeddings({ kind: 'hang' });
    const timedOut = await expectExaiError(make({ timeoutMs: 300 }).embed(['slow']));
    expect(timedOut.code).toBe('timeout');
    expect(timedOut.message).toContain('did not embed 1 text within 300 ms');

    fake.scriptEmbeddings({ kind: 'hang' });
    const controller = new AbortController();
    const pending = make().embed(['waiting'], { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    expect((await expectExaiError(pending)).code).toBe('cancelled');
  });

  it('refuses a size or batch size that is not a positive whole number', () => {
    expect(() => make({ dimensions: 0 })).toThrow(/EXAI_EMBEDDING_DIMENSIONS must be a positive whole number/);
    expect(() => make({ dimensions: 1.5 })).toThrow(/EXAI_EMBEDDING_DIMENSIONS/);
    expect(() => make({ batchSize: 0 })).toThrow(/batch size/);
  });
});
