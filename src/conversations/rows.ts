/** Mapping between database rows and the store's types. */
import type { AppendOutcome } from './append-batcher.js';
import type { NewTurn, Thread, ThreadStatus, ThreadSummary, Turn, TurnRole } from './types.js';

export const threadColumns =
  'id, owner_id, title, tool_name, parent_id, status, summary, metadata, turn_count, created_at, updated_at';
export const turnColumns =
  'id, seq, role, content, tool_name, provider, model, reasoning_content, files, input_tokens, output_tokens, idempotency_key, metadata, created_at';

function iso(value: unknown): string {
  return value instanceof Date ? value.toISOString() : new Date(String(value)).toISOString();
}

function nullableText(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}

function nullableNumber(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}

function object(value: unknown): Record<string, unknown> {
  if (typeof value === 'string') return JSON.parse(value) as Record<string, unknown>;
  return (value ?? {}) as Record<string, unknown>;
}

export function toThreadSummary(row: Record<string, unknown>): ThreadSummary {
  return {
    id: String(row.id),
    ownerId: String(row.owner_id),
    title: nullableText(row.title),
    toolName: nullableText(row.tool_name),
    parentId: nullableText(row.parent_id),
    status: row.status as ThreadStatus,
    summary: nullableText(row.summary),
    metadata: object(row.metadata),
    turnCount: Number(row.turn_count),
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

export function toTurn(row: Record<string, unknown>): Turn {
  return {
    id: String(row.id),
    seq: Number(row.seq),
    role: row.role as TurnRole,
    content: String(row.content),
    toolName: nullableText(row.tool_name),
    provider: nullableText(row.provider),
    model: nullableText(row.model),
    reasoningContent: nullableText(row.reasoning_content),
    files: Array.isArray(row.files) ? row.files.map(String) : [],
    inputTokens: nullableNumber(row.input_tokens),
    outputTokens: nullableNumber(row.output_tokens),
    idempotencyKey: nullableText(row.idempotency_key),
    metadata: object(row.metadata),
    createdAt: iso(row.created_at),
  };
}

/** A thread as the cache holds it: the summary as head, one JSON text per turn. */
export function threadToLog(thread: Thread): { head: string; entries: string[] } {
  const { turns, ...summary } = thread;
  return { head: JSON.stringify(summary), entries: turns.map((turn) => JSON.stringify(turn)) };
}

export function threadFromLog(log: { head: string; entries: string[] }): Thread {
  const summary = JSON.parse(log.head) as ThreadSummary;
  return withDerivedFields({ ...summary, turns: log.entries.map((entry) => JSON.parse(entry) as Turn) });
}

/** The count and last activity of a loaded thread, from its turns. */
export function withDerivedFields(thread: Thread): Thread {
  const last = thread.turns[thread.turns.length - 1];
  if (last !== undefined && last.createdAt > thread.updatedAt) thread.updatedAt = last.createdAt;
  thread.turnCount = thread.turns.length;
  return thread;
}

/** The turn a successful append stored: the input as given plus what the database assigned. */
export function committedTurn(turn: NewTurn, outcome: AppendOutcome): Turn {
  return {
    id: outcome.messageId!,
    seq: outcome.seq!,
    role: turn.role,
    content: turn.content,
    toolName: turn.toolName ?? null,
    provider: turn.provider ?? null,
    model: turn.model ?? null,
    reasoningContent: turn.reasoningContent ?? null,
    files: turn.files ?? [],
    inputTokens: turn.inputTokens ?? null,
    outputTokens: turn.outputTokens ?? null,
    idempotencyKey: turn.idempotencyKey ?? null,
    metadata: turn.metadata ?? {},
    createdAt: outcome.createdAt!,
  };
}

/** A new turn's stored fields, named as the messages table names them. */
export function turnRecord(turn: NewTurn) {
  return {
    role: turn.role,
    content: turn.content,
    tool_name: turn.toolName ?? null,
    provider: turn.provider ?? null,
    model: turn.model ?? null,
    reasoning_content: turn.reasoningContent ?? null,
    files: turn.files ?? [],
    input_tokens: turn.inputTokens ?? null,
    output_tokens: turn.outputTokens ?? null,
    idempotency_key: turn.idempotencyKey ?? null,
    metadata: turn.metadata ?? {},
  };
}
