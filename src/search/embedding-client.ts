/**
 * Embeddings from any OpenAI-compatible `POST /embeddings` (GLM `embedding-3`,
 * Ollama, OpenAI, …) through the same `openai` SDK client as the chat calls.
 *
 * - Texts go in batches of `batchSize` (64 unless set, GLM's limit for one
 *   request), one batch after another; each batch has its own deadline
 *   (`timeoutMs`, retries included).
 * - `dimensions` is always sent: models with a selectable size (GLM
 *   `embedding-3`: 256, 512, 1024, 2048; OpenAI `text-embedding-3-*`) need it
 *   to answer in the configured size, and providers whose models have one
 *   fixed size ignore it (Ollama). A model that refuses the parameter
 *   (OpenAI's `text-embedding-ada-002`) fails with a 400 that says so.
 * - `encoding_format: 'float'` is sent too: the SDK would otherwise ask for
 *   base64, which not every compatible server knows. A base64 reply is still
 *   read.
 * - Rate limits, server errors and broken connections are retried with the
 *   chat client's backoff (honouring Retry-After).
 * - Vectors come back in the order of the texts, whatever order the reply
 *   lists them in (each carries its `index`), scaled to unit length.
 * - A reply with the wrong number of vectors, vectors of another size than
 *   `dimensions`, or values that are not numbers fails the whole call with a
 *   `provider_error` that says what to change: nothing partial is returned.
 * - An empty or whitespace-only text is not sent (providers refuse empty
 *   input) and gets the zero vector, as the local embedder gives a text
 *   without features; callers must handle it.
 *
 * Errors name the provider and model, say what to do, and never quote the API
 * key (some providers echo the key they refused).
 */
import OpenAI from 'openai';
import type { CallOutcome, CallRecorder } from '../providers/call-recorder.js';
import { ExaiError, isExaiError } from '../errors.js';
import { defaultRetryPolicy, errorClass, type RetryPolicy } from '../providers/retry.js';
import type { Embedder } from './embedder.js';
import { hostOf, redact, retryWithinDeadline, settingPrefix, TimeoutReason } from '../providers/call-helpers.js';

const modelSetting = 'EXAI_EMBEDDING_MODEL';

export interface ProviderEmbedderOptions {
  /** Name in messages and settings: `glm`, `ollama`, `openai-compat`. */
  provider: string;
  baseUrl: string;
  apiKey: string | undefined;
  /** The provider's model id, stored with every vector. */
  model: string;
  /** The vector length asked for (sent as `dimensions`) and required of every reply. */
  dimensions: number;
  /** Limit for one batch request, its retries included. */
  timeoutMs: number;
  /** Texts per request; 64 unless set. */
  batchSize?: number;
  /** Where each batch request is recorded (the metrics: duration, tokens, outcome), as chat calls are. */
  recorder?: CallRecorder;
  /** Four attempts with the chat backoff unless set. */
  retry?: RetryPolicy;
}

export const defaultEmbeddingBatchSize = 64;

/** The setting that holds the vector length, named in messages. */
const dimensionsSetting = 'EXAI_EMBEDDING_DIMENSIONS';
/** The setting that holds the model id, named in messages. */
const plural = (count: number, noun: string) => `${count} ${noun}${count === 1 ? '' : 's'}`;

/** A vector as the reply holds it: numbers, or base64 of little-endian float32 values. Undefined when it is neither. */
function readVector(value: unknown): unknown[] | undefined {
  if (Array.isArray(value)) return value as unknown[];
  if (typeof value !== 'string') return undefined;
  const bytes = Buffer.from(value, 'base64');
  if (bytes.length % 4 !== 0) return undefined;
  const vector: number[] = [];
  for (let offset = 0; offset < bytes.length; offset += 4) vector.push(bytes.readFloatLE(offset));
  return vector;
}

/** The vector scaled to unit length; the zero vector stays as it is. */
function normalise(vector: readonly number[]): number[] {
  let sum = 0;
  for (const value of vector) sum += value * value;
  if (sum === 0) return vector.map(() => 0);
  const scale = 1 / Math.sqrt(sum);
  return vector.map((value) => value * scale);
}

/** An embedding model of an OpenAI-compatible provider. */
export class ProviderEmbedder implements Embedder {
  readonly provider: string;
  readonly model: string;
  readonly dimensions: number;
  readonly local = false;
  readonly batchSize: number;
  private readonly sdk: OpenAI;
  private readonly retry: RetryPolicy;

