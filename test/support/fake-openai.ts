/**
 * A small OpenAI-compatible server for the provider tests: POST
 * /chat/completions with and without SSE streaming (`data: … ` lines ending in
 * `data: [DONE]`), usage in the last chunk, `reasoning_content` deltas as Kimi
 * and GLM send them, tool-call turns (Kimi's `$web_search`) and GLM's top-level
 * `web_search` results, and broken replies (raw bodies, streams cut short).
 * Each request takes the next scripted reply; every
 * request is recorded, including whether its client hung up.
 *
 * Files, as Kimi's and GLM's file APIs (document extraction) answer them:
 * POST /files (multipart `file` and `purpose`), GET /files, GET /files/{id},
 * GET /files/{id}/content and DELETE /files/{id}, kept in memory. The content
 * stands in for extraction: whatever was uploaded, its bytes decoded as UTF-8,
 * wrapped as Kimi wraps extracted text, in a JSON object
 * `{"content", "file_type", "filename", "title": "", "type": "file"}`.
 * Unknown or forgotten ids get 404 `{"error":{"message":"file not found",
 * "type":"invalid_request_error"}}`, as when the provider expires them. File
 * requests take their own script (`scriptFiles`), so chat scripts stay as
 * they were.
 *
 * Embeddings, as OpenAI-compatible providers (GLM `embedding-3`, Ollama)
 * answer them: POST /embeddings with `input` (a string or strings), `model`
 * and optional `dimensions` (8 unless sent) gets `{object: 'list', data:
 * [{object: 'embedding', index, embedding}], model, usage}`. Each vector is
 * `fakeEmbedding(text, dimensions)`: derived from the text alone, the same on
 * every run, and not of unit length. Base64 vectors (little-endian float32)
 * when `encoding_format` is `base64`, as the SDK asks unless told otherwise.
 * An empty string in the input gets 400, as OpenAI answers it. Embedding
 * requests take their own script (`scriptEmbeddings`), which can also bend a
 * reply (wrong dimension, missing vectors, shuffled order);
 * `embeddingDimensionsOverride` and `shuffleEmbeddings` bend every reply.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { seededRandom } from '../../bench/workload.js';

type Usage = { prompt_tokens: number; completion_tokens: number };

/** One entry of GLM's `web_search` array. */
export type FakeSearchResult = { title: string; link: string; media?: string; content?: string };

export type FakeReply =
  | {
      kind: 'answer';
      content: string;
      reasoning?: string;
      usage?: Usage;
      /** GLM's top-level `web_search` results: in the first chunk, or in the JSON reply. */
      webSearch?: FakeSearchResult[];
      /** Pause before the first byte, and between stream chunks. */
      delayMs?: number;
      chunkDelayMs?: number;
    }
  /** A turn that ends in tool calls (finish_reason `tool_calls`); each call's arguments stream in several pieces. */
  | {
      kind: 'tool_calls';
      calls: { id: string; name: string; arguments: string }[];
      content?: string;
      reasoning?: string;
      usage?: Usage;
      delayMs?: number;
      chunkDelayMs?: number;
    }
  | { kind: 'error'; status: number; body?: unknown; headers?: Record<string, string> }
  /** Accepts the request and never answers. */
  | { kind: 'hang' }
  /** Closes the connection without an answer. */
  | { kind: 'drop' }
  /** Sends `body` as it is (status 200 and an event stream unless set): malformed JSON, a broken SSE stream, an HTML page. */
  | { kind: 'raw'; body: string; status?: number; contentType?: string }
  /**
   * Streams the first `chunks` content chunks of `content`, then destroys the
   * connection (`end: 'destroy'`, the default) or ends the response properly
   * but without a finish_reason or `data: [DONE]` (`end: 'close'`).
   */
  | { kind: 'cut'; content: string; chunks: number; end?: 'destroy' | 'close' };

/**
 * What the next embedding request gets: `serve` answers it, optionally bent
 * (vectors of `dimensions` whatever was asked, the last `omit` vectors left
 * out, the data in shuffled order); the others work as the chat replies of the
 * same kind do.
 */
export type FakeEmbeddingReply =
  | { kind: 'serve'; dimensions?: number; omit?: number; shuffle?: boolean }
  | Extract<FakeReply, { kind: 'error' | 'hang' | 'drop' | 'raw' }>;

