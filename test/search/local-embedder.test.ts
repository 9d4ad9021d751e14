import { describe, expect, it } from 'vitest';
import { LOCAL_EMBEDDING_DIMENSIONS, LOCAL_EMBEDDING_MODEL, LocalHashEmbedder, localEmbedding } from '../../src/search/local-embedder.js';
import { expectExaiError } from '../support/assertions.js';

const cosine = (a: readonly number[], b: readonly number[]) => a.reduce((sum, value, index) => sum + value * b[index]!, 0);
const norm = (vector: readonly number[]) => Math.sqrt(cosine(vector, vector));
const isZero = (vector: readonly number[]) => vector.every((value) => value === 0);
/** The non-zero entries, as [bucket, value rounded to 6 places]. */
const sparse = (vector: readonly number[]) =>
  vector.flatMap((value, index) => (value === 0 ? [] : [[index, Number(value.toFixed(6))]]));

/** Which of `candidates` is closest to `query`. */
const closest = (query: string, candidates: string[]) => {
  const target = localEmbedding(query);
  const scores = candidates.map((candidate) => cosine(target, localEmbedding(candidate)));
  return candidates[scores.indexOf(Math.max(...scores))];
};

describe('local hash embedder', () => {
  const embedder = new LocalHashEmbedder();

  it('is the local 384-dimensional model', () => {
    expect(embedder.model).toBe('exai-local-hash-384');
    expect(LOCAL_EMBEDDING_MODEL).toBe(embedder.model);
    expect(embedder.dimensions).toBe(384);
    expect(LOCAL_EMBEDDING_DIMENSIONS).toBe(384);
    expect(embedder.local).toBe(true);
  });

  it('gives unit vectors of 384 numbers', () => {
    for (const text of ['a', 'Rotate refresh tokens on every use.', 'x'.repeat(5000), 'Ümlauts, ß and ǅ', '数据库', '🎉', 'v2.3.1 → v2.4.0']) {
      const vector = localEmbedding(text);
      expect(vector).toHaveLength(384);
      expect(vector.every((value) => Number.isFinite(value))).toBe(true);
      expect(norm(vector)).toBeCloseTo(1, 12);
    }
  });

  it('is deterministic, and pinned: changing these vectors needs a new model name', () => {
    const text = 'The connection pool ran out of clients under load.';
    expect(localEmbedding(text)).toEqual(localEmbedding(text));
    expect(embedder.embedOne(text)).toEqual(localEmbedding(text));
    // Stored vectors stay comparable with new ones only while the algorithm stays the same.
    expect(sparse(localEmbedding('Hello, world!'))).toEqual([
      [5, 0.197787],
      [9, 0.197787],
      [17, 0.197787],
      [36, 0.346128],
      [55, 0.494468],
      [102, 0.197787],
      [157, -0.197787],
      [171, 0.494468],
      [214, 0.197787],
      [283, 0.197787],
      [285, -0.197787],
      [291, -0.197787],
      [379, -0.197787],
    ]);
    expect(sparse(localEmbedding('数据库迁移 🎉'))).toEqual([
      [28, -0.341159],
      [69, 0.341159],
      [89, -0.243685],
      [135, 0.243685],
      [177, 0.341159],
      [233, -0.341159],
      [241, -0.48737],
      [256, -0.243685],
      [336, 0.243685],
      [358, -0.243685],
    ]);
  });

  it('puts texts that share words closer than unrelated ones', () => {
    const query = localEmbedding('How do we rotate refresh tokens?');
    const similar = localEmbedding('Refresh tokens are rotated on every use, and the old token is revoked.');
    const unrelated = localEmbedding('The chart library renders bar graphs with a legend.');
    expect(cosine(query, similar)).toBeGreaterThan(cosine(query, unrelated) + 0.2);
    // Inflected forms share trigrams.
    expect(cosine(localEmbedding('migration'), localEmbedding('migrations'))).toBeGreaterThan(0.5);
    expect(cosine(localEmbedding('migration'), localEmbedding('pancake'))).toBeLessThan(0.2);
    expect(
      closest('postgres connection pool exhausted', [
        'The weather in Lisbon is sunny today.',
        'We ran out of Postgres connections: the pool was exhausted under load.',
        'Rename the button label to Save.',
      ]),
    ).toBe('We ran out of Postgres connections: the pool was exhausted under load.');
  });

  it('barely cares about word order: only the word pairs differ', () => {
    const forward = localEmbedding('database migration failed yesterday');
    const backward = localEmbedding('yesterday failed migration database');
    expect(cosine(forward, backward)).toBeGreaterThan(0.75);
    expect(cosine(forward, backward)).toBeLessThan(0.999);
  });

  it('folds case, width and ligatures', () => {
    expect(localEmbedding('Hello WORLD')).toEqual(localEmbedding('hello world'));
    expect(localEmbedding('ＡＢＣ １２３')).toEqual(localEmbedding('abc 123'));
    expect(localEmbedding('ﬁle')).toEqual(localEmbedding('file'));
  });

  it('embeds Chinese, Japanese, Korean and emoji, each closest to itself', () => {
    const texts = [
      '数据库迁移失败了，需要回滚。',
      '今天天气很好，我们去公园散步吧。',
      '東京タワーの近くでラーメンを食べました。',
      'データベースの移行に失敗しました。',
      '데이터베이스 마이그레이션이 실패했습니다.',
      '오늘 날씨가 정말 좋네요.',
      '🎉🚀',
      '👍🏽 ❤️',
      '🇯🇵 🇫🇷',
    ];
    for (const text of texts) {
      const vector = localEmbedding(text);
      expect(isZero(vector), text).toBe(false);
      expect(norm(vector)).toBeCloseTo(1, 12);
      expect(closest(text, texts), text).toBe(text);
    }
    // Without spaces, shared characters and character pairs still find the related text.
    expect(closest('数据库迁移', texts)).toBe('数据库迁移失败了，需要回滚。');
    expect(closest('データベース', texts)).toBe('データベースの移行に失敗しました。');
    expect(closest('마이그레이션', texts)).toBe('데이터베이스 마이그레이션이 실패했습니다.');
    expect(closest('🚀 launch', texts)).toBe('🎉🚀');
  });

  it('gives the zero vector for a text without letters, digits or emoji', () => {
    for (const text of ['', '   \n\t', '...!?;', '—–-']) {
      const vector = localEmbedding(text);
      expect(vector).toHaveLength(384);
      expect(isZero(vector), JSON.stringify(text)).toBe(true);
    }
  });

  it('embeds a list in order, as one text at a time', async () => {
    const texts = ['first message', '', 'second message', '第三条消息'];
    const vectors = await embedder.embed(texts);
    expect(vectors).toEqual(texts.map((text) => localEmbedding(text)));
    expect(await embedder.embed([])).toEqual([]);
  });

  it('embeds a thousand messages of 500 characters (sanity, not timed)', async () => {
    const words = ['token', 'refresh', 'rotate', 'database', 'pool', 'connection', 'migration', 'failed', 'retry', 'backoff', 'cache', 'index'];
    const texts = Array.from({ length: 1000 }, (_, message) =>
      Array.from({ length: 80 }, (__, word) => words[(message * 7 + word * 3) % words.length])
        .join(' ')
        .slice(0, 500),
    );
    const vectors = await embedder.embed(texts);
    expect(vectors).toHaveLength(1000);
    expect(vectors.every((vector) => vector.length === 384 && Math.abs(norm(vector) - 1) < 1e-9)).toBe(true);
  });

  it('stops with cancelled when the signal fires', async () => {
    const controller = new AbortController();
    controller.abort();
    const error = await expectExaiError(embedder.embed(['anything'], { signal: controller.signal }));
    expect(error.code).toBe('cancelled');
  });
});
