/**
 * A zero-latency OpenAI-compatible provider for the MCP overhead benchmark:
 * POST /v1/chat/completions answers at once with a short SSE stream (a role
 * chunk, one content chunk, a final chunk with finish_reason 'stop' and usage,
 * then `data: [DONE]`) written in one piece, on a keep-alive connection. It
 * reads the request body (a provider must) but does not parse it; anything
 * else gets a 404. Requests are counted so the benchmark can check the model
 * was really called once per `chat`.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeProvider {
  /** `http://127.0.0.1:<port>/v1`, for OPENAI_COMPAT_BASE_URL. */
  baseUrl: string;
  /** Chat completions answered so far. */
  readonly completions: number;
  close(): Promise<void>;
}

/** What the fake model says. */
export const fakeAnswer = 'Noted: looks right to me.';

function streamBody(model: string, serial: number): string {
  const id = `chatcmpl-bench-${serial}`;
  const created = Math.floor(Date.now() / 1000);
  const chunk = (delta: Record<string, unknown>, finish: string | null, extra: Record<string, unknown> = {}) =>
    `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finish }], ...extra })}\n\n`;
  return (
    chunk({ role: 'assistant', content: '' }, null) +
    chunk({ content: fakeAnswer }, null) +
    chunk({}, 'stop', { usage: { prompt_tokens: 64, completion_tokens: 8, total_tokens: 72 } }) +
    'data: [DONE]\n\n'
  );
}

export async function startFakeProvider(): Promise<FakeProvider> {
  let completions = 0;
  const server: Server = createServer((request, response) => {
    request.resume(); // drain the body; its content does not change the answer
    request.on('end', () => {
      if (request.method !== 'POST' || request.url !== '/v1/chat/completions') {
        response.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'not found' } }));
        return;
      }
      completions++;
      response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
      response.end(streamBody('bench-model', completions));
    });
  });
  // Calls are continuous, but set-up phases may pause: keep idle connections well past them.
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    get completions() {
      return completions;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
