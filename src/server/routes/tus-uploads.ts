/**
 * Resumable uploads over the TUS protocol (`@tus/server`) at /api/v1/uploads,
 * for large files on unreliable links: the client creates an upload, sends it
 * in PATCHes, and after a dropped connection asks (HEAD) how far it got and
 * goes on from there. Parts are staged under `<EXAI_HOME>/uploads`; when the
 * last byte arrives the file goes through the file handler like any upload
 * (hashed, deduplicated, bucket limits) and the staged copy is removed.
 *
 * Metadata: `filename` (required), `filetype`, `bucket`, `conversation_id`, `sha256`.
 * The final PATCH answers 200 with the stored file as JSON and its id in
 * `X-Exai-File-Id`. Upload ids carry their owner, and a request for another
 * user's upload is answered as if the upload did not exist.
 *
 * Staged parts live on this instance's disk: with several instances, route a
 * client's requests for one upload to the same instance (or share the folder).
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import { FileStore } from '@tus/file-store';
import { MemoryLocker, Server, type Upload } from '@tus/server';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../../app/services.js';
import type { Authenticator } from '../../auth/authenticator.js';
import { asUser } from '../../db/session.js';
import { ExaiError, isExaiError } from '../../errors.js';
import { checkMimeType, loadBucket } from '../../files/buckets.js';
import { checkFileName } from '../../files/file-handler.js';
import { publicFile } from '../../files/file-record.js';
import { mimeTypeFor } from '../../files/processing/mime-types.js';
import { requireScope } from '../authentication.js';

export const uploadsPath = '/api/v1/uploads';

/** Staged uploads nobody finished are removed after a day. */
const stagingExpiryMs = 24 * 60 * 60_000;

function ownerPrefix(userId: string): string {
  return `${userId.replaceAll('-', '')}-`;
}

/** What @tus/server sends back for a refused request: our errors keep their status and message. */
function tusError(error: unknown): { status_code: number; body: string } {
  if (isExaiError(error)) return { status_code: error.httpStatus, body: JSON.stringify({ error: { code: error.code, message: error.message } }) };
  throw error;
}

export async function registerTusRoutes(app: FastifyInstance, services: Services, authenticator: Authenticator): Promise<void> {
  const { files, config, db, logger } = services;
  const store = new FileStore({ directory: path.join(config.home, 'uploads'), expirationPeriodInMilliseconds: stagingExpiryMs });
  // The authenticated user of each request, found again from the Node request @tus/server wraps.
  const owners = new WeakMap<IncomingMessage, string>();
  const ownerOf = (request: object): string => {
    const node = (request as { runtime?: { node?: { req?: IncomingMessage } } }).runtime?.node?.req;
    const owner = node === undefined ? undefined : owners.get(node);
    if (owner === undefined) throw new Error('TUS request without an authenticated owner');
    return owner;
  };

  const tus = new Server({
    path: uploadsPath,
    datastore: store,
    locker: new MemoryLocker(),
    relativeLocation: true,
    respectForwardedHeaders: config.http.trustProxy !== false,
    // The largest bucket's limit; each upload is checked against its own bucket when created.
    maxSize: 1024 * 1024 * 1024,
    namingFunction: (request) => `${ownerPrefix(ownerOf(request))}${randomBytes(16).toString('hex')}`,
    async onIncomingRequest(request, uploadId) {
      if (!uploadId.startsWith(ownerPrefix(ownerOf(request)))) throw { status_code: 404, body: 'The upload does not exist.\n' };
    },
    // Anything but our own errors is logged here and answered without its text (it may be a database message).
    onResponseError(_request, error) {
      // TUS protocol answers (4xx) and our own errors (JSON bodies) go out as they are.
      if ('status_code' in error && (error.status_code < 500 || error.body.startsWith('{"error":'))) return undefined;
      logger.error({ err: error instanceof Error ? error.message : String(error.body) }, 'resumable upload failed');
      return { status_code: 500, body: JSON.stringify({ error: { code: 'internal', message: 'The upload failed on the server; the server log has the details. Resume it, or start again.' } }) };
    },
    async onUploadCreate(request, upload: Upload) {
      try {
        const metadata = upload.metadata ?? {};
        const name = checkFileName(metadata.filename ?? '');
        const bucket = await asUser(db, ownerOf(request), (tx) => loadBucket(tx, metadata.bucket ?? 'user-uploads'));
        checkMimeType(bucket, mimeTypeFor(name, metadata.filetype ?? undefined));
        if (upload.size !== undefined && upload.size > bucket.maxBytes) {
          throw new ExaiError('too_large', `The file is ${upload.size} bytes, larger than the ${bucket.maxBytes}-byte limit of bucket ${bucket.name}; nothing was stored.`);
        }
        return {};
      } catch (error) {
        throw tusError(error);
      }
    },
    async onUploadFinish(request, upload: Upload) {
      const metadata = upload.metadata ?? {};
      try {
        const result = await files.upload({
          userId: ownerOf(request),
          name: metadata.filename ?? 'upload',
          body: store.read(upload.id),
          ...(metadata.filetype ? { mimeType: metadata.filetype } : {}),
          ...(metadata.bucket ? { bucket: metadata.bucket } : {}),
          ...(metadata.conversation_id ? { conversationId: metadata.conversation_id } : {}),
          ...(metadata.sha256 ? { sha256: metadata.sha256 } : {}),
        });
        return {
          status_code: 200,
          headers: { 'x-exai-file-id': result.file.id, 'content-type': 'application/json' },
          body: JSON.stringify({ ...publicFile(result.file), deduplicated: result.deduplicated }),
        };
      } catch (error) {
        throw tusError(error);
      } finally {
        await store.remove(upload.id).catch(() => undefined);
      }
    },
  });

  // Unfinished uploads a client gave up on.
  const sweep = setInterval(() => void store.deleteExpired().catch(() => undefined), 60 * 60_000);
  sweep.unref();
  app.addHook('onClose', async () => clearInterval(sweep));

  await app.register(async (scope) => {
    // TUS reads its bodies itself, straight from the request.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));
    const writing = requireScope(authenticator, config, 'files:write');
    const handler = async (request: FastifyRequest, reply: FastifyReply) => {
      owners.set(request.raw, request.principal!.userId);
      reply.hijack();
      await tus.handle(request.raw, reply.raw);
    };
    // GET is left out: staged bytes are never served; the stored file is read from /api/v1/files.
    for (const url of [uploadsPath, `${uploadsPath}/*`]) {
      scope.route({ method: ['POST', 'HEAD', 'PATCH', 'DELETE'], url, onRequest: writing, handler });
    }
  });
}
