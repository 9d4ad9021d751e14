/**
 * What a key holder over the network must not reach: the server's own files,
 * admin rights through a token, a second successor of a rotated key; and what
 * an unreachable key set must not do (turn valid tokens into counted failures).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failureKey } from '../../src/auth/authenticator.js';
import { storageBackends } from '../support/backends.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';
import { mcpHeaders, startAuthExai, textOf, type AuthExai } from '../support/auth-server.js';

const jwtSecret = 'hardening-secret-0123456789abcdefghijklmnop';

function sign(claims: Record<string, unknown>): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: randomUUID(), aud: 'authenticated', iat: now, exp: now + 600, ...claims })
    .setProtectedHeader({ alg: 'HS256' })
    .sign(new TextEncoder().encode(jwtSecret));
}

describe('failure counting per client', () => {
  it('counts IPv6 clients per /64 and everyone else per address', () => {
    expect(failureKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(failureKey('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(failureKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(failureKey('::1')).toBe('0:0:0:0::/64');
    expect(failureKey('10.1.2.3')).toBe('10.1.2.3');
    expect(failureKey('::ffff:10.1.2.3')).toBe('::ffff:10.1.2.3');
  });
});

describe.each(storageBackends())('hardening on $name', (backend) => {
  let fake: FakeOpenAI;
  let files: string;
  let closed: AuthExai;
  let open: AuthExai;

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    files = mkdtempSync(path.join(os.tmpdir(), 'exai-hardening-'));
    writeFileSync(path.join(files, 'notes.txt'), 'shared notes');
    writeFileSync(path.join(files, '.env'), 'GLM_API_KEY=sk-should-never-leave');
    mkdirSync(path.join(files, 'nested'));
    writeFileSync(path.join(files, 'nested', '.env.local'), 'SECRET=also-never');
    const provider = { GLM_API_KEY: 'sk-glm-hardening-0123456789', GLM_BASE_URL: fake.baseUrl };
    // Roots left to the default (the working directory) on one server, named on the other.
    closed = await startAuthExai(backend, { ...provider, EXAI_JWT_SECRET: jwtSecret, EXAI_JWT_AUDIENCE: 'authenticated', EXAI_JWT_DEFAULT_SCOPES: 'tools:call,conversations:write,admin' });
    open = await startAuthExai(backend, { ...provider, EXAI_ALLOWED_ROOTS: files });
  });

  afterAll(async () => {
    await closed?.close();
    await open?.close();
    await fake?.close();
    rmSync(files, { recursive: true, force: true });
  });

  it('reads none of the server\u2019s files for a key holder unless EXAI_ALLOWED_ROOTS names them', async () => {
    const { key } = await closed.userWithKey('mallory');
    const session = await closed.connect(key);
    const envFile = path.join(closed.config.home, '..', '.env');
    const refused = await session.call('chat', { prompt: 'what is in it?', files: [envFile] });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toMatch(/reads no files from its own disk for callers over the network \(EXAI_ALLOWED_ROOTS is not set\)/);
    const version = await session.call('version');
    expect(version.structuredContent).not.toHaveProperty('config.allowed_roots');
    expect(fake.requests).toHaveLength(0);
  });

  it('never sends .env files, even under an allowed root, and skips them in folders', async () => {
    const { key } = await open.userWithKey('reader');
    const session = await open.connect(key);
    const named = await session.call('chat', { prompt: 'read it', files: [path.join(files, '.env')] });
    expect(named.isError).toBe(true);
    expect(textOf(named)).toMatch(/holds exai's own settings, secrets or data, which are never sent to a model/);
    const folder = await session.call('chat', { prompt: 'read the folder', files: [files] });
    expect(folder.isError).toBeFalsy();
    const sentText = JSON.stringify(fake.requests.at(-1));
    expect(sentText).toContain('shared notes');
    expect(sentText).not.toContain('should-never-leave');
    expect(sentText).not.toContain('also-never');
  });

  it('never takes admin from a token, even from the default scopes', async () => {
    const token = await sign({});
    const session = await closed.connect(token);
    const listed = await session.call('listmodels');
    expect(listed.isError).toBeFalsy();
    // admin would show every user's calls and the allowed roots; a token gets neither.
    const version = await session.call('version');
    expect(version.structuredContent).not.toHaveProperty('config.allowed_roots');
    const refused = await session.call('conversation_list');
    expect(textOf(refused)).toMatch(/needs the scope conversations:read.*Ask for a token whose `scope` claim includes it/);
  });

  it('refuses to rotate a key twice', async () => {
    const { prefix } = await closed.userWithKey('rotator');
    const first = await closed.admin('keys.rotate', { key: prefix, graceMs: 60_000 });
    await expect(closed.admin('keys.rotate', { key: prefix, graceMs: 60_000 })).rejects.toThrow(
      new RegExp(`API key ${prefix} was already rotated to ${first.created.prefix}; rotate or revoke that one instead`),
    );
    const keys = await closed.admin('keys.list', { user: 'rotator' });
    expect(keys.filter((key) => key.state === 'active')).toHaveLength(2);
  });
});

describe.each(storageBackends())('an unreachable key set on $name', (backend) => {
  let exai: AuthExai;

  beforeAll(async () => {
    // Port 9 (discard) on loopback: nothing listens, so every fetch of the key set fails.
    exai = await startAuthExai(backend, { EXAI_JWKS_URL: 'http://127.0.0.1:9/jwks.json', EXAI_JWT_AUDIENCE: 'authenticated', EXAI_AUTH_FAILURES_PER_MINUTE: '2' });
  });

  afterAll(async () => {
    await exai?.close();
  });

  it('answers 503 with Retry-After, and does not count or audit it against the client', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const token = await new SignJWT({ sub: randomUUID(), aud: 'authenticated', exp: Math.floor(Date.now() / 1000) + 600 })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .sign(privateKey);
    const from = '127.9.9.9';
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
    for (let attempt = 0; attempt < 4; attempt += 1) {
      const response = await exai.raw('/mcp', { method: 'POST', headers: { ...mcpHeaders, authorization: `Bearer ${token}` }, body, from });
      expect(response.status).toBe(503);
      expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(JSON.parse(response.text)).toMatchObject({ error: { code: 'auth_unavailable', message: expect.stringMatching(/key set at EXAI_JWKS_URL could not be fetched/) } });
    }
    const audited = (await exai.admin('audit.list', { limit: 1000, action: 'auth' })).filter((entry) => entry.source === from);
    expect(audited).toEqual([]);
  });
});
