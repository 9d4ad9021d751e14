/**
 * The built-in embedder: no network, no model download, no dependency.
 *
 * It is LEXICAL, NOT SEMANTIC. A vector records which words, word pairs and
 * pieces of words a text contains, so texts that share vocabulary come out
 * close ("rotate the refresh token" ~ "refresh tokens are rotated"), while a
 * paraphrase in other words ("renew the credential") or a translation does
 * not. For meaning, configure a provider's embedding model (ProviderEmbedder).
 *
 * How a text becomes a vector (feature hashing, "the hashing trick"):
 *  1. NFKC-normalised and lowercased (full-width letters, ligatures and case
 *     fold together); variation selectors dropped.
 *  2. Split into tokens, Unicode-aware: runs of letters, digits and marks
 *     (`\p{L}\p{N}\p{M}`), and emoji (a pictograph with its skin tone and
 *     ZWJ sequence, or a flag) as tokens of their own.
 *  3. Features, each with a weight:
 *       - the word itself                                   1.0
 *       - the pair of a word and the one before it           0.7
 *       - character trigrams of the word, with boundary
 *         markers (`^ab`, `abc`, `bc$`)                      0.4
 *     Han, Hiragana, Katakana and Hangul runs (Chinese and Japanese have no
 *     spaces between words) instead give their characters (0.5) and
 *     character pairs (0.7); such a run of up to 4 characters, short enough
 *     to be a word, also counts as a word. Emoji count as words.
 *  4. A feature occurring tf times weighs weight × (1 + ln tf) (sublinear, so
 *     a repeated word does not drown the rest).
 *  5. Each feature is hashed (FNV-1a over code points, finished with
 *     MurmurHash3's fmix32) to one of 384 buckets and a sign; the weight is
 *     added with that sign, so collisions cancel out on average instead of
 *     piling up.
 *  6. The vector is L2-normalised.
 *
 * A text with no letters, digits or emoji (empty, whitespace, punctuation
 * only) has no features and gives the ZERO vector, which has no direction:
 * callers must handle it (not store it for search, or treat it as matching
 * nothing).
 *
 * Deterministic across runs, processes and platforms: integer hashing
 * (Math.imul, shifts), Map iteration in insertion order, IEEE-754 arithmetic
 * in a fixed order, and V8's Math.log, which is its own fdlibm port rather
 * than the platform's libm. Only a Unicode version change (a Node upgrade that
 * assigns new characters to letter classes or changes NFKC) could move a
 * vector, and then only for texts with those characters.
 *
 * Fast: one pass over the text and a few hashes per character; 1,000
 * messages of 500 characters take a few tens of milliseconds.
 */
import { ExaiError } from '../errors.js';
import type { Embedder } from './embedder.js';

export const LOCAL_EMBEDDING_MODEL = 'exai-local-hash-384';
export const LOCAL_EMBEDDING_DIMENSIONS = 384;

/** Feature kinds, kept in the low 3 bits of a feature's key. */
const WORD = 0;
const WORD_PAIR = 1;
const TRIGRAM = 2;
const CJK_CHAR = 3;
const CJK_PAIR = 4;
const kindWeights = [1.0, 0.7, 0.4, 0.5, 0.7];

/** Seeds that keep the kinds' hashes apart (the FNV offset basis, and arbitrary odd constants). */
const wordSeed = 0x811c9dc5;
const pairSeed = 0x2f6b7a4d;
const trigramSeed = 0x5bd1e995;
const cjkCharSeed = 0x27d4eb2f;
const cjkPairSeed = 0x165667b1;

/** Boundary markers around a word for its trigrams (control characters, which never occur inside a token). */
const wordStart = 0x02;
const wordEnd = 0x03;

/** A CJK run this short may be a word of its own; longer ones are phrases or sentences. */
const maxCjkWordLength = 4;

/** How many texts `embed` handles before it lets other work run. */
const textsPerSlice = 128;

const fnvPrime = 0x01000193;

/** MurmurHash3's finaliser: every input bit affects every output bit. */
function fmix32(value: number): number {
  let h = value;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}

/** FNV-1a over code points `codes[start..end)`, then fmix32. */
function hashRange(seed: number, codes: readonly number[], start: number, end: number): number {
  let h = seed;
  for (let index = start; index < end; index += 1) {
    h ^= codes[index]!;
    h = Math.imul(h, fnvPrime);
  }
  return fmix32(h);
}

function hash2(seed: number, first: number, second: number): number {
  return fmix32(Math.imul(Math.imul(seed ^ first, fnvPrime) ^ second, fnvPrime));
}

function hash3(seed: number, first: number, second: number, third: number): number {
  return fmix32(Math.imul(Math.imul(Math.imul(seed ^ first, fnvPrime) ^ second, fnvPrime) ^ third, fnvPrime));
}

/**
 * Tokens: an emoji (a pictograph with its skin tone modifiers and ZWJ
 * sequence, or a flag's regional indicators) in group 1, else a run of
 * letters, digits and combining marks.
 */