  constructor(private readonly options: ProviderEmbedderOptions) {
    const batchSize = options.batchSize ?? defaultEmbeddingBatchSize;
    if (!Number.isInteger(options.dimensions) || options.dimensions <= 0) {
      throw new ExaiError('invalid_config', `${dimensionsSetting} must be a positive whole number of dimensions, not ${String(options.dimensions)}.`);
    }
    if (!Number.isInteger(batchSize) || batchSize <= 0) {
      throw new ExaiError('invalid_config', `The embedding batch size must be a positive whole number of texts, not ${String(batchSize)}.`);
    }
    this.provider = options.provider;
    this.model = options.model;
    this.dimensions = options.dimensions;
    this.batchSize = batchSize;
    // Retries and the deadline are ours, so they cover the whole request; the SDK's logger would print provider replies outside the JSON log.
    this.sdk = new OpenAI({ baseURL: options.baseUrl, apiKey: options.apiKey ?? 'none', maxRetries: 0, timeout: options.timeoutMs, logLevel: 'off' });
    this.retry = options.retry ?? defaultRetryPolicy;
  }

  /** Unit vectors in the order of `texts` (the zero vector for a blank text), or an ExaiError and none at all. */
  async embed(texts: readonly string[], options: { signal?: AbortSignal } = {}): Promise<number[][]> {
    const vectors: number[][] = new Array<number[]>(texts.length);
    const sent: number[] = [];
    texts.forEach((text, index) => {
      if (text.trim() === '') vectors[index] = new Array<number>(this.dimensions).fill(0);
      else sent.push(index);
    });
    const batches: number[][] = [];
    for (let start = 0; start < sent.length; start += this.batchSize) batches.push(sent.slice(start, start + this.batchSize));
    for (const [number, batch] of batches.entries()) {
      const label = batches.length === 1 ? plural(batch.length, 'text') : `batch ${number + 1} of ${batches.length} (${plural(batch.length, 'text')})`;
      const input = batch.map((index) => texts[index]!);
      const started = Date.now();
      const tries = { count: 0 };
      try {
        const reply = await this.run(label, options.signal, (signal) => {
          tries.count += 1;
          return this.sdk.embeddings.create({ model: this.model, input, dimensions: this.dimensions, encoding_format: 'float' }, { signal });
        });
        this.read(reply, batch.length, label).forEach((vector, position) => {
          vectors[batch[position]!] = vector;
        });
        this.recordCall(started, tries.count, 'ok', null, reply.usage?.prompt_tokens ?? null);
      } catch (error) {
        const code = isExaiError(error) ? error.code : 'internal';
        this.recordCall(started, tries.count, code === 'timeout' ? 'timeout' : code === 'cancelled' ? 'cancelled' : 'error', errorClassOf(error), null);
        throw error;
      }
    }
    return vectors;
  }

