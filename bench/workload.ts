/**
 * Realistic, reproducible turns: a seeded generator of code-review chatter,
 * 300–1500 characters each, with the fields a tool call fills in (provider,
 * model, token counts, files). The raw baselines insert the very same rows.
 */
import type { NewTurn, TurnRole } from '../src/conversations/types.js';
import { turnRecord } from '../src/conversations/rows.js';

/** mulberry32: small, fast, deterministic. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const words = (
  'the a this that function returns value when error handler request response cache thread turn model ' +
  'database query index transaction commit rollback retry timeout connection pool user session token ' +
  'should could would must consider instead because however therefore also only never always first then ' +
  'test case edge null undefined string number array object promise async await callback event stream ' +
  'review change diff line file module import export type interface class method field parameter option ' +
  'performance latency throughput memory allocation batch queue lock deadlock race condition ordering ' +
  'schema migration column constraint foreign key unique insert update delete select join filter sort'
).split(' ');

const files = ['src/server/app.ts', 'src/db/postgres.ts', 'src/cache/redis.ts', 'src/conversations/store.ts', 'README.md'];

function text(random: () => number, length: number): string {
  const parts: string[] = [];
  let size = 0;
  let sentence = 0;
  while (size < length) {
    let word = words[Math.floor(random() * words.length)]!;
    if (sentence === 0) word = word[0]!.toUpperCase() + word.slice(1);
    sentence++;
    const end = sentence > 6 && random() < 0.15;
    if (end) sentence = 0;
    const piece = end ? `${word}.` : word;
    parts.push(piece);
    size += piece.length + 1;
  }
  return parts.join(' ').slice(0, length);
}

/** `count` turns alternating user / assistant, 300–1500 characters of text each. */
export function makeTurns(count: number, seed = 1): NewTurn[] {
  const random = seededRandom(seed);
  const turns: NewTurn[] = [];
  for (let i = 0; i < count; i++) {
    const role: TurnRole = i % 2 === 0 ? 'user' : 'assistant';
    const content = text(random, 300 + Math.floor(random() * 1201));
    if (role === 'user') {
      turns.push({ role, content, toolName: 'chat', files: random() < 0.3 ? [files[Math.floor(random() * files.length)]!] : [] });
    } else {
      turns.push({
        role,
        content,
        toolName: 'chat',
        provider: 'kimi',
        model: 'kimi-k2-0905-preview',
        inputTokens: 200 + Math.floor(random() * 4000),
        outputTokens: 50 + Math.floor(random() * 800),
        metadata: { finish_reason: 'stop' },
      });
    }
  }
  return turns;
}

/** A turn as a row of exai.messages, for the raw baselines. */
export interface MessageRow {
  conversation_id: string;
  owner_id: string;
  seq: number;
  role: string;
  content: string;
  tool_name: string | null;
  provider: string | null;
  model: string | null;
  reasoning_content: string | null;
  files: string[];
  input_tokens: number | null;
  output_tokens: number | null;
  idempotency_key: string | null;
  metadata: Record<string, unknown>;
}

export function messageRow(turn: NewTurn, conversationId: string, ownerId: string, seq: number): MessageRow {
  return { conversation_id: conversationId, owner_id: ownerId, seq, ...turnRecord(turn) };
}

const messageColumns =
  'conversation_id, owner_id, seq, role, content, tool_name, provider, model, reasoning_content, files, input_tokens, output_tokens, idempotency_key, metadata';

/** One row per statement: the raw single-row INSERT. */
export const insertOneSql = `INSERT INTO exai.messages (${messageColumns})
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb)`;

export function insertOneParams(row: MessageRow): unknown[] {
  return [
    row.conversation_id,
    row.owner_id,
    row.seq,
    row.role,
    row.content,
    row.tool_name,
    row.provider,
    row.model,
    row.reasoning_content,
    row.files,
    row.input_tokens,
    row.output_tokens,
    row.idempotency_key,
    JSON.stringify(row.metadata),
  ];
}

/** Many rows in one statement: the raw batched INSERT (one jsonb parameter, as append_turns takes its input). */
export const insertBatchSql = `INSERT INTO exai.messages (${messageColumns})
  SELECT ${messageColumns}
    FROM jsonb_to_recordset($1::jsonb) AS t(
      conversation_id uuid, owner_id uuid, seq integer, role text, content text, tool_name text, provider text,
      model text, reasoning_content text, files text[], input_tokens integer, output_tokens integer,
      idempotency_key text, metadata jsonb)`;
