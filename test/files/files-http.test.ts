/**
 * Files over HTTP, as a client that shares no filesystem with the server:
 * streamed multipart and raw uploads, listing, range downloads, signed URLs,
 * deletes, and resumable TUS uploads interrupted and resumed; every refusal
 * clear, and another user's files out of reach. PGlite runs with the local
 * object store, PostgreSQL with the S3 store on s3rver.
 */
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { Readable } from 'node:stream';
import * as tus from 'tus-js-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageBackends } from '../support/backends.js';
import { startAuthExai, type AuthExai } from '../support/auth-server.js';
import { localStoreKind, s3StoreKind, type TestObjectStore } from '../support/object-stores.js';

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe.each(storageBackends())('files over HTTP on $name', (backend) => {
  let exai: AuthExai;
  let objects: TestObjectStore;
  let alice: { userId: string; key: string };
  let bob: { userId: string; key: string };
  let reader: { userId: string; key: string };

  const as = (who: { key: string }, headers: Record<string, string> = {}) => ({ authorization: `Bearer ${who.key}`, ...headers });
  const api = (path: string) => `${exai.url}/api/v1${path}`;

  async function postMultipart(who: { key: string }, bytes: Uint8Array, name: string, fields: Record<string, string> = {}, type = 'application/octet-stream') {
    const form = new FormData();
    for (const [field, value] of Object.entries(fields)) form.append(field, value);
    form.append('file', new Blob([bytes], { type }), name);
    return fetch(api('/files'), { method: 'POST', headers: as(who), body: form });
  }

  beforeAll(async () => {
    objects = await (backend.kind === 'postgres' ? s3StoreKind : localStoreKind).create();
    exai = await startAuthExai(backend, { ...objects.env, EXAI_SIGNED_URL_TTL: '10m' });
    alice = await exai.userWithKey('alice');
    bob = await exai.userWithKey('bob');
    reader = await exai.userWithKey('reader', ['tools:call']);
  }, 60_000);

  afterAll(async () => {
    await exai?.close();
    await objects?.close();
  });

  it('takes a streamed multipart upload, deduplicates it, and serves it whole and by range', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    const created = await postMultipart(alice, bytes, 'build.tar', { bucket: 'user-uploads' });
    expect(created.status).toBe(201);
    const file = (await created.json()) as Record<string, unknown>;
    expect(file).toMatchObject({ name: 'build.tar', size: bytes.length, sha256: sha(bytes), bucket: 'user-uploads', deduplicated: false });
    const again = await postMultipart(alice, bytes, 'copy.tar');
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ file_id: file.file_id, deduplicated: true });

    const whole = await fetch(api(`/files/${file.file_id}/content`), { headers: as(alice) });
    expect(whole.status).toBe(200);
    expect(whole.headers.get('etag')).toBe(`"${sha(bytes)}"`);
    expect(whole.headers.get('content-disposition')).toContain('filename="build.tar"');
    expect(sha(new Uint8Array(await whole.arrayBuffer()))).toBe(sha(bytes));

    const part = await fetch(api(`/files/${file.file_id}/content`), { headers: as(alice, { range: 'bytes=100-199' }) });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100-199/${bytes.length}`);
    expect(Buffer.from(await part.arrayBuffer())).toEqual(bytes.subarray(100, 200));
    const tail = await fetch(api(`/files/${file.file_id}/content`), { headers: as(alice, { range: 'bytes=-10' }) });
    expect(Buffer.from(await tail.arrayBuffer())).toEqual(bytes.subarray(bytes.length - 10));
    const outside = await fetch(api(`/files/${file.file_id}/content`), { headers: as(alice, { range: `bytes=${bytes.length}-` }) });
    expect(outside.status).toBe(416);
    expect(outside.headers.get('content-range')).toBe(`bytes */${bytes.length}`);
  });

  it('takes a raw body with a name, lists and describes files, and deletes them', async () => {
    const text = `# notes ${randomBytes(6).toString('hex')}\n`;
    const body = Readable.toWeb(Readable.from([Buffer.from(text)])) as ReadableStream;
    const created = await fetch(api('/files?name=notes.md&bucket=conversation-files'), {
      method: 'POST',
      headers: as(alice, { 'content-type': 'text/markdown' }),
      body,
      duplex: 'half',
    } as RequestInit);
    expect(created.status).toBe(201);
    const file = (await created.json()) as { file_id: string };
    const listed = (await (await fetch(api('/files?limit=1'), { headers: as(alice) })).json()) as { files: { file_id: string }[]; next_cursor?: string };
    expect(listed.files.map((entry) => entry.file_id)).toEqual([file.file_id]);
    expect(listed.next_cursor).toBeDefined();
    const next = (await (await fetch(api(`/files?limit=1&cursor=${listed.next_cursor}`), { headers: as(alice) })).json()) as { files: { file_id: string }[] };
    expect(next.files.map((entry) => entry.file_id)).not.toContain(file.file_id);
    expect(await (await fetch(api(`/files/${file.file_id}`), { headers: as(reader) })).status).toBe(404);
    expect(await (await fetch(api(`/files/${file.file_id}`), { headers: as(alice) })).json()).toMatchObject({ name: 'notes.md', mime_type: 'text/markdown' });
    expect((await fetch(api(`/files/${file.file_id}`), { method: 'DELETE', headers: as(reader) })).status).toBe(403);
    expect((await fetch(api(`/files/${file.file_id}`), { method: 'DELETE', headers: as(alice) })).status).toBe(200);
    expect((await fetch(api(`/files/${file.file_id}`), { headers: as(alice) })).status).toBe(404);
    expect((await exai.rows('audit_log')).some((row) => row.action === 'file.delete' && row.target === `file:${file.file_id}`)).toBe(true);
  });

  it('stores raw bodies sent as text or JSON byte for byte, without parsing them', async () => {
    const text = Buffer.concat([Buffer.from('caf'), Buffer.from([0xe9]), Buffer.from(' is not UTF-8\n')]);
    const json = Buffer.from('"just a JSON string"');
    for (const [bytes, type, name] of [[text, 'text/plain', 'latin1.txt'], [json, 'application/json', 'value.json']] as const) {
      const created = await fetch(api(`/files?name=${name}`), { method: 'POST', headers: as(alice, { 'content-type': type }), body: bytes });
      expect(created.status, type).toBe(201);
      const file = (await created.json()) as { file_id: string; size: number; mime_type: string };
      expect(file).toMatchObject({ size: bytes.length, mime_type: type });
      const back = await fetch(api(`/files/${file.file_id}/content`), { headers: as(alice) });
      expect(Buffer.from(await back.arrayBuffer())).toEqual(bytes);
    }
    // A Range header in another unit is ignored: the whole file comes back.
    const created = (await (await fetch(api('/files?name=units.txt'), { method: 'POST', headers: as(alice, { 'content-type': 'text/plain' }), body: 'whole file' })).json()) as { file_id: string };
    const other = await fetch(api(`/files/${created.file_id}/content`), { headers: as(alice, { range: 'items=0-1' }) });
    expect(other.status).toBe(200);
    expect(await other.text()).toBe('whole file');
  });

  it('reads no file of the server for a key when EXAI_ALLOWED_ROOTS is not set', async () => {
    const session = await exai.connect(alice.key);
    const result = await session.call('file_upload', { path: path.join(exai.config.home, 'owner.json') });
    expect(result.isError).toBe(true);
    expect(JSON.stringify(result.content)).toMatch(/reads no files from its own disk for callers over the network/);
  });

  it('refuses bad uploads clearly and stores nothing', async () => {
    const before = await objects.keys();
    const rowsBefore = (await exai.rows('file_metadata')).length;
    const refused = async (response: Response, status: number, pattern: RegExp) => {
      expect(response.status).toBe(status);
      expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(pattern);
    };
    await refused(await postMultipart(alice, Buffer.from('MZ'), 'tool.exe', { bucket: 'conversation-files' }), 415, /does not take application\/.* files/);
    await refused(await postMultipart(alice, Buffer.from('x'), 'a.txt', { bucket: 'attic' }), 400, /bucket must be one of/);
    await refused(await fetch(api('/files'), { method: 'POST', headers: as(alice), body: 'no name' }), 400, /Name the file/);
    const noFile = new FormData();
    noFile.append('bucket', 'user-uploads');
    await refused(await fetch(api('/files'), { method: 'POST', headers: as(alice), body: noFile }), 400, /no file part/);
    await refused(await postMultipart(reader, Buffer.from('x'), 'a.txt'), 403, /lacks the scope files:write/);
    expect((await fetch(api('/files'), { method: 'POST', body: 'x' })).status).toBe(401);
    expect(await objects.keys()).toEqual(before);
    expect((await exai.rows('file_metadata')).length).toBe(rowsBefore);
  });

  it('gives out signed URLs that work without credentials until they expire, and only for that file', async () => {
    const bytes = randomBytes(10_000);
    const file = (await (await postMultipart(alice, bytes, 'shared.bin')).json()) as { file_id: string };
    const signed = await fetch(api(`/files/${file.file_id}/signed-url`), { method: 'POST', headers: as(alice, { 'content-type': 'application/json' }), body: JSON.stringify({ expires_in_s: 60 }) });
    const { url, expires_at: expiresAt } = (await signed.json()) as { url: string; expires_at: string };
    expect(Date.parse(expiresAt) - Date.now()).toBeLessThanOrEqual(61_000);
    const downloaded = await fetch(url);
    expect(downloaded.status).toBe(200);
    expect(Buffer.from(await downloaded.arrayBuffer())).toEqual(bytes);
    const ranged = await fetch(url, { headers: { range: 'bytes=0-9' } });
    expect(Buffer.from(await ranged.arrayBuffer())).toEqual(bytes.subarray(0, 10));
    // A tampered token, or one for a longer time than allowed, is refused.
    const token = url.split('/').at(-1)!;
    const [payload, mac] = token.split('.');
    const forged = Buffer.from(Buffer.from(payload!, 'base64url').toString().replace(/\.\d+$/, '.9999999999')).toString('base64url');
    expect((await fetch(url.replace(token, `${forged}.${mac}`))).status).toBe(403);
    expect((await fetch(url.replace(token, `${payload}.${'A'.repeat(mac!.length)}`))).status).toBe(403);
    const tooLong = await fetch(api(`/files/${file.file_id}/signed-url`), { method: 'POST', headers: as(alice, { 'content-type': 'application/json' }), body: JSON.stringify({ expires_in_s: 3600 }) });
    expect(tooLong.status).toBe(400);
    expect((await fetch(api(`/files/${file.file_id}/signed-url`), { method: 'POST', headers: as(bob) })).status).toBe(404);
    // Deleting the file ends the link.
    await fetch(api(`/files/${file.file_id}`), { method: 'DELETE', headers: as(alice) });
    expect((await fetch(url)).status).toBe(404);
  });

  it('keeps every file route of one user closed to another', async () => {
    const file = (await (await postMultipart(alice, randomBytes(500), 'mine.bin')).json()) as { file_id: string };
    for (const [method, path] of [['GET', `/files/${file.file_id}`], ['GET', `/files/${file.file_id}/content`], ['POST', `/files/${file.file_id}/signed-url`], ['DELETE', `/files/${file.file_id}`]] as const) {
      const response = await fetch(api(path), { method, headers: as(bob) });
      expect(response.status, `${method} ${path}`).toBe(404);
      expect(await response.text()).not.toContain('mine.bin');
    }
    const theirs = (await (await fetch(api('/files?limit=500'), { headers: as(bob) })).json()) as { files: { file_id: string }[] };
    expect(theirs.files.map((entry) => entry.file_id)).not.toContain(file.file_id);
  });

  it('resumes an interrupted TUS upload where it stopped, and stores the file once it is complete', async () => {
    const bytes = randomBytes(6 * 1024 * 1024);
    const chunkSize = 1024 * 1024;
    const metadata = { filename: 'big.bin', filetype: 'application/octet-stream' };
    const headers = as(alice);
    let stoppedAt = 0;
    // The first attempt stops after two chunks, as a dropped connection would.
    const uploadUrl = await new Promise<string>((resolve, reject) => {
      const upload: tus.Upload = new tus.Upload(bytes, {
        endpoint: `${exai.url}/api/v1/uploads`,
        headers,
        metadata,
        chunkSize,
        retryDelays: [],
        onChunkComplete(_size, accepted) {
          if (accepted >= 2 * chunkSize && upload.url !== null) {
            stoppedAt = accepted;
            void upload.abort().then(() => resolve(upload.url!), reject);
          }
        },
        onError: reject,
      });
      upload.start();
    });
    expect(stoppedAt).toBe(2 * chunkSize);
    // Another user cannot see or continue it.
    const foreign = await fetch(uploadUrl.startsWith('http') ? uploadUrl : `${exai.url}${uploadUrl}`, { method: 'HEAD', headers: { ...as(bob), 'tus-resumable': '1.0.0' } });
    expect(foreign.status).toBe(404);
    const offsets: number[] = [];
    const finished = await new Promise<tus.HttpResponse>((resolve, reject) => {
      const upload = new tus.Upload(bytes, {
        endpoint: `${exai.url}/api/v1/uploads`,
        uploadUrl,
        headers,
        metadata,
        chunkSize,
        retryDelays: [],
        onProgress: (sent) => offsets.push(sent),
        onSuccess: ({ lastResponse }) => resolve(lastResponse),
        onError: reject,
      });
      upload.start();
    });
    // It went on from the offset the server had, not from zero.
    expect(Math.min(...offsets)).toBeGreaterThanOrEqual(2 * chunkSize);
    const fileId = finished.getHeader('x-exai-file-id');
    expect(fileId).toMatch(/^[0-9a-f-]{36}$/);
    const stored = await fetch(api(`/files/${fileId}/content`), { headers: as(alice) });
    expect(sha(new Uint8Array(await stored.arrayBuffer()))).toBe(sha(bytes));
  }, 60_000);

  it('refuses a TUS upload the bucket would not take before any byte is sent', async () => {
    const refused = await fetch(`${exai.url}/api/v1/uploads`, {
      method: 'POST',
      headers: as(alice, { 'tus-resumable': '1.0.0', 'upload-length': String(2 * 1024 ** 3), 'upload-metadata': `filename ${Buffer.from('huge.bin').toString('base64')}` }),
    });
    expect(refused.status).toBe(413);
    const badType = await fetch(`${exai.url}/api/v1/uploads`, {
      method: 'POST',
      headers: as(alice, {
        'tus-resumable': '1.0.0',
        'upload-length': '10',
        'upload-metadata': `filename ${Buffer.from('x.exe').toString('base64')},bucket ${Buffer.from('conversation-files').toString('base64')}`,
      }),
    });
    expect(badType.status).toBe(415);
    expect(await badType.text()).toMatch(/does not take/);
  });
});
