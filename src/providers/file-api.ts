/**
 * The file APIs of Kimi and GLM, through the same `openai` SDK client as the
 * chat calls: upload a document for extraction (purpose `file-extract`), read
 * back what the provider extracted, delete it. Providers expire uploaded files,
 * so an id that is gone fails with an error `isGoneFileError` recognises, and
 * the caller uploads again. Rate limits, server errors and broken connections
 * are retried with the chat client's backoff; every other failure becomes an
 * ExaiError that names the provider and what to do, and never quotes the API key.
 */
import OpenAI, { APIError, toFile } from 'openai';
import { ExaiError, isExaiError } from '../errors.js';
import { defaultRetryPolicy, errorClass, type RetryPolicy } from './retry.js';
import { hostOf, redact, retryWithinDeadline, settingPrefix, TimeoutReason } from './call-helpers.js';

export interface FileApiOptions {
  /** Name in messages and settings: `kimi`, `glm`. */
  provider: string;
  baseUrl: string;
  apiKey: string | undefined;
  /** Limit for one operation, retries included. */
  timeoutMs: number;
  /** Three attempts with the chat backoff unless set. */
  retry?: RetryPolicy;
}

/** The content comes as `bytes`, or as a `stream` (a Node Readable, a web ReadableStream, …) that is read once, before the first attempt. */
export type UploadFileInput = {
  /** The file name the provider sees (its extension guides extraction). */
  name: string;
  mimeType: string;
  /** `file-extract` unless set. */
  purpose?: string;
  signal?: AbortSignal;
} & ({ bytes: Uint8Array; stream?: never } | { stream: AsyncIterable<Uint8Array>; bytes?: never });

export interface UploadedFile {
  id: string;
  /** The size the provider reports, else the size sent. */
  bytes: number;
}

export interface FileCallOptions {
  signal?: AbortSignal;
}

export interface ProviderFileApi {
  readonly provider: string;
  uploadFile(input: UploadFileInput): Promise<UploadedFile>;
  /** What the provider extracted, as its body came (Kimi: a JSON text holding `content`), unparsed. */
  fileContent(id: string, options?: FileCallOptions): Promise<string>;
  /** True when the file was deleted, false when the provider no longer had it: either way it is gone. */
  deleteFile(id: string, options?: FileCallOptions): Promise<boolean>;
}

/** The file error's `details.error_class` when the provider no longer has the id. */
const goneClass = 'file_gone';

/** An error for a file id the provider no longer has (expired or deleted): upload the file again. */
export function isGoneFileError(error: unknown): error is ExaiError {
  return isExaiError(error) && error.code === 'not_found' && error.details?.error_class === goneClass;
}

/** A couple of retries: a file operation is a step inside a tool call, which has its own deadline. */
const fileRetryPolicy: RetryPolicy = { ...defaultRetryPolicy, maxAttempts: 3 };

/** Providers answer an unknown id with 404, or with 400 and a message that says so. */
function isNotFound(error: unknown): boolean {
  if (!(error instanceof APIError)) return false;
  return error.status === 404 || (error.status === 400 && /not[\s_-]*found|does not exist|no such file/i.test(error.message));
}

function isTooLarge(error: unknown): boolean {
  if (!(error instanceof APIError)) return false;
  return error.status === 413 || (error.status === 400 && /too large|exceeds?\b.*\b(size|limit)|size limit/i.test(error.message));
}

/** One operation, for messages: `upload of "notes.pdf"`, `content of file-abc`. */
interface Operation {
  label: string;
  /** The id it is about; a 404 then means the file is gone, not that the API is missing. */
  fileId?: string;
}

class FileApi implements ProviderFileApi {
  private readonly sdk: OpenAI;
  private readonly retry: RetryPolicy;

  constructor(private readonly options: FileApiOptions) {
    // Retries and the deadline are ours, so they cover the whole operation; the SDK's logger would print provider replies outside the JSON log.
    this.sdk = new OpenAI({ baseURL: options.baseUrl, apiKey: options.apiKey ?? 'none', maxRetries: 0, timeout: options.timeoutMs, logLevel: 'off' });
    this.retry = options.retry ?? fileRetryPolicy;
  }

  get provider(): string {
    return this.options.provider;
  }

  async uploadFile(input: UploadFileInput): Promise<UploadedFile> {
    // A File can be sent again on a retry; a stream could be read only once.
    const file = await toFile(input.bytes ?? input.stream, input.name, { type: input.mimeType });
    const purpose = input.purpose ?? 'file-extract';
    const operation = { label: `upload of ${JSON.stringify(input.name)} (${file.size} bytes)` };
    // Kimi's and GLM's purposes (`file-extract`, …) are not in the SDK's OpenAI list.
    const created = await this.run(operation, input.signal, (signal) => this.sdk.files.create({ file, purpose: purpose as OpenAI.FilePurpose }, { signal }));
    const { id, bytes } = created as { id?: unknown; bytes?: unknown };
    if (typeof id !== 'string' || id === '') {
      throw new ExaiError('provider_error', `${this.provider} accepted the ${operation.label} but sent no file id back. ${this.checkBaseUrl()}`, {
        details: { provider: this.provider, error_class: 'malformed_reply' },
      });
    }
    return { id, bytes: typeof bytes === 'number' ? bytes : file.size };
  }

