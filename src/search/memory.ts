/**
 * `use_memory`: the user's related past turns, found by the hybrid search on
 * the question, as a block for the system prompt, within a token budget. The
 * conversation being continued is left out (its history is sent anyway).
 */
import { countTokens } from '../conversations/tokens.js';
import type { Database } from '../db/types.js';
import type { Logger } from '../logger.js';
import type { Embedder } from './embedder.js';
import { maxQueryChars, searchConversations } from './search.js';

export interface Memory {
  /** Text for the system prompt; empty when nothing related was found. */
  block: string;
  used: { continuation_id: string; title: string | null }[];
  tokens: number;
}

export async function relatedMemory(
  deps: { db: Database; embedder: Embedder; logger: Logger },
  userId: string,
  question: string,
  options: { excludeConversationId?: string; tokenBudget: number; limit?: number },
): Promise<Memory> {
  const answer = await searchConversations(deps, userId, {
    query: question.slice(0, maxQueryChars),
    limit: options.limit ?? 3,
    withContent: true,
    ...(options.excludeConversationId === undefined ? {} : { excludeConversationId: options.excludeConversationId }),
  });
  const parts: string[] = [];
  const used: Memory['used'] = [];
  let tokens = 0;
  for (const result of answer.results) {
    const part = `--- continuation_id ${result.continuation_id}: ${result.title ?? '(untitled)'} ---\n${result.content ?? result.snippet}`;
    const cost = countTokens(part);
    if (tokens + cost > options.tokenBudget) continue;
    parts.push(part);
    used.push({ continuation_id: result.continuation_id, title: result.title });
    tokens += cost;
  }
  if (parts.length === 0) return { block: '', used, tokens: 0 };
  const block = `Related turns from this user's earlier conversations (for reference; say which continuation_id you draw on):\n\n${parts.join('\n\n')}`;
  return { block, used, tokens: countTokens(block) };
}
