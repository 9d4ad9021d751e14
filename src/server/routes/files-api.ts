/**
 * `/api/v1/files`: stored files over plain HTTP, for clients that share no
 * filesystem with the server.
 * - POST   /api/v1/files                 streamed multipart (one `file` part; `bucket`, `conversation_id`, `sha256`
 *                                        fields before it), or a raw body with `?name=` (curl --data-binary);
 *                                        a declared `sha256` of bytes already stored skips writing them again
 * - GET    /api/v1/files                 the caller's files, newest first (`limit`, `cursor`, `bucket`)
 * - GET    /api/v1/files/:id             one file's description
 * - GET    /api/v1/files/:id/content     the bytes, with Range requests (206 / 416)
 * - GET    /api/v1/files/:id/preview     an image's WebP preview, once the processing job made it
 * - POST   /api/v1/files/:id/signed-url  a URL that downloads the file without credentials until it expires
 * - GET    /api/v1/files/signed/:token   that download
 * - DELETE /api/v1/files/:id             soft delete
 * Uploads and deletes need `files:write`; reads need `tools:call`.
 */
import type { Readable } from 'node:stream';
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../../app/services.js';
import { recordAudit } from '../../audit/audit-log.js';
import type { Authenticator } from '../../auth/authenticator.js';
import { ExaiError } from '../../errors.js';
import { bucketNames } from '../../files/buckets.js';
import type { OpenedFile } from '../../files/file-handler.js';
import { publicFile } from '../../files/file-record.js';
import { UrlSigner, urlSigningSecret } from '../../files/signed-urls.js';
import { baseUrl, requireScope } from '../authentication.js';
import { withinLimits } from '../request-limits.js';
import { parseRange } from '../byte-ranges.js';

export const filesApiPrefix = '/api/v1/files';

type Params = { id: string };
type Query = Record<string, string | undefined>;

function bucketOf(value: string | undefined): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (!(bucketNames as readonly string[]).includes(value)) throw new ExaiError('invalid_argument', `bucket must be one of ${bucketNames.join(', ')}.`);
  return value;
}

function limitOf(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,4}$/.test(value)) throw new ExaiError('invalid_argument', 'limit must be a whole number from 1 to 500.');
  return Number(value);
}

