/**
 * Secrets never leave the server: after requests with a valid key, a wrong key
 * that has a real key's prefix, JWTs (good and forged) and a provider that
 * refuses its key, neither the logs (captured at trace level, the most an
 * operator can turn on), nor any answer, nor the audit log hold an API key or
 * its secret part, a JWT or its signature, the JWT secret, the provider key or
 * the owner token.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { SignJWT, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readOwnerInfo } from '../../src/embedded/owner-info.js';
import { createLogger, type Logger } from '../../src/logger.js';
import { storageBackends } from '../support/backends.js';
import { mcpHeaders, startAuthExai, textOf, type AuthExai, type RawResponse } from '../support/auth-server.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';

const providerKey = 'sk-glm-PROVIDER-SECRET-6f1d9c3a7b5e2048';
const jwtSecret = 'JWT-SECRET-never-to-be-seen-4a8c2e6g0i';

/** Every log line as written, at trace level. */
function captureAllLogs(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString('utf8').split('\n').filter((line) => line.trim() !== ''));
      callback();
    },
  });
  return { logger: createLogger('trace', stream), lines };
}

/** A log line as text a secret could be found in: serialised Buffers (raw request bytes) are decoded. */
function readable(line: string): string {
  return JSON.stringify(JSON.parse(line), (_key, value: unknown) => {
    const buffer = value as { type?: unknown; data?: unknown };
    return buffer?.type === 'Buffer' && Array.isArray(buffer.data) ? Buffer.from(buffer.data as number[]).toString('latin1') : value;
  });
}

const secretPart = (key: string) => key.slice('exai_'.length + 12 + 1);
const signaturePart = (jwt: string) => jwt.split('.')[2]!;

function sign(payload: JWTPayload, secret: string): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(secret));
}

function probe(exai: AuthExai, authorization: string): Promise<RawResponse> {
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
  return exai.raw('/mcp', { method: 'POST', headers: { ...mcpHeaders, authorization }, body });
}

describe.each(storageBackends())('secrets stay secret on $name', (backend) => {
  let fake: FakeOpenAI;
  let logs: ReturnType<typeof captureAllLogs>;
  let exai: AuthExai;
  let validKey: string;
  let wrongKey: string;
  let goodJwt: string;
  let forgedJwt: string;
  /** Everything the server said to a client: bodies, challenges, tool results, client errors. */
  const answers: string[] = [];

  const heard = (response: RawResponse) => answers.push(response.text, response.headers.get('www-authenticate') ?? '');

  /** Every secret the server knew or was shown, by name. */
  const secrets = () => ({
    'provider key': providerKey,
    'JWT secret': jwtSecret,
    'valid API key': validKey,
    'valid API key secret': secretPart(validKey),
    'wrong API key': wrongKey,
    'wrong API key secret': secretPart(wrongKey),
    'good JWT': goodJwt,
    'good JWT signature': signaturePart(goodJwt),
    'forged JWT': forgedJwt,
    'forged JWT signature': signaturePart(forgedJwt),
    'owner token': readOwnerInfo(exai.config.home)!.token,
  });

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    logs = captureAllLogs();
    exai = await startAuthExai(backend, { GLM_API_KEY: providerKey, GLM_BASE_URL: fake.baseUrl, EXAI_JWT_SECRET: jwtSecret, EXAI_JWT_AUDIENCE: 'authenticated' }, logs.logger);
    const { key, prefix } = await exai.userWithKey('alice');
    validKey = key;
    wrongKey = `exai_${prefix}_${randomBytes(32).toString('base64url')}`;
    const claims = () => ({ sub: randomUUID(), aud: 'authenticated', exp: Math.floor(Date.now() / 1000) + 600 });
    goodJwt = await sign(claims(), jwtSecret);
    forgedJwt = await sign(claims(), `${jwtSecret}-forged`);
  });

  afterAll(async () => {
    await exai?.close();
    await fake?.close();
  });

  it('serves a valid key', async () => {
    const session = await exai.connect(validKey);
    for (const [tool, args] of [
      ['chat', { prompt: 'Is this safe?', model: 'glm-4.6' }],
      ['listmodels', {}],
      ['version', {}],
      ['conversation_list', {}],
    ] as const) {
      const result = await session.call(tool, args);
      expect(result.isError, textOf(result)).toBeFalsy();
      answers.push(JSON.stringify(result));
    }
  });

  it('refuses a wrong key with a real prefix, and the valid key inside a malformed header', async () => {
    for (const authorization of [`Bearer ${wrongKey}`, `Bearer ${validKey} extra`, `Basic ${validKey}`]) {
      const response = await probe(exai, authorization);
      expect(response.status).toBe(401);
      heard(response);
    }
    answers.push(await exai.connect(wrongKey).then(() => 'connected', (error: Error) => error.message));
    expect(answers.at(-1)).not.toBe('connected');
  });

  it('serves a good JWT and refuses a forged one', async () => {
    const session = await exai.connect(goodJwt);
    answers.push(JSON.stringify(await session.call('listmodels')));
    const response = await probe(exai, `Bearer ${forgedJwt}`);
    expect(response.status).toBe(401);
    heard(response);
  });

  it('reports a provider that refuses its key without the key, even when the provider echoes it', async () => {
    fake.script({ kind: 'error', status: 401, body: { error: { message: `Incorrect API key provided: ${providerKey}`, type: 'invalid_request_error' } } });
    const result = await (await exai.connect(validKey)).call('chat', { prompt: 'Once more', model: 'glm-4.6' });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/did not accept the API key: check GLM_API_KEY/);
    answers.push(JSON.stringify(result));
  });

  it('keeps every secret out of the logs, the answers, the audit log and the key table', async () => {
    const audit = await exai.rows('audit_log');
    // Not vacuous: the failures above were audited (the first of the minute per address) and the server logged.
    expect(audit.filter((row) => row.action === 'auth.failure').length).toBeGreaterThanOrEqual(1);
    expect(logs.lines.length).toBeGreaterThan(0);
    const places = {
      logs: logs.lines.map(readable).join('\n'),
      answers: answers.join('\n'),
      'audit log': JSON.stringify(audit),
      'api_keys table': JSON.stringify(await exai.rows('api_keys')),
    };
    for (const [place, text] of Object.entries(places)) {
      for (const [name, secret] of Object.entries(secrets())) expect(text.includes(secret), `${name} in ${place}`).toBe(false);
    }
  });

  it('keeps a key in an oversized request head out of the trace log', async () => {
    const from = logs.lines.length;
    const response = await exai.raw('/mcp', { method: 'POST', headers: { ...mcpHeaders, authorization: `Bearer ${validKey}`, 'x-padding': 'p'.repeat(17_000) }, body: '{}' });
    expect(response.status).toBe(431);
    const written = logs.lines.slice(from).map(readable).join('\n');
    expect(written.includes(secretPart(validKey)), 'the key\u2019s secret in the log').toBe(false);
  });
});