const tokenPattern = /(\p{Extended_Pictographic}(?:[\u{1F3FB}-\u{1F3FF}]|\u200D\p{Extended_Pictographic})*|\p{Regional_Indicator}{1,2})|[\p{L}\p{N}\p{M}]+/gu;

const cjkClass = '\\p{scx=Han}\\p{scx=Hira}\\p{scx=Kana}\\p{scx=Hang}';
const hasCjk = new RegExp(`[${cjkClass}]`, 'u');
/** A token's CJK runs in group 1, the rest between them in group 2. */
const cjkSegments = new RegExp(`([${cjkClass}]+)|([^${cjkClass}]+)`, 'gu');

const variationSelectors = /[\uFE0E\uFE0F]/g;

function codePoints(text: string, into: number[]): void {
  for (let index = 0; index < text.length; index += 1) {
    const code = text.codePointAt(index)!;
    into.push(code);
    if (code > 0xffff) index += 1;
  }
}

/** The features of one text, by key (hash with its kind in the low 3 bits), with their counts. */
class FeatureCounter {
  readonly counts = new Map<number, number>();
  /** The hash of the previous word-level token, for word pairs; undefined at the start or after a break. */
  private previous: number | undefined;

  private add(hash: number, kind: number): void {
    const key = (hash & ~7) | kind;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  /** A word-level token (word, emoji, short CJK run): itself and its pair with the one before. */
  private token(hash: number): void {
    this.add(hash, WORD);
    if (this.previous !== undefined) this.add(hash2(pairSeed, this.previous, hash), WORD_PAIR);
    this.previous = hash;
  }

  emoji(text: string): void {
    const codes: number[] = [];
    codePoints(text, codes);
    this.token(hashRange(wordSeed, codes, 0, codes.length));
  }

  word(text: string): void {
    const codes = [wordStart];
    codePoints(text, codes);
    codes.push(wordEnd);
    this.token(hashRange(wordSeed, codes, 1, codes.length - 1));
    for (let index = 0; index + 2 < codes.length; index += 1) {
      this.add(hash3(trigramSeed, codes[index]!, codes[index + 1]!, codes[index + 2]!), TRIGRAM);
    }
  }

  cjk(text: string): void {
    const codes: number[] = [];
    codePoints(text, codes);
    if (codes.length <= maxCjkWordLength) this.token(hashRange(wordSeed, codes, 0, codes.length));
    else this.previous = undefined;
    for (let index = 0; index < codes.length; index += 1) {
      this.add(hash2(cjkCharSeed, codes[index]!, 0), CJK_CHAR);
      if (index + 1 < codes.length) this.add(hash2(cjkPairSeed, codes[index]!, codes[index + 1]!), CJK_PAIR);
    }
  }
}

/** The lexical vector of one text: unit length, or all zeros when the text has no features. */
export function localEmbedding(text: string, dimensions = LOCAL_EMBEDDING_DIMENSIONS): number[] {
  const normalised = text.normalize('NFKC').toLowerCase().replace(variationSelectors, '');
  const features = new FeatureCounter();
  for (const match of normalised.matchAll(tokenPattern)) {
    const token = match[0];
    if (match[1] !== undefined) features.emoji(token);
    else if (!hasCjk.test(token)) features.word(token);
    else {
      for (const segment of token.matchAll(cjkSegments)) {
        if (segment[1] !== undefined) features.cjk(segment[0]);
        else features.word(segment[0]);
      }
    }
  }
  const vector = new Float64Array(dimensions);
  for (const [key, count] of features.counts) {
    const weight = kindWeights[key & 7]! * (count === 1 ? 1 : 1 + Math.log(count));
    const spread = fmix32(key);
    const bucket = (spread & 0x7fffffff) % dimensions;
    vector[bucket]! += spread < 0 ? -weight : weight;
  }
  let sum = 0;
  for (const value of vector) sum += value * value;
  const result = new Array<number>(dimensions);
  const scale = sum === 0 ? 0 : 1 / Math.sqrt(sum);
  for (let index = 0; index < dimensions; index += 1) result[index] = vector[index]! * scale;
  return result;
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The built-in lexical embedder (see the file comment): 384 dimensions, no network. */
export class LocalHashEmbedder implements Embedder {
  readonly model = LOCAL_EMBEDDING_MODEL;
  readonly dimensions = LOCAL_EMBEDDING_DIMENSIONS;
  readonly local = true;

  /** One text's vector, synchronously: unit length, or the zero vector for a text without features. */
  embedOne(text: string): number[] {
    return localEmbedding(text, this.dimensions);
  }

  /** Vectors in order; lets other work run between slices of a long list, and stops with `cancelled` when the signal fires. */
  async embed(texts: readonly string[], options: { signal?: AbortSignal } = {}): Promise<number[][]> {
    const vectors: number[][] = [];
    for (let index = 0; index < texts.length; index += 1) {
      if (index > 0 && index % textsPerSlice === 0) await nextTurn();
      if (options.signal?.aborted) throw new ExaiError('cancelled', `Embedding ${texts.length} texts locally was cancelled.`);
      vectors.push(localEmbedding(texts[index]!, this.dimensions));
    }
    return vectors;
  }
}
