/**
 * Authentication at the HTTP edge of /mcp: every kind of bad credential gets
 * 401 with an RFC 6750 challenge pointing at the RFC 9728 metadata and a
 * message a client developer can act on; good API keys and JWTs (HS256 and
 * from a JWKS, Supabase's included) get in; revocation, expiry and rotation
 * take effect; oversized input is refused without harm; repeated failures
 * lock the address out. Each request comes from its own loopback address
 * unless a test needs one address (failures are counted per address).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type JWTHeaderParameters, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { readOwnerInfo } from '../../src/embedded/owner-info.js';
import { storageBackends } from '../support/backends.js';
import { mcpHeaders, startAuthExai, type AuthExai, type RawResponse } from '../support/auth-server.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';
import { nonLoopbackAddress, randomLoopbackAddress } from '../support/http-from.js';

const jwtSecret = 'http-auth-test-jwt-secret-0123456789abcdef';
const issuer = 'https://project.supabase.co/auth/v1';
const audience = 'authenticated';
const failuresPerMinute = 5;

type SigningKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

/** A JWKS endpoint serving the public halves of an RS256 and an ES256 key. */
interface KeySetServer {
  url: string;
  rsa: SigningKey;
  ec: SigningKey;
  close(): Promise<void>;
}

async function startKeySet(): Promise<KeySetServer> {
  const rsa = await generateKeyPair('RS256');
  const ec = await generateKeyPair('ES256');
  const keys = [
    { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
    { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' },
  ];
  const server: Server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`,
    rsa: rsa.privateKey,
    ec: ec.privateKey,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const now = () => Math.floor(Date.now() / 1000);

/** Claims of a token this server accepts; `overrides` break one thing at a time. */
function claims(overrides: JWTPayload = {}): JWTPayload {
  return { sub: randomUUID(), iss: issuer, aud: audience, iat: now(), exp: now() + 600, ...overrides };
}

function sign(payload: JWTPayload, key: SigningKey | Uint8Array = new TextEncoder().encode(jwtSecret), header: JWTHeaderParameters = { alg: 'HS256' }): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ ...header, typ: 'JWT' }).sign(key);
}

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A well-formed key nobody has. */
const strangerKey = () => `exai_${randomBytes(6).toString('hex')}_${randomBytes(32).toString('base64url')}`;

const initialize = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
});

/** POST /mcp initialize with this Authorization header (none when undefined). */
function probe(exai: AuthExai, authorization: string | undefined, from?: string): Promise<RawResponse> {
  const headers: Record<string, string> = { ...mcpHeaders, ...(authorization === undefined ? {} : { authorization }) };
  return exai.raw('/mcp', { method: 'POST', headers, body: initialize, ...(from === undefined ? {} : { from }) });
}

const bearer = (credential: string) => `Bearer ${credential}`;

/** A 401 with the challenge and message a client needs; `error` is the RFC 6750 code, absent without credentials. */
async function expectUnauthorized(exai: AuthExai, response: RawResponse, error: 'invalid_request' | 'invalid_token' | undefined, message: RegExp): Promise<void> {
  expect(response.status, response.text).toBe(401);
  const challenge = response.headers.get('www-authenticate') ?? '';
  expect(challenge).toMatch(/^Bearer realm="exai", resource_metadata="[^"]+"/);
  const metadataUrl = /resource_metadata="([^"]+)"/.exec(challenge)![1]!;
  expect(metadataUrl).toBe(`${exai.url}/.well-known/oauth-protected-resource/mcp`);
  if (error === undefined) {
    expect(challenge).not.toContain('error=');
  } else {
    expect(challenge).toContain(`error="${error}"`);
    expect(challenge).toMatch(/error_description="[^"]+"/);
  }
  const body = JSON.parse(response.text) as { error: { code: string; message: string } };
  expect(body.error.code).toBe('unauthorized');
  expect(body.error.message).toMatch(message);
}

/** Polls until `credential` is refused, for at most `withinMs`; returns the last answer. */
async function refusedWithin(exai: AuthExai, credential: string, withinMs: number): Promise<RawResponse> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const response = await probe(exai, bearer(credential));
    if (response.status !== 200 || Date.now() >= deadline) return response;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.each(storageBackends())('HTTP authentication on $name', (backend) => {
  let fake: FakeOpenAI;
  let keySet: KeySetServer;
  let exai: AuthExai;

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    keySet = await startKeySet();
    exai = await startAuthExai(backend, {
      GLM_API_KEY: 'sk-glm-http-auth-0123456789',
      GLM_BASE_URL: fake.baseUrl,
      EXAI_JWT_SECRET: jwtSecret,
      EXAI_JWKS_URL: keySet.url,
      EXAI_JWT_ISSUER: issuer,
      EXAI_JWT_AUDIENCE: audience,
      EXAI_AUTH_FAILURES_PER_MINUTE: String(failuresPerMinute),
    });
    await exai.admin('users.create', { handle: 'alice' });
  });

  afterAll(async () => {
    await exai?.close();
    await keySet?.close();
    await fake?.close();
  });

  const newKey = async (input: { expiresInMs?: number } = {}) => (await exai.admin('keys.create', { user: 'alice', ...input })).key;

  describe('refusals', () => {
    it('asks for credentials when none are sent, and serves the metadata it points at', async () => {
      const response = await probe(exai, undefined);
      await expectUnauthorized(exai, response, undefined, /^Authentication required: send `Authorization: Bearer/);
      for (const path of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource']) {
        const metadata = await exai.raw(path);
        expect(metadata.status).toBe(200);
        const body = JSON.parse(metadata.text) as { resource: string; scopes_supported: string[]; authorization_servers: string[] };
        expect(body.resource).toBe(`${exai.url}/mcp`);
        expect(body.scopes_supported).toEqual(expect.arrayContaining(['tools:call', 'conversations:read', 'conversations:write', 'admin']));
        expect(body.authorization_servers).toEqual([issuer]);
      }
    });

    it('refuses malformed Authorization headers', async () => {
      for (const header of ['Basic x', 'Bearer', 'Bearer a b', 'bearer', 'junk', 'Bearer  two-spaces', 'Bearer tok"en']) {
        await expectUnauthorized(exai, await probe(exai, header), 'invalid_request', /^Malformed Authorization header: expected `Bearer <token>`/);
      }
    });

    it('refuses unknown, mangled and truncated API keys with one message', async () => {
      const real = await newKey();
      for (const key of [strangerKey(), `${real.slice(0, -1)}${real.endsWith('A') ? 'B' : 'A'}`, real.slice(0, -5), 'exai_short']) {
        await expectUnauthorized(exai, await probe(exai, bearer(key)), 'invalid_token', /^The API key is not valid\.$/);
      }
    });

    it('refuses an unsigned JWT (alg none)', async () => {
      const token = `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(claims())}.`;
      await expectUnauthorized(exai, await probe(exai, bearer(token)), 'invalid_token', /algorithm "none" is not accepted; this server accepts HS256, RS256, ES256/);
    });

    it('refuses a JWT signed with another secret', async () => {
      const token = await sign(claims(), new TextEncoder().encode(`${jwtSecret}-but-another`));
      await expectUnauthorized(exai, await probe(exai, bearer(token)), 'invalid_token', /signature does not verify/);
    });

    it('refuses an expired JWT', async () => {
      const token = await sign(claims({ iat: now() - 3600, exp: now() - 600 }));
      await expectUnauthorized(exai, await probe(exai, bearer(token)), 'invalid_token', /has expired/);
    });

    it('refuses a JWT that is not valid yet', async () => {
      const token = await sign(claims({ nbf: now() + 3600 }));
      await expectUnauthorized(exai, await probe(exai, bearer(token)), 'invalid_token', /not valid yet/);
    });

    it('refuses a JWT for another audience', async () => {
      const token = await sign(claims({ aud: 'someone-else' }));
      await expectUnauthorized(exai, await probe(exai, bearer(token)), 'invalid_token', /another audience/);
    });

    it('refuses a JWT from another issuer', async () => {
      const token = await sign(claims({ iss: 'https://evil.example/auth/v1' }));
      await expectUnauthorized(exai, await probe(exai, bearer(token)), 'invalid_token', /another issuer/);
    });

    it('refuses a JWT whose subject is not a user id', async () => {
      const token = await sign(claims({ sub: 'alice' }));
      await expectUnauthorized(exai, await probe(exai, bearer(token)), 'invalid_token', /`sub` claim must be the user.s id/);
    });
  });

  describe('JWTs that get in', () => {
    it('creates the user of a valid HS256 token on first sight, who can then chat', async () => {
      const subject = randomUUID();
      expect((await exai.rows('users')).map((row) => row.id)).not.toContain(subject);
      const session = await exai.connect(await sign(claims({ sub: subject })));
      expect((await exai.rows('users')).map((row) => row.id)).toContain(subject);
      const answer = await session.call('chat', { prompt: 'Hello from a token', model: 'glm-4.6' });
      expect(answer.isError).toBeFalsy();
      const id = (answer.structuredContent as { continuation_id: string }).continuation_id;
      expect((await exai.rows('conversations')).find((row) => row.id === id)?.owner_id).toBe(subject);
    });

    it('refuses a token whose scopes lack tools:call with 403', async () => {
      const token = await sign(claims({ scope: 'conversations:read' }));
      const response = await probe(exai, bearer(token));
      expect(response.status).toBe(403);
      expect(response.headers.get('www-authenticate')).toMatch(/^Bearer .*error="insufficient_scope", scope="tools:call"/);
    });

    it('accepts a Supabase access token (aud and role authenticated, no scope claim)', async () => {
      const token = await sign({ ...claims(), role: 'authenticated', email: 'someone@example.com', aal: 'aal1', session_id: randomUUID() });
      const session = await exai.connect(token);
      expect((await session.call('conversation_list')).isError).toBeFalsy();
    });

    it('accepts RS256 and ES256 tokens from the JWKS and refuses one signed by a key outside it', async () => {
      for (const [key, header] of [
        [keySet.rsa, { alg: 'RS256', kid: 'rsa-1' }],
        [keySet.ec, { alg: 'ES256', kid: 'ec-1' }],
      ] as const) {
        const session = await exai.connect(await sign(claims(), key, header));
        expect((await session.call('listmodels')).isError).toBeFalsy();
      }
      const stranger = (await generateKeyPair('RS256')).privateKey;
      const forged = await sign(claims(), stranger, { alg: 'RS256', kid: 'rsa-1' });
      await expectUnauthorized(exai, await probe(exai, bearer(forged)), 'invalid_token', /signature does not verify/);
      const unknownKid = await sign(claims(), stranger, { alg: 'RS256', kid: 'nobody' });
      await expectUnauthorized(exai, await probe(exai, bearer(unknownKid)), 'invalid_token', /No key in the JWKS matches/);
    });
  });

  describe('key lifecycle', () => {
    it('stops a revoked key within a second', async () => {
      const key = await newKey();
      expect((await probe(exai, bearer(key))).status).toBe(200);
      await exai.admin('keys.revoke', { key: key.slice(0, 17) });
      await expectUnauthorized(exai, await refusedWithin(exai, key, 1000), 'invalid_token', /^The API key has been revoked\.$/);
    });

    it('refuses an expired key and says it expired', async () => {
      const key = await newKey({ expiresInMs: 1 });
      await new Promise((resolve) => setTimeout(resolve, 20));
      await expectUnauthorized(exai, await probe(exai, bearer(key)), 'invalid_token', /^The API key has expired/);
    });

    it('rotates: the new key works at once, the old one during its grace period, and not after a grace of 0', async () => {
      const first = await newKey();
      const rotated = await exai.admin('keys.rotate', { key: first.slice(0, 17), graceMs: 60_000 });
      expect((await probe(exai, bearer(rotated.created.key))).status).toBe(200);
      expect((await probe(exai, bearer(first))).status).toBe(200);
      const again = await exai.admin('keys.rotate', { key: rotated.created.prefix, graceMs: 0 });
      expect((await probe(exai, bearer(again.created.key))).status).toBe(200);
      await expectUnauthorized(exai, await refusedWithin(exai, rotated.created.key, 1000), 'invalid_token', /^The API key has expired/);
    });
  });

  describe('oversized input', () => {
    it('refuses an Authorization header over 8 KiB with 401', async () => {
      await expectUnauthorized(exai, await probe(exai, bearer('a'.repeat(10_000))), 'invalid_request', /^The Authorization header is too long\.$/);
    });

    it('refuses a 20 KB Authorization header without falling over', async () => {
      const status = await probe(exai, bearer('a'.repeat(20_000))).then(
        (response) => response.status,
        // The server may close the connection as soon as the header is too large.
        (error: unknown) => (error as NodeJS.ErrnoException).code,
      );
      expect([431, 401, 'ECONNRESET', 'EPIPE']).toContain(status);
      expect((await exai.raw('/health/live')).status).toBe(200);
      expect((await probe(exai, bearer(await newKey()))).status).toBe(200);
    });

    it('refuses a body over 8 MiB with 413, and serves the next request', async () => {
      const key = await newKey();
      const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', params: { padding: 'x'.repeat(9 * 1024 * 1024) } });
      const response = await exai.raw('/mcp', { method: 'POST', headers: { ...mcpHeaders, authorization: bearer(key) }, body });
      expect(response.status).toBe(413);
      expect((await probe(exai, bearer(key))).status).toBe(200);
    });
  });

  describe('repeated failures', () => {
    it(`locks an address out after ${failuresPerMinute} failures, audits it, and refuses even a good key from it`, async () => {
      const address = randomLoopbackAddress();
      const statuses: number[] = [];
      for (let attempt = 0; attempt < 12; attempt += 1) {
        const response = await probe(exai, bearer(strangerKey()), address);
        statuses.push(response.status);
        if (response.status === 429) {
          expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
          expect(Number(response.headers.get('retry-after'))).toBeLessThanOrEqual(60);
          expect(JSON.parse(response.text)).toMatchObject({ error: { code: 'rate_limited', message: expect.stringMatching(/^Too many failed authentications/) } });
        }
      }
      expect(statuses).toEqual([...Array<number>(failuresPerMinute).fill(401), ...Array<number>(12 - failuresPerMinute).fill(429)]);
      const key = await newKey();
      expect((await probe(exai, bearer(key), address)).status).toBe(429);
      expect((await probe(exai, bearer(key))).status).toBe(200);
      const audited = (await exai.admin('audit.list', { limit: 10_000, action: 'auth' })).filter((entry) => entry.source === address);
      // The first failure of the minute and the lock-out are recorded, not every guess in between.
      const failures = audited.filter((entry) => entry.action === 'auth.failure');
      const lockouts = audited.filter((entry) => entry.action === 'auth.locked_out');
      expect(failures).toHaveLength(1);
      expect(failures[0]!.details).toMatchObject({ failures_this_minute: 1 });
      expect(lockouts).toHaveLength(1);
      expect(lockouts[0]!.details).toMatchObject({ failures_this_minute: failuresPerMinute });
      expect(audited.every((entry) => entry.actor.startsWith('key '))).toBe(true);
    });
  });

  describe('local access', () => {
    it('accepts the owner token only from loopback', async () => {
      const token = readOwnerInfo(exai.config.home)!.token;
      expect((await probe(exai, bearer(token))).status).toBe(200);
      // Sent from this machine's own non-loopback address, the server sees a remote client.
      const remote = nonLoopbackAddress();
      expect(remote, 'this test needs a non-loopback IPv4 address on the machine').toBeDefined();
      await expectUnauthorized(exai, await probe(exai, bearer(token), remote), 'invalid_token', /^The API key or token is not valid\.$/);
    });

    it('refuses EXAI_AUTH=local on a non-loopback EXAI_HOST', () => {
      const cwd = mkdtempSync(path.join(os.tmpdir(), 'exai-auth-config-'));
      try {
        expect(() => loadConfig({ EXAI_AUTH: 'local', EXAI_HOST: '0.0.0.0' }, { cwd })).toThrow(/EXAI_AUTH: local mode .* only on a loopback address, but EXAI_HOST is "0\.0\.0\.0"/);
        expect(loadConfig({ EXAI_AUTH: 'local', EXAI_HOST: '127.0.0.1' }, { cwd }).auth.mode).toBe('local');
      } finally {
        rmSync(cwd, { recursive: true, force: true });
      }
    });
  });
});
