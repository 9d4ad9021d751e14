/**
 * A small OpenAI-compatible server for the provider tests: POST
 * /chat/completions with and without SSE streaming (`data: … ` lines ending in
 * `data: [DONE]`), usage in the last chunk, `reasoning_content` deltas as Kimi
 * and GLM send them, tool-call turns (Kimi's `$web_search`) and GLM's top-level
 * `web_search` results, and broken replies (raw bodies, streams cut short).
 * Each request takes the next scripted reply; every
 * request is recorded, including whether its client hung up.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

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

export interface RecordedRequest {
  at: number;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
  /** The client closed the connection before the reply ended. */
  aborted: boolean;
}

export interface FakeOpenAI {
  baseUrl: string;
  requests: RecordedRequest[];
  /** The most requests that were ever open at once. */
  readonly peakConcurrency: number;
  /** Replies for the next requests, in order; after them every request gets `fallback`. */
  script(...replies: FakeReply[]): void;
  fallback: FakeReply;
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

  const server: Server = createServer((request, response) => {
    let raw = '';
    request.on('data', (chunk: Buffer) => (raw += chunk.toString('utf8')));
    request.on('end', () => {
      const record: RecordedRequest = { at: Date.now(), headers: request.headers, body: {}, aborted: false };
      try {
        record.body = JSON.parse(raw || '{}') as Record<string, unknown>;
      } catch {
        response.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'bad json' } }));
        return;
      }
      requests.push(record);
      state.open += 1;
      state.peak = Math.max(state.peak, state.open);
      response.on('close', () => {
        state.open -= 1;
        if (!response.writableFinished) record.aborted = true;
      });
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
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
