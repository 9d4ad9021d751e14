/**
 * Tools for the user's stored files: upload (base64 content, or a path the
 * server may read), list, info, delete. Uploads are deduplicated per user by
 * content; large files go over REST or TUS instead (see README "Files").
 */
import { z } from 'zod';
import { recordAudit } from '../audit/audit-log.js';
import { ExaiError } from '../errors.js';
import { bucketNames } from '../files/buckets.js';
import { publicFile, type FileRecord } from '../files/file-record.js';
import { defineTool } from './types.js';

const base64Pattern = /^[A-Za-z0-9+/]*={0,2}$/;

/** Strict base64: a typo must not silently become different bytes. */
export function decodeBase64(text: string): Buffer {
  const compact = text.replace(/\s+/g, '');
  if (compact.length % 4 !== 0 || !base64Pattern.test(compact)) {
    throw new ExaiError('invalid_argument', 'content_base64 is not valid base64 (A-Z, a-z, 0-9, +, / and = padding, a multiple of 4 characters).');
  }
  return Buffer.from(compact, 'base64');
}

function describe(file: FileRecord): string {
  return `${file.name} (${file.size} bytes, ${file.mimeType}, ${file.bucket}) id ${file.id}`;
}

export const fileUploadTool = defineTool({
  name: 'file_upload',
  title: 'Upload a file',
  description:
    'Stores a file for later use by any tool (pass its file_id in `files`). Send the bytes as base64 (`content_base64` with a `name`), or an absolute `path` the server may read. The same bytes uploaded again return the same file_id. For files over a few MB use POST /api/v1/files or the TUS endpoint.',
  category: 'fast',
  inputSchema: {
    name: z.string().min(1).max(1024).optional().describe('File name, e.g. "report.pdf"; required with content_base64.'),
    content_base64: z.string().optional().describe('The file content, base64-encoded.'),
    path: z.string().min(1).optional().describe('Absolute path of a file the server may read (under EXAI_ALLOWED_ROOTS).'),
    mime_type: z.string().max(255).optional().describe('The content type; guessed from the name when absent.'),
    bucket: z.enum(bucketNames).optional().describe('user-uploads (default, any type) or conversation-files (documents, code, images).'),
    continuation_id: z.string().optional().describe('Link the file to this conversation.'),
  },
  annotations: { idempotentHint: true },
  scopes: ['files:write'],
  async run(args, context) {
    const { files } = context.services;
    if ((args.content_base64 === undefined) === (args.path === undefined)) {
      throw new ExaiError('invalid_argument', 'Pass either content_base64 (with name) or path, not both and not neither.');
    }
    const common = {
      userId: context.userId,
      ...(args.mime_type === undefined ? {} : { mimeType: args.mime_type }),
      ...(args.bucket === undefined ? {} : { bucket: args.bucket }),
      ...(args.continuation_id === undefined ? {} : { conversationId: args.continuation_id }),
    };
    let result;
    if (args.path !== undefined) {
      result = await files.uploadPath({ ...common, path: args.path, access: context.services.config.files, ...(args.name === undefined ? {} : { name: args.name }) });
    } else {
      if (args.name === undefined) throw new ExaiError('invalid_argument', 'name is required with content_base64, e.g. "notes.md".');
      result = await files.upload({ ...common, name: args.name, body: decodeBase64(args.content_base64!) });
    }
    const { file, deduplicated } = result;
    return {
      content: [{ type: 'text', text: `${deduplicated ? 'Already stored' : 'Stored'}: ${describe(file)}. Pass "${file.id}" in a tool's files to use it.` }],
      structuredContent: { ...publicFile(file), deduplicated },
    };
  },
});

export const fileListTool = defineTool({
  name: 'file_list',
  title: 'List your files',
  description: 'Your stored files, newest first, a page at a time (pass next_cursor as cursor for the next page).',
  category: 'fast',
  inputSchema: {
    limit: z.number().int().min(1).max(500).optional(),
    cursor: z.string().max(500).optional(),
    bucket: z.enum(bucketNames).optional(),
  },
  annotations: { readOnlyHint: true },
  scopes: [],
  async run(args, context) {
    const page = await context.services.files.list(context.userId, {
      ...(args.limit === undefined ? {} : { limit: args.limit }),
      ...(args.cursor === undefined ? {} : { before: args.cursor }),
      ...(args.bucket === undefined ? {} : { bucket: args.bucket }),
    });
    const text = page.files.length === 0 ? 'No files stored.' : page.files.map(describe).join('\n');
    return {
      content: [{ type: 'text', text: page.nextCursor === undefined ? text : `${text}\n(more: pass cursor "${page.nextCursor}")` }],
      structuredContent: { files: page.files.map(publicFile), ...(page.nextCursor === undefined ? {} : { next_cursor: page.nextCursor }) },
    };
  },
});

export const fileInfoTool = defineTool({
  name: 'file_info',
  title: 'Describe a file',
  description: 'Name, size, type, SHA-256 and upload time of one of your files.',
  category: 'fast',
  inputSchema: { file_id: z.string().min(1).max(100) },
  annotations: { readOnlyHint: true },
  scopes: [],
  async run(args, context) {
    const file = await context.services.files.info(context.userId, args.file_id);
    return { content: [{ type: 'text', text: describe(file) }], structuredContent: publicFile(file) };
  },
});

export const fileDeleteTool = defineTool({
  name: 'file_delete',
  title: 'Delete a file',
  description: 'Deletes one of your files. Tools can no longer use it; its bytes are removed once nothing else refers to them.',
  category: 'fast',
  inputSchema: { file_id: z.string().min(1).max(100) },
  annotations: { destructiveHint: true, idempotentHint: true },
  scopes: ['files:write'],
  async run(args, context) {
    const actor = { userId: context.userId, label: context.principal.label, source: context.source };
    const file = await context.services.files.delete(context.userId, args.file_id, (tx) =>
      recordAudit(tx, actor, { action: 'file.delete', target: `file:${args.file_id}`, outcome: 'success' }),
    );
    return { content: [{ type: 'text', text: `Deleted ${describe(file)}.` }], structuredContent: { file_id: file.id, deleted: true } };
  },
});
