/**
 * Semantic-like vectors for the search benchmark: a topic-mixture model that
 * stands in for a provider's sentence-embedding model (exai's default provider
 * dimension, 1024). It is NOT a real embedding model: it reads no text. It
 * gives the synthetic corpus of bench/search-data.ts the geometry real
 * semantic embeddings have, so the HNSW figures can be read for them too; the
 * built-in lexical embedder's hashed vectors have far less contrast.
 *
 * A vector is the normalised sum of four unit directions in 1024 dimensions,
 * each scaled by the square root of its share of the squared norm:
 * - common (0.15): one direction shared by every text. Real embedding spaces
 *   are anisotropic: two unrelated texts are not orthogonal;
 * - topic (0.40): the text's topics, Σ weight × the topic's centroid,
 *   normalised. The weights are how many of the text's words the generator
 *   drew from each topic (so a message leaning to one of its conversation's
 *   topics leans to it here too; short texts are noisier);
 * - conversation (0.15): one direction per conversation, shared by its
 *   messages (what they are about beyond the topics: the same bug, the same
 *   file); a query has its own;
 * - message (0.30): one direction per text, its own content.
 * Centroids and directions are independent Gaussian draws (seeded, through
 * the bench's seededRandom), nearly orthogonal in 1024 dimensions (cosine
 * ±0.03), so the expected cosine of two texts is the sum of the shares they
 * have in common:
 * - unrelated (no topic in common): ≈ 0.15;
 * - other conversations on the same topics in the same proportions: ≈ 0.55;
 *   less as the mixtures differ (≈ 0.3 on average for two messages with at
 *   least one topic in common);
 * - the same conversation: ≈ 0.70.
 * The shares were chosen once, from what text-embedding models give (cosine
 * of unrelated texts ~0.1–0.3, of related texts ~0.5–0.8), before any HNSW
 * figure was measured, and are not tuned to the benchmark's targets. The
 * per-text direction keeps every vector apart from every other (no groups of
 * near-identical vectors: the closest pairs, in one conversation, are at ≈ 0.7).
 */
import { seededRandom } from './workload.js';
import type { TopicWeight } from './search-data.js';

export const SEMANTIC_MODEL = 'bench-topic-1024';
export const SEMANTIC_DIMENSIONS = 1024;

/** Shares of the squared norm (they sum to 1); see above. */
export const semanticShares = { common: 0.15, topic: 0.4, conversation: 0.15, message: 0.3 } as const;

/** Which generated texts a vector belongs to: each stream has its own conversation and message directions. */
export type SemanticStream = 'data' | 'held-out' | 'queries';
const streamCodes: Record<SemanticStream, number> = { data: 0, 'held-out': 1, queries: 2 };

export interface SemanticSource {
  stream: SemanticStream;
  topics: readonly TopicWeight[];
  /** The conversation's number in its stream (a query: its own number). */
  conversation: number;
  /** The text's number in its stream. */
  index: number;
}

/** murmur3's 32-bit finaliser: a bijection, so distinct keys give distinct seeds. */
function mix32(key: number): number {
  let h = key >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function normalise(vector: Float64Array): Float64Array {
  let sum = 0;
  for (const value of vector) sum += value * value;
  const norm = Math.sqrt(sum);
  if (norm > 0) for (let i = 0; i < vector.length; i++) vector[i]! /= norm;
  return vector;
}

/** A uniformly distributed unit vector (normalised standard Gaussians, Box–Muller). */
function randomUnit(seed: number, dimensions: number): Float64Array {
  const random = seededRandom(seed);
  const vector = new Float64Array(dimensions);
  for (let i = 0; i < dimensions; i += 2) {
    const radius = Math.sqrt(-2 * Math.log(Math.max(random(), 1e-12)));
    const angle = 2 * Math.PI * random();
    vector[i] = radius * Math.cos(angle);
    if (i + 1 < dimensions) vector[i + 1] = radius * Math.sin(angle);
  }
  return normalise(vector);
}

export class TopicMixtureVectors {
  readonly model = SEMANTIC_MODEL;
  readonly dimensions = SEMANTIC_DIMENSIONS;
  private readonly common: Float64Array;
  private readonly centroids: Float64Array[];
  private conversationKey = '';
  private conversationDirection: Float64Array = new Float64Array(0);

  /** `topicCount`: the corpus's (SyntheticCorpus.topicCount). */
  constructor(
    topicCount: number,
    private readonly seed = 20_251_128,
  ) {
    this.common = randomUnit(this.seedFor(0, 0, 0), this.dimensions);
    this.centroids = Array.from({ length: topicCount }, (_, topic) => randomUnit(this.seedFor(0, 0, 1 + topic), this.dimensions));
  }

  /** Distinct (kind, stream, index) give distinct seeds: 2 + 3 + 26 bits, then a bijection. */
  private seedFor(kind: 0 | 1 | 2, stream: number, index: number): number {
    if (!Number.isInteger(index) || index < 0 || index >= 2 ** 26) throw new Error(`semantic vectors: index ${index} out of range`);
    return mix32(((kind << 29) | (stream << 26) | index) ^ this.seed);
  }

  /** The text's vector, unit length. Deterministic: the same source always gives the same vector. */
  vectorOf(source: SemanticSource): Float64Array {
    const dimensions = this.dimensions;
    const stream = streamCodes[source.stream];
    const topic = new Float64Array(dimensions);
    for (const { topic: index, weight } of source.topics) {
      const centroid = this.centroids[index];
      if (centroid === undefined) throw new Error(`semantic vectors: no topic ${index}`);
      for (let i = 0; i < dimensions; i++) topic[i]! += weight * centroid[i]!;
    }
    normalise(topic);
    // Messages come conversation by conversation: one cached conversation direction is enough.
    const key = `${stream}/${source.conversation}`;
    if (key !== this.conversationKey) {
      this.conversationKey = key;
      this.conversationDirection = randomUnit(this.seedFor(1, stream, source.conversation), dimensions);
    }
    const conversation = this.conversationDirection;
    const message = randomUnit(this.seedFor(2, stream, source.index), dimensions);
    const a = Math.sqrt(semanticShares.common);
    const b = Math.sqrt(semanticShares.topic);
    const c = Math.sqrt(semanticShares.conversation);
    const d = Math.sqrt(semanticShares.message);
    const vector = new Float64Array(dimensions);
    for (let i = 0; i < dimensions; i++) vector[i] = a * this.common[i]! + b * topic[i]! + c * conversation[i]! + d * message[i]!;
    return normalise(vector);
  }

  /**
   * pgvector's text form, 7 decimals (components are ~0.03: float4 keeps about as many digits).
   * Formatted from integers: V8 turns fractional numbers into text several times slower.
   */
  static text(vector: Float64Array): string {
    const parts = new Array<string>(vector.length);
    for (let i = 0; i < vector.length; i++) {
      const scaled = Math.round(vector[i]! * 1e7);
      const magnitude = Math.abs(scaled);
      const fraction = String(magnitude % 10_000_000);
      parts[i] = `${scaled < 0 ? '-' : ''}${magnitude >= 10_000_000 ? '1' : '0'}.${zeros[fraction.length]!}${fraction}`;
    }
    return `[${parts.join(',')}]`;
  }
}

/** Leading zeros of a 7-digit fraction, by the length of its digits. */
const zeros = ['0000000', '000000', '00000', '0000', '000', '00', '0', ''];

/** Cosine similarity of two unit vectors. */
export function cosine(a: Float64Array, b: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}