/** `attachment; filename*=UTF-8''…` with only the base name, encoded so no header can be injected. */
function disposition(name: string): string {
  const base = name.split(/[\\/]/).filter((part) => part !== '').at(-1) ?? 'file';
  const ascii = base.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(base)}`;
}

/** Sends a file's bytes, whole or the range asked for; the ETag is its SHA-256, which never changes. */
async function sendFile(request: FastifyRequest, reply: FastifyReply, open: (range?: { start: number; end: number }) => Promise<OpenedFile>, size: number): Promise<FastifyReply> {
  const answer = parseRange(request.headers.range, size);
  if (answer.kind === 'unsatisfiable') {
    return reply.status(416).header('content-range', `bytes */${size}`).send({ error: { code: 'range_not_satisfiable', message: `The file has ${size} bytes; ask for a range inside them.` } });
  }
  const opened = await open(answer.kind === 'partial' ? answer.range : undefined);
  const { file } = opened;
  void reply
    .header('content-type', file.mimeType)
    .header('content-disposition', disposition(file.name))
    .header('etag', `"${file.sha256}"`)
    .header('accept-ranges', 'bytes')
    .header('cache-control', 'private, no-store')
    .header('x-content-type-options', 'nosniff');
  if (answer.kind === 'partial') {
    const { start, end } = answer.range;
    return reply.status(206).header('content-range', `bytes ${start}-${end}/${file.size}`).header('content-length', String(end - start + 1)).send(opened.stream);
  }
  return reply.status(200).header('content-length', String(file.size)).send(opened.stream);
}

export async function registerFilesApiRoutes(app: FastifyInstance, services: Services, authenticator: Authenticator): Promise<void> {
  const { files, config } = services;
  const reading = { onRequest: requireScope(authenticator, config, 'tools:call') };
  const writing = { onRequest: requireScope(authenticator, config, 'files:write') };
  const signer = new UrlSigner(await urlSigningSecret(services.db, config.storage.urlSigningSecret));

  await app.register(async (scope) => {
    // Bodies are streamed to the object store as they arrive: no size limit here, the bucket's applies.
    // Fastify's own JSON and text parsers would buffer (and decode) a file sent as text/plain or JSON.
    scope.removeAllContentTypeParsers();
    await scope.register(multipart, { limits: { files: 1, fields: 10, fieldSize: 1024, parts: 12, fileSize: Number.MAX_SAFE_INTEGER } });
    scope.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

    scope.post<{ Querystring: Query }>(filesApiPrefix, writing, async (request, reply) => {
      const userId = request.principal!.userId;
      const encoding = request.headers['content-encoding']?.trim().toLowerCase();
      if (encoding !== undefined && encoding !== '' && encoding !== 'identity' && (encoding !== 'gzip' || request.isMultipart())) {
        throw new ExaiError('unsupported_media_type', `Content-Encoding ${JSON.stringify(encoding.slice(0, 50))} is not accepted here; send the body plain, or gzip-compressed as a raw (non-multipart) upload.`);
      }
      const result = await withinLimits(services, request, async () => {
        if (request.isMultipart()) {
          const part = await request.file();
          if (part === undefined) throw new ExaiError('invalid_argument', 'The multipart body has no file part; send the file as a part named "file".');
          if (part.fieldname !== 'file') throw new ExaiError('invalid_argument', `The file part must be named "file", not ${JSON.stringify(part.fieldname)}; send other fields before it.`);
          const field = (name: string): string | undefined => {
            const value = part.fields[name];
            return value !== undefined && !Array.isArray(value) && value.type === 'field' ? String(value.value) : undefined;
          };
          const bucket = bucketOf(field('bucket') ?? request.query.bucket);
          const conversationId = field('conversation_id') ?? request.query.conversation_id;
          const sha256 = field('sha256') ?? request.query.sha256;
          const name = field('name') ?? (part.filename || request.query.name);
          if (name === undefined || name === '') throw new ExaiError('invalid_argument', 'The file part needs a filename (or send a "name" field before it).');
          return files.upload({
            userId,
            name,
            body: part.file,
            ...(part.mimetype === '' || part.mimetype === 'application/octet-stream' ? {} : { mimeType: part.mimetype }),
            ...(bucket === undefined ? {} : { bucket }),
            ...(conversationId === undefined ? {} : { conversationId }),
            ...(sha256 === undefined ? {} : { sha256 }),
          });
        }
        const name = request.query.name;
        if (name === undefined || name === '') {
          throw new ExaiError('invalid_argument', 'Name the file: POST /api/v1/files?name=report.pdf with the bytes as the body, or send multipart/form-data with a "file" part.');
        }
        const bucket = bucketOf(request.query.bucket);
        const declared = request.headers['content-type']?.split(';')[0]?.trim();
        return files.upload({
          userId,
          name,
          body: request.body as Readable,
          ...(encoding === 'gzip' ? { contentEncoding: 'gzip' as const } : {}),
          ...(declared === undefined || declared === '' || declared === 'application/octet-stream' ? {} : { mimeType: declared }),
          ...(bucket === undefined ? {} : { bucket }),
          ...(request.query.conversation_id === undefined ? {} : { conversationId: request.query.conversation_id }),
          ...(request.query.sha256 === undefined ? {} : { sha256: request.query.sha256 }),
        });
      });
      return reply.status(result.deduplicated ? 200 : 201).send({ ...publicFile(result.file), deduplicated: result.deduplicated });
    });
  });

  app.get<{ Querystring: Query }>(filesApiPrefix, reading, async (request, reply) => {
    const limit = limitOf(request.query.limit);
    const bucket = bucketOf(request.query.bucket);
    const page = await withinLimits(services, request, () =>
      files.list(request.principal!.userId, {
        ...(limit === undefined ? {} : { limit }),
        ...(request.query.cursor === undefined ? {} : { before: request.query.cursor }),
        ...(bucket === undefined ? {} : { bucket }),
      }),
    );
    return reply.header('cache-control', 'private, no-store').send({ files: page.files.map(publicFile), ...(page.nextCursor === undefined ? {} : { next_cursor: page.nextCursor }) });
  });

  app.get<{ Params: Params }>(`${filesApiPrefix}/:id`, reading, async (request, reply) => {
    const file = await withinLimits(services, request, () => files.info(request.principal!.userId, request.params.id));
    return reply.header('cache-control', 'private, no-store').send(publicFile(file));
  });

  app.get<{ Params: Params }>(`${filesApiPrefix}/:id/content`, reading, async (request, reply) => {
    const userId = request.principal!.userId;
    const file = await files.info(userId, request.params.id);
    return sendFile(request, reply, (range) => files.open(userId, file.id, range), file.size);
  });

  app.get<{ Params: Params }>(`${filesApiPrefix}/:id/preview`, reading, async (request, reply) => {
    const opened = await files.openPreview(request.principal!.userId, request.params.id);
    return reply
      .header('content-type', 'image/webp')
      .header('content-length', String(opened.file.size))
      .header('cache-control', 'private, no-store')
      .header('x-content-type-options', 'nosniff')
      .send(opened.stream);
  });

  app.post<{ Params: Params; Body: { expires_in_s?: unknown } | undefined }>(`${filesApiPrefix}/:id/signed-url`, reading, async (request, reply) => {
    const userId = request.principal!.userId;
    const file = await files.info(userId, request.params.id);
    const maxSeconds = Math.floor(config.storage.signedUrlTtlMs / 1000);
    const asked = request.body?.expires_in_s;
    if (asked !== undefined && (typeof asked !== 'number' || !Number.isInteger(asked) || asked < 1 || asked > maxSeconds)) {
      throw new ExaiError('invalid_argument', `expires_in_s must be a whole number of seconds from 1 to ${maxSeconds} (EXAI_SIGNED_URL_TTL).`);
    }
    const expiresAt = Math.floor(Date.now() / 1000) + (typeof asked === 'number' ? asked : maxSeconds);
    const token = signer.sign({ fileId: file.id, userId, expiresAt });
    return reply.header('cache-control', 'private, no-store').send({
      url: `${baseUrl(config, request)}${filesApiPrefix}/signed/${token}`,
      expires_at: new Date(expiresAt * 1000).toISOString(),
    });
  });

  // No credential: the token is the permission, for that one file, until it expires.
  app.get<{ Params: { token: string } }>(`${filesApiPrefix}/signed/:token`, async (request, reply) => {
    const target = signer.verify(request.params.token);
    const file = await files.info(target.userId, target.fileId);
    return sendFile(request, reply, (range) => files.open(target.userId, file.id, range), file.size);
  });

  app.delete<{ Params: Params }>(`${filesApiPrefix}/:id`, writing, async (request, reply) => {
    const principal = request.principal!;
    const actor = { userId: principal.userId, label: principal.label, source: request.ip };
    const file = await withinLimits(services, request, () =>
      files.delete(principal.userId, request.params.id, (tx) => recordAudit(tx, actor, { action: 'file.delete', target: `file:${request.params.id}`, outcome: 'success' })),
    );
    return reply.send({ file_id: file.id, deleted: true });
  });
}
