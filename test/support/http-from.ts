/**
 * HTTP from a chosen local address. exai counts failed authentications (and
 * locks out) per client address, and every suite on the shared test Redis
 * shares those counts; sending from a random 127.x.y.z keeps one suite's
 * failures from locking another suite (or test) out. A non-loopback local
 * address lets a test act as a remote client without leaving the machine.
 */
import { randomInt } from 'node:crypto';
import http from 'node:http';
import os from 'node:os';
import { Readable } from 'node:stream';

/** What the MCP SDK's transport accepts as `fetch`. */
export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>;

/** A loopback address no other suite uses (127.0.0.x is left to everyone else). */
export function randomLoopbackAddress(): string {
  return `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;
}

/** An IPv4 address of this machine that is not loopback, if it has one. */
export function nonLoopbackAddress(): string | undefined {
  return Object.values(os.networkInterfaces())
    .flat()
    .find((entry) => entry !== undefined && entry.family === 'IPv4' && !entry.internal)?.address;
}

const nullBodyStatuses = new Set([101, 103, 204, 205, 304]);

function bodyBytes(body: RequestInit['body']): Buffer | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof Uint8Array) return Buffer.from(body);
  throw new Error('fetchFrom sends only string and byte bodies');
}

/** A fetch whose connections start at `localAddress`; the response body streams (SSE works). */
export function fetchFrom(localAddress: string): FetchLike {
  return (input, init = {}) =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string> = Object.fromEntries(new Headers(init.headers));
      const body = bodyBytes(init.body);
      if (body !== undefined) headers['content-length'] = String(body.length);
      // agent: false: one connection per request, so nothing lingers in a pool after a test.
      const request = http.request(
        new URL(String(input)),
        { method: init.method ?? 'GET', headers, localAddress, agent: false, ...(init.signal ? { signal: init.signal } : {}) },
        (response) => {
          const status = response.statusCode ?? 0;
          const responseHeaders = new Headers();
          for (const [name, value] of Object.entries(response.headers)) {
            for (const item of [value ?? []].flat()) responseHeaders.append(name, item);
          }
          const empty = nullBodyStatuses.has(status) || init.method === 'HEAD';
          if (empty) response.resume();
          const stream = empty ? null : (Readable.toWeb(response) as unknown as ReadableStream<Uint8Array>);
          resolve(new Response(stream, { status, statusText: response.statusMessage ?? '', headers: responseHeaders }));
        },
      );
      request.on('error', reject);
      request.end(body);
    });
}