/** The vector the fake answers for `text`: values in [-1, 1) seeded by the text (FNV-1a), not normalised. */
export function fakeEmbedding(text: string, dimensions: number): number[] {
  let seed = 0x811c9dc5;
  for (let index = 0; index < text.length; index += 1) seed = Math.imul(seed ^ text.charCodeAt(index), 0x01000193);
  const random = seededRandom(seed);
  return Array.from({ length: dimensions }, () => random() * 2 - 1);
}

export interface RecordedRequest {
  at: number;
  method: string;
  /** The URL path without the query, e.g. `/v1/chat/completions`, `/v1/files/file-abc/content`. */
  path: string;
  headers: IncomingMessage['headers'];
  /** The JSON body; for an upload, its form's text fields (`purpose`). */
  body: Record<string, unknown>;
  /** Set on every request to the file endpoints: what it was about, as far as it got. */
  file?: FileRequestInfo;
  /** The client closed the connection before the reply ended. */
  aborted: boolean;
}

export interface FileRequestInfo {
  /** The file the path names (GET/DELETE /files/{id}), or the id an upload was given. */
  id?: string;
  purpose?: string;
  filename?: string;
  /** Uploaded bytes. */
  size?: number;
  mimeType?: string;
}

/** A file the fake holds. */
export interface FakeStoredFile {
  id: string;
  filename: string;
  purpose: string;
  mimeType: string;
  bytes: Buffer;
  /** Unix seconds. */
  createdAt: number;
}

/**
 * What the next file request gets: `serve` answers it normally; the others
 * work as the chat replies of the same kind do.
 */
export type FakeFileReply = { kind: 'serve' } | Extract<FakeReply, { kind: 'error' | 'hang' | 'drop' | 'raw' }>;

export interface FakeOpenAI {
  baseUrl: string;
  requests: RecordedRequest[];
  /** The most requests that were ever open at once. */
  readonly peakConcurrency: number;
  /** Replies for the next requests, in order; after them every request gets `fallback`. */
  script(...replies: FakeReply[]): void;
  fallback: FakeReply;
  /** The files held now, by id. */
  readonly files: ReadonlyMap<string, FakeStoredFile>;
  /** Replies for the next file requests, in order, before they are served; chat requests do not take them. */
  scriptFiles(...replies: FakeFileReply[]): void;
  /** Drops a file as the provider does when it expires: its id then gets 404 (or `goneStatus`). False when it was not held. */
  forgetFile(id: string): boolean;
  forgetAllFiles(): void;
  /** The status for an unknown id: 404, as Kimi answers, unless set (400, which some providers send with the same message). */
  goneStatus: number;
  /** Uploads larger than this get 413 `file too large`; no limit unless set. */
  maxFileBytes: number | undefined;
  /** Replies for the next embedding requests, in order, before they are served; chat and file requests do not take them. */
  scriptEmbeddings(...replies: FakeEmbeddingReply[]): void;
  /** Every embedding reply has vectors of this length, whatever was asked; unset, the asked `dimensions` (8 unless sent). */
  embeddingDimensionsOverride: number | undefined;
  /** Every embedding reply lists its vectors out of order (their `index` still right). */
  shuffleEmbeddings: boolean;
  close(): Promise<void>;
}