  async fileContent(id: string, options: FileCallOptions = {}): Promise<string> {
    return this.run({ label: `content of file ${id}`, fileId: id }, options.signal, async (signal) => {
      const response = await this.sdk.files.content(id, { signal });
      // Read inside the attempt: a connection that breaks mid-body is retried like one that broke earlier.
      return response.text();
    });
  }

  async deleteFile(id: string, options: FileCallOptions = {}): Promise<boolean> {
    try {
      await this.run({ label: `deletion of file ${id}`, fileId: id }, options.signal, (signal) => this.sdk.files.delete(id, { signal }));
      return true;
    } catch (error) {
      if (isGoneFileError(error)) return false;
      throw error;
    }
  }

  private checkBaseUrl(): string {
    return `Check that ${settingPrefix(this.provider)}_BASE_URL (${hostOf(this.options.baseUrl)}) points at ${this.provider}'s API.`;
  }

  /** One operation under one deadline, retried while the failure is transient. */
  private run<T>(operation: Operation, callerSignal: AbortSignal | undefined, attempt: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return retryWithinDeadline({ timeoutMs: this.options.timeoutMs, signal: callerSignal, retry: this.retry }, attempt, (error, attempts, signal) =>
      this.failure(operation, error, attempts, signal),
    );
  }

  /** The ExaiError for a failed operation: what went wrong and what the user can do. */
  private failure(operation: Operation, error: unknown, attempts: number, signal: AbortSignal): ExaiError {
    const { provider, apiKey } = this.options;
    const tried = `${attempts} attempt${attempts === 1 ? '' : 's'}`;
    if (signal.aborted && signal.reason instanceof TimeoutReason) {
      const { timeoutMs } = this.options;
      const limit = timeoutMs < 1000 ? `${timeoutMs} ms` : `${Math.round(timeoutMs / 1000)} s`;
      return new ExaiError('timeout', `The ${provider} file ${operation.label} did not finish within ${limit} (${tried}).`, {
        details: { provider, error_class: 'timeout' },
      });
    }
    if (signal.aborted) return new ExaiError('cancelled', `The ${provider} file ${operation.label} was cancelled.`);
    if (isExaiError(error)) return error;
    if (operation.fileId !== undefined && isNotFound(error)) {
      return new ExaiError('not_found', `${provider} no longer has file ${operation.fileId}: it expired or was deleted. Upload the file again.`, {
        details: { provider, file_id: operation.fileId, error_class: goneClass },
      });
    }
    const kind = errorClass(error);
    const raw = error instanceof Error ? error.message : String(error);
    const detail = redact(raw, apiKey).replace(/[.\s]+$/, '');
    // The cause goes to logs; not when it quotes the key.
    const cause = redact(raw, apiKey) === raw ? { cause: error } : {};
    const details = { provider, error_class: kind, ...(operation.fileId === undefined ? {} : { file_id: operation.fileId }) };
    if (isTooLarge(error)) {
      return new ExaiError('too_large', `${provider} refused the ${operation.label} as too large (${detail}). Send a smaller file, or only the part that matters.`, {
        ...cause,
        details,
      });
    }
    const prefix = settingPrefix(provider);
    const hint =
      kind === 'http_401'
        ? `${provider} did not accept the API key: check ${prefix}_API_KEY.`
        : kind === 'http_403'
          ? `${provider} refused the request: check that the account of ${prefix}_API_KEY may use the file API.`
          : kind === 'http_404' || kind === 'http_405'
            ? `${provider} at ${hostOf(this.options.baseUrl)} has no file API there. ${this.checkBaseUrl()}`
            : kind === 'rate_limited'
              ? `${provider} is rate limiting these requests: try again in a minute.`
              : /^http_5/.test(kind)
                ? `${provider} is having trouble: try again later.`
                : kind === 'network'
                  ? `Try again; if it keeps failing, check the network and ${prefix}_BASE_URL (${hostOf(this.options.baseUrl)}).`
                  : undefined;
    const transient = kind === 'network' || kind === 'rate_limited' || /^http_5/.test(kind);
    return new ExaiError(
      transient ? 'provider_unavailable' : 'provider_error',
      `The ${provider} file ${operation.label} failed after ${tried} (${kind}): ${detail}.${hint === undefined ? '' : ` ${hint}`}`,
      { ...cause, details },
    );
  }
}

/** The file API of one provider (`kimi`, `glm`), at its base URL with its key. */
export function providerFileApi(options: FileApiOptions): ProviderFileApi {
  return new FileApi(options);
}
