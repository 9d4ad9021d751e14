/**
 * Validation of everything a caller hands the conversation store. Errors say
 * which field was wrong and how to fix it; nothing reaches the database before
 * the whole input is known to be good.
 */
import { z } from 'zod';
import { ExaiError } from '../errors.js';
import { isUuid } from '../db/session.js';
import { turnRoles, type NewThread, type NewTurn } from './types.js';

// Postgres text and jsonb cannot hold NUL characters, nor halves of UTF-16 surrogate pairs.
const nulPattern = new RegExp(String.fromCharCode(0));
const storableMessage = 'must be valid Unicode text without NUL (\\u0000) characters';

function storable(value: string): boolean {
  return !nulPattern.test(value) && (value as string & { isWellFormed(): boolean }).isWellFormed();
}

const anyText = z.string().refine(storable, storableMessage);
const text = (max: number) => z.string().max(max, `must be at most ${max} characters`).refine(storable, storableMessage);

const maxMetadataBytes = 64 * 1024;
/** Every string (and key) inside a JSON value is storable. */
function storableJson(value: unknown): boolean {
  if (typeof value === 'string') return storable(value);
  if (Array.isArray(value)) return value.every(storableJson);
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).every(([key, inner]) => storable(key) && storableJson(inner));
  }
  return true;
}

const metadata = z.record(z.string(), z.unknown()).superRefine((value, ctx) => {
  if (!storableJson(value)) ctx.addIssue({ code: 'custom', message: storableMessage });
  else if (Buffer.byteLength(JSON.stringify(value), 'utf8') > maxMetadataBytes) {
    ctx.addIssue({ code: 'custom', message: `must be at most ${maxMetadataBytes} bytes as JSON` });
  }
});

// Token counts are stored as Postgres integers.
const tokenCount = z.number().int('must be a whole number').min(0, 'must not be negative').max(2_147_483_647, 'must be below 2^31');

const newThreadSchema = z
  .object({
    title: text(500).optional(),
    toolName: text(100).optional(),
    parentId: z.string().refine(isUuid, 'must be a continuation id (a UUID)').optional(),
    metadata: metadata.optional(),
  })
  .strict();

const newTurnSchema = z
  .object({
    role: z.enum(turnRoles, { message: `must be one of ${turnRoles.join(', ')}` }),
    content: anyText,
    toolName: text(100).optional(),
    provider: text(100).optional(),
    model: text(200).optional(),
    reasoningContent: anyText.optional(),
    files: z.array(text(4096)).max(1000, 'must list at most 1000 files').optional(),
    inputTokens: tokenCount.optional(),
    outputTokens: tokenCount.optional(),
    idempotencyKey: text(200).min(1, 'must not be empty').optional(),
    metadata: metadata.optional(),
  })
  .strict();

function describe(error: z.ZodError, what: string): ExaiError {
  const problems = error.issues.map((issue) => `${issue.path.join('.') || what}: ${issue.message}`);
  return new ExaiError('invalid_argument', `Invalid ${what}: ${problems.join('; ')}.`);
}

export function validateNewThread(input: unknown): NewThread {
  const parsed = newThreadSchema.safeParse(input ?? {});
  if (!parsed.success) throw describe(parsed.error, 'thread');
  return parsed.data;
}

export function validateNewTurn(input: unknown, maxBytes: number): NewTurn {
  const parsed = newTurnSchema.safeParse(input);
  if (!parsed.success) throw describe(parsed.error, 'turn');
  const turn = parsed.data;
  const bytes =
    Buffer.byteLength(turn.content, 'utf8') +
    (turn.reasoningContent === undefined ? 0 : Buffer.byteLength(turn.reasoningContent, 'utf8'));
  if (bytes > maxBytes) {
    throw new ExaiError(
      'too_large',
      `The message is ${bytes} bytes, more than the limit of ${maxBytes} bytes; nothing was stored. ` +
        'Send a shorter message, or raise EXAI_MAX_MESSAGE_BYTES.',
      { details: { bytes, limit: maxBytes } },
    );
  }
  return turn;
}

/** Checks a continuation id's form; the error names the id. */
export function parseThreadId(id: unknown): string {
  if (typeof id !== 'string' || !isUuid(id)) {
    const shown = typeof id === 'string' ? JSON.stringify(id.length > 80 ? `${id.slice(0, 77)}...` : id) : String(id);
    throw new ExaiError(
      'invalid_argument',
      `continuation_id ${shown} is not valid: expected a UUID such as 3f2b8c1e-5d4a-4e7b-9c2d-1a2b3c4d5e6f.`,
    );
  }
  return id.toLowerCase();
}

export function threadNotFound(id: string): ExaiError {
  return new ExaiError('not_found', `No conversation with continuation_id ${id} was found. Start a new conversation instead.`, {
    details: { continuation_id: id },
  });
}