function chunks(text: string, size: number): string[] {
  const parts: string[] = [];
  for (let index = 0; index < text.length; index += size) parts.push(text.slice(index, index + size));
  return parts;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function startFakeOpenAI(): Promise<FakeOpenAI> {
  const queue: FakeReply[] = [];
  const requests: RecordedRequest[] = [];
  const state = { fallback: { kind: 'answer', content: 'ok' } as FakeReply, open: 0, peak: 0 };

  async function answer(reply: Extract<FakeReply, { kind: 'answer' | 'tool_calls' }>, body: Record<string, unknown>, response: ServerResponse, record: RecordedRequest) {
    const content = reply.content ?? '';
    const calls = reply.kind === 'tool_calls' ? reply.calls : [];
    const finishReason = reply.kind === 'tool_calls' ? 'tool_calls' : 'stop';
    const webSearch = reply.kind === 'answer' && reply.webSearch !== undefined ? { web_search: reply.webSearch } : {};
    const usage = reply.usage ?? { prompt_tokens: 10, completion_tokens: Math.max(1, Math.ceil(content.length / 4)) };
    const id = `chatcmpl-${requests.length}`;
    const model = String(body.model);
    if (reply.delayMs) await sleep(reply.delayMs);
    if (body.stream !== true) {
      response.writeHead(200, { 'content-type': 'application/json' });
      const message: Record<string, unknown> = { role: 'assistant', content: reply.kind === 'tool_calls' && reply.content === undefined ? null : content };
      if (reply.reasoning !== undefined) message.reasoning_content = reply.reasoning;
      if (calls.length > 0) message.tool_calls = calls.map((call) => ({ id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } }));
      response.end(
        JSON.stringify({
          id,
          object: 'chat.completion',
          created: Math.floor(Date.now() / 1000),
          model,
          choices: [{ index: 0, message, finish_reason: finishReason }],
          usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
          ...webSearch,
        }),
      );
      return;
    }
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const send = (delta: Record<string, unknown>, finish: string | null, extra: Record<string, unknown> = {}) =>
      response.write(
        `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model, choices: [{ index: 0, delta, finish_reason: finish }], ...extra })}\n\n`,
      );
    send({ role: 'assistant', content: '' }, null, webSearch);
    const deltas: Record<string, unknown>[] = [
      ...chunks(reply.reasoning ?? '', 8).map((part) => ({ reasoning_content: part })),
      ...chunks(content, 8).map((part) => ({ content: part })),
      // As OpenAI streams them: id, type and name first, then the arguments in pieces.
      ...calls.flatMap((call, index) => [
        { tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.name, arguments: '' } }] },
        ...chunks(call.arguments, 8).map((part) => ({ tool_calls: [{ index, function: { arguments: part } }] })),
      ]),
    ];
    for (const delta of deltas) {
      if (record.aborted) return;
      send(delta, null);
      if (reply.chunkDelayMs) await sleep(reply.chunkDelayMs);
    }
    send({}, finishReason, { usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } });
    response.end('data: [DONE]\n\n');
  }

  async function cut(reply: Extract<FakeReply, { kind: 'cut' }>, body: Record<string, unknown>, response: ServerResponse) {
    const id = `chatcmpl-${requests.length}`;
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const send = (delta: Record<string, unknown>) =>
      response.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model: String(body.model), choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`);
    send({ role: 'assistant', content: '' });
    for (const part of chunks(reply.content, 8).slice(0, reply.chunks)) send({ content: part });
    // Let the chunks reach the client before the connection goes.
    await sleep(50);
    if (reply.end === 'close') response.end();
    else response.destroy();
  }

  const fileQueue: FakeFileReply[] = [];
  const files = new Map<string, FakeStoredFile>();
  const fileState = { goneStatus: 404, maxFileBytes: undefined as number | undefined };

  const embeddingQueue: FakeEmbeddingReply[] = [];
  const embeddingState = { dimensionsOverride: undefined as number | undefined, shuffle: false };

  const sendJson = (response: ServerResponse, status: number, body: unknown) =>
    response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  const invalid = (response: ServerResponse, status: number, message: string) => sendJson(response, status, { error: { message, type: 'invalid_request_error' } });
  const metadata = (file: FakeStoredFile) => ({
    id: file.id,
    object: 'file',
    bytes: file.bytes.length,
    created_at: file.createdAt,
    filename: file.filename,
    purpose: file.purpose,
    status: 'ok',
    status_details: '',
  });

  /** The file endpoints; `route` is what follows `/files` in the path. */
  async function serveFile(request: IncomingMessage, response: ServerResponse, raw: Buffer, route: { id?: string; content: boolean }, record: RecordedRequest) {
    const info: FileRequestInfo = route.id === undefined ? {} : { id: route.id };
    record.file = info;
    const method = request.method ?? 'GET';
    if (method === 'POST' && route.id === undefined) {
      // Parsed before any scripted failure, so the log shows what each attempt sent.
      let form: FormData;
      try {
        form = await new Response(raw, { headers: { 'content-type': request.headers['content-type'] ?? '' } }).formData();
      } catch {
        return invalid(response, 400, 'expected a multipart/form-data body');
      }
      const part = form.get('file');
      const purpose = form.get('purpose');
      for (const [name, value] of form) if (typeof value === 'string') record.body[name] = value;
      if (typeof purpose === 'string') info.purpose = purpose;
      if (part !== null && typeof part !== 'string') Object.assign(info, { filename: part.name, size: part.size, mimeType: part.type });
      const scripted = fileQueue.shift();
      if (scripted !== undefined && scripted.kind !== 'serve') return misbehave(scripted, request, response);
      if (part === null || typeof part === 'string') return invalid(response, 400, 'file is required');
      if (typeof purpose !== 'string' || purpose === '') return invalid(response, 400, 'purpose is required');
      if (fileState.maxFileBytes !== undefined && part.size > fileState.maxFileBytes) {
        return invalid(response, 413, `file too large: ${part.size} bytes, the limit is ${fileState.maxFileBytes}`);
      }
      const stored: FakeStoredFile = {
        id: `file-${randomBytes(9).toString('base64url')}`,
        filename: part.name,
        purpose,
        mimeType: part.type || 'application/octet-stream',
        bytes: Buffer.from(await part.arrayBuffer()),
        createdAt: Math.floor(Date.now() / 1000),
      };
      files.set(stored.id, stored);
      info.id = stored.id;
      return sendJson(response, 200, metadata(stored));
    }
    const scripted = fileQueue.shift();
    if (scripted !== undefined && scripted.kind !== 'serve') return misbehave(scripted, request, response);
    if (method === 'GET' && route.id === undefined) return sendJson(response, 200, { object: 'list', data: [...files.values()].map(metadata) });
    if (route.id === undefined || (method !== 'GET' && method !== 'DELETE') || (method === 'DELETE' && route.content)) {
      return invalid(response, 405, `${method} is not allowed here`);
    }
    const file = files.get(route.id);
    if (file === undefined) return invalid(response, fileState.goneStatus, 'file not found');
    Object.assign(info, { filename: file.filename, purpose: file.purpose, size: file.bytes.length, mimeType: file.mimeType });
    if (method === 'DELETE') {
      files.delete(file.id);
      return sendJson(response, 200, { id: file.id, object: 'file', deleted: true });
    }
    if (!route.content) return sendJson(response, 200, metadata(file));
    // Kimi's extraction result: the text in a JSON object, which callers pass on as it is.
    return sendJson(response, 200, { content: file.bytes.toString('utf8'), file_type: file.mimeType, filename: file.filename, title: '', type: 'file' });
  }

  /** POST /embeddings, OpenAI's shape. */
  function serveEmbeddings(request: IncomingMessage, response: ServerResponse, record: RecordedRequest) {
    const scripted = embeddingQueue.shift();
    if (scripted !== undefined && scripted.kind !== 'serve') return misbehave(scripted, request, response);
    const { input, dimensions: asked, model, encoding_format: encoding } = record.body;
    const texts = typeof input === 'string' ? [input] : Array.isArray(input) && input.every((text) => typeof text === 'string') ? (input as string[]) : undefined;
    if (texts === undefined || texts.length === 0) return invalid(response, 400, 'input must be a string or a non-empty array of strings');
    if (texts.some((text) => text === '')) return invalid(response, 400, "'$.input' is invalid: input cannot be an empty string");
    if (asked !== undefined && (typeof asked !== 'number' || !Number.isInteger(asked) || asked <= 0)) {
      return invalid(response, 400, 'dimensions must be a positive integer');
    }
    const dimensions = scripted?.dimensions ?? embeddingState.dimensionsOverride ?? (asked as number | undefined) ?? 8;
    const vectors = texts.map((text, index) => ({ index, vector: fakeEmbedding(text, dimensions) })).slice(0, Math.max(0, texts.length - (scripted?.omit ?? 0)));
    if ((scripted?.shuffle ?? embeddingState.shuffle) && vectors.length > 1) {
      const random = seededRandom(requests.length);
      const original = vectors.map((entry) => entry.index).join();
      for (let index = vectors.length - 1; index > 0; index -= 1) {
        const other = Math.floor(random() * (index + 1));
        [vectors[index], vectors[other]] = [vectors[other]!, vectors[index]!];
      }
      if (vectors.map((entry) => entry.index).join() === original) vectors.reverse();
    }
    const tokens = texts.reduce((sum, text) => sum + Math.max(1, Math.ceil(text.length / 4)), 0);
    return sendJson(response, 200, {
      object: 'list',
      data: vectors.map(({ index, vector }) => ({
        object: 'embedding',
        index,
        embedding: encoding === 'base64' ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector,
      })),
      model: String(model),
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    });
  }

  /** The scripted replies that are not answers, for chat, file and embedding requests alike. */
  function misbehave(reply: Extract<FakeReply, { kind: 'error' | 'hang' | 'drop' | 'raw' }>, request: IncomingMessage, response: ServerResponse) {
    switch (reply.kind) {
      case 'error':
        response
          .writeHead(reply.status, { 'content-type': 'application/json', ...(reply.headers ?? {}) })
          .end(JSON.stringify(reply.body ?? { error: { message: `fake error ${reply.status}`, type: 'fake' } }));
        return;
      case 'hang':
        return;
      case 'drop':
        request.socket.destroy();
        return;
      case 'raw':
        response.writeHead(reply.status ?? 200, { 'content-type': reply.contentType ?? 'text/event-stream' }).end(reply.body);
        return;
    }
  }

  const server: Server = createServer((request, response) => {
    // Bytes, not text: uploads are multipart and may hold anything.
    const parts: Buffer[] = [];
    request.on('data', (chunk: Buffer) => parts.push(chunk));
    request.on('end', () => {
      const raw = Buffer.concat(parts);
      const path = new URL(request.url ?? '/', 'http://fake').pathname;
      const record: RecordedRequest = { at: Date.now(), method: request.method ?? 'GET', path, headers: request.headers, body: {}, aborted: false };
      const fileRoute = /\/files(?:\/([^/]+)(\/content)?)?\/?$/.exec(path);
      if (fileRoute === null) {
        try {
          record.body = JSON.parse(raw.toString('utf8') || '{}') as Record<string, unknown>;
        } catch {
          response.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'bad json' } }));
          return;
        }
      }
      requests.push(record);
      state.open += 1;
      state.peak = Math.max(state.peak, state.open);
      response.on('close', () => {
        state.open -= 1;
        if (!response.writableFinished) record.aborted = true;
      });
      if (fileRoute !== null) {
        const id = fileRoute[1] === undefined ? undefined : decodeURIComponent(fileRoute[1]);
        void serveFile(request, response, raw, { ...(id === undefined ? {} : { id }), content: fileRoute[2] !== undefined }, record);
        return;
      }
      if (request.method === 'POST' && path.endsWith('/embeddings')) {
        serveEmbeddings(request, response, record);
        return;
      }
      if (request.method !== 'POST' || !request.url?.endsWith('/chat/completions')) {
        response.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'not found' } }));
        return;
      }
      const reply = queue.shift() ?? state.fallback;
      switch (reply.kind) {
        case 'answer':
        case 'tool_calls':
          void answer(reply, record.body, response, record);
          return;
        case 'error':
        case 'hang':
        case 'drop':
        case 'raw':
          misbehave(reply, request, response);
          return;
        case 'cut':
          void cut(reply, record.body, response);
          return;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    get peakConcurrency() {
      return state.peak;
    },
    script: (...replies) => void queue.push(...replies),
    get fallback() {
      return state.fallback;
    },
    set fallback(reply: FakeReply) {
      state.fallback = reply;
    },
    files,
    scriptFiles: (...replies) => void fileQueue.push(...replies),
    forgetFile: (id) => files.delete(id),
    forgetAllFiles: () => files.clear(),
    get goneStatus() {
      return fileState.goneStatus;
    },
    set goneStatus(status: number) {
      fileState.goneStatus = status;
    },
    get maxFileBytes() {
      return fileState.maxFileBytes;
    },
    set maxFileBytes(limit: number | undefined) {
      fileState.maxFileBytes = limit;
    },
    scriptEmbeddings: (...replies) => void embeddingQueue.push(...replies),
    get embeddingDimensionsOverride() {
      return embeddingState.dimensionsOverride;
    },
    set embeddingDimensionsOverride(dimensions: number | undefined) {
      embeddingState.dimensionsOverride = dimensions;
    },
    get shuffleEmbeddings() {
      return embeddingState.shuffle;
    },
    set shuffleEmbeddings(shuffle: boolean) {
      embeddingState.shuffle = shuffle;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