  /** The reply's vectors in the order of the batch, unit length; a reply that does not fit is refused whole. */
  private read(reply: unknown, count: number, label: string): number[][] {
    const { provider, model, dimensions } = this;
    const refuse = (errorClassName: string, message: string, extra: Record<string, unknown> = {}) =>
      new ExaiError('provider_error', message, { details: { provider, model, error_class: errorClassName, ...extra } });
    const checkBaseUrl = `Check that ${settingPrefix(provider)}_BASE_URL (${hostOf(this.options.baseUrl)}) points at an OpenAI-compatible API.`;
    const data = (reply as { data?: unknown } | null)?.data;
    if (!Array.isArray(data)) {
      throw refuse('malformed_reply', `${provider} embedding model ${model} answered ${label} without a list of vectors. ${checkBaseUrl}`);
    }
    if (data.length !== count) {
      throw refuse(
        'wrong_count',
        `${provider} embedding model ${model} returned ${plural(data.length, 'vector')} for ${label}; without one per text they cannot be matched to the texts. ${checkBaseUrl}`,
        { expected: count, received: data.length },
      );
    }
    const items = data as unknown[];
    // Some servers leave out `index`; then, and only then, the list's order is the texts' order.
    const indexed = items.some((item) => (item as { index?: unknown } | null)?.index !== undefined);
    const ordered = new Array<number[] | undefined>(count).fill(undefined);
    items.forEach((item, position) => {
      const index = indexed ? (item as { index?: unknown } | null)?.index : position;
      if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= count || ordered[index] !== undefined) {
        throw refuse('malformed_reply', `${provider} embedding model ${model} answered ${label} with vectors whose indexes are missing, repeated or out of range. ${checkBaseUrl}`);
      }
      const vector = readVector((item as { embedding?: unknown } | null)?.embedding);
      if (vector === undefined) {
        throw refuse('malformed_reply', `${provider} embedding model ${model} answered ${label} with an embedding that is not a list of numbers. ${checkBaseUrl}`);
      }
      if (vector.length !== dimensions) {
        throw refuse(
          'wrong_dimensions',
          `${provider} embedding model ${model} returned ${vector.length}-dimensional vectors, but ${dimensionsSetting} is ${dimensions}. ` +
            `Set ${dimensionsSetting} to ${vector.length}, or choose (in ${modelSetting}) a model that supports ${dimensions} dimensions.`,
          { expected: dimensions, received: vector.length },
        );
      }
      if (!vector.every((value): value is number => typeof value === 'number' && Number.isFinite(value))) {
        throw refuse('malformed_reply', `${provider} embedding model ${model} answered ${label} with a vector holding values that are not finite numbers.`);
      }
      ordered[index] = normalise(vector);
    });
    return ordered as number[][];
  }

  private recordCall(started: number, attempts: number, outcome: CallOutcome, errorClassName: string | null, inputTokens: number | null): void {
    this.options.recorder?.record({
      at: new Date(started).toISOString(),
      provider: this.provider,
      model: this.model,
      tool: null,
      userId: null,
      durationMs: Date.now() - started,
      timeToFirstTokenMs: null,
      inputTokens,
      outputTokens: 0,
      outcome,
      errorClass: errorClassName,
      attempts,
      params: { model: this.model, temperature: null, thinking: null, webSearch: false, maxTokens: null },
      apiKeyId: null,
    });
  }

  /** One request under one deadline, retried while the failure is transient. */
  private run<T>(label: string, callerSignal: AbortSignal | undefined, attempt: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return retryWithinDeadline({ timeoutMs: this.options.timeoutMs, signal: callerSignal, retry: this.retry }, attempt, (error, attempts, signal) =>
      this.failure(label, error, attempts, signal),
    );
  }

  /** The ExaiError for a failed request: what went wrong and what the user can do. */
  private failure(label: string, error: unknown, attempts: number, signal: AbortSignal): ExaiError {
    const { provider, model, dimensions } = this;
    const { apiKey, baseUrl, timeoutMs } = this.options;
    const tried = plural(attempts, 'attempt');
    if (signal.aborted && signal.reason instanceof TimeoutReason) {
      const limit = timeoutMs < 1000 ? `${timeoutMs} ms` : `${Math.round(timeoutMs / 1000)} s`;
      return new ExaiError('timeout', `${provider} embedding model ${model} did not embed ${label} within ${limit} (${tried}). Try again later.`, {
        details: { provider, model, error_class: 'timeout' },
      });
    }
    if (signal.aborted) return new ExaiError('cancelled', `Embedding ${label} with ${provider} model ${model} was cancelled.`);
    if (isExaiError(error)) return error;
    const kind = errorClass(error);
    const raw = error instanceof Error ? error.message : String(error);
    const detail = redact(raw, apiKey).replace(/[.\s]+$/, '');
    const prefix = settingPrefix(provider);
    const hint =
      kind === 'http_401'
        ? `${provider} did not accept the API key: check ${prefix}_API_KEY.`
        : kind === 'http_403'
          ? `${provider} refused the request: check that the account of ${prefix}_API_KEY may use ${model}.`
          : kind === 'http_404' || kind === 'http_405'
            ? `${provider} at ${hostOf(baseUrl)} does not know the embedding model ${model}, or has no /embeddings endpoint: check ${modelSetting} and ${prefix}_BASE_URL.`
            : kind === 'http_400' && /dimension/i.test(raw)
              ? `${model} may not support ${dimensions} dimensions: set ${dimensionsSetting} to a size it supports (GLM embedding-3: 256, 512, 1024 or 2048).`
              : kind === 'rate_limited'
                ? `${provider} is rate limiting these requests: try again in a minute.`
                : /^http_5/.test(kind)
                  ? `${provider} is having trouble: try again later.`
                  : kind === 'network'
                    ? `Try again; if it keeps failing, check the network and ${prefix}_BASE_URL (${hostOf(baseUrl)}).`
                    : undefined;
    const transient = kind === 'network' || kind === 'rate_limited' || /^http_5/.test(kind);
    return new ExaiError(
      transient ? 'provider_unavailable' : 'provider_error',
      `${provider} embedding model ${model} failed on ${label} after ${tried} (${kind}): ${detail}.${hint === undefined ? '' : ` ${hint}`}`,
      // The cause goes to logs; not when it quotes the key.
      { ...(redact(raw, apiKey) === raw ? { cause: error } : {}), details: { provider, model, error_class: kind } },
    );
  }
}

/** The short error class recorded with a failed batch. */
function errorClassOf(error: unknown): string {
  const details = isExaiError(error) ? error.details : undefined;
  const recorded = details?.error_class;
  return typeof recorded === 'string' ? recorded.slice(0, 100) : isExaiError(error) ? error.code : 'internal';
}
