/**
 * Fits a thread's history into a model's context: newest turns first until the
 * history budget is spent, then shown oldest first. Budgets follow the peers'
 * rule of thumb: below 300K tokens of context, 60% of the window for the
 * prompt (of it, half for history and 30% for files) and 40% for the reply;
 * from 300K, 80/20 with 40% each for history and files.
 */
import type { ChatMessage } from '../providers/types.js';
import { countStoredTokens } from './tokens.js';
import type { Turn } from './types.js';

export interface ContextBudget {
  /** Everything sent: system prompt, history, files and the new prompt. */
  input: number;
  history: number;
  files: number;
  reply: number;
}

export function contextBudget(contextWindow: number): ContextBudget {
  const large = contextWindow >= 300_000;
  const input = Math.floor(contextWindow * (large ? 0.8 : 0.6));
  return {
    input,
    history: Math.floor(input * (large ? 0.4 : 0.5)),
    files: Math.floor(input * (large ? 0.4 : 0.3)),
    reply: contextWindow - input,
  };
}

export interface FittedHistory {
  messages: ChatMessage[];
  /** Older turns left out to stay within the budget. */
  omitted: number;
  /** Turns sent. */
  included: number;
  /** Tokens the sent turns take. */
  tokens: number;
}

function turnTokens(turn: Turn): number {
  return countStoredTokens(`${turn.id}:c`, turn.content) + (turn.reasoningContent ? countStoredTokens(`${turn.id}:r`, turn.reasoningContent) : 0);
}

/** Only user and assistant turns reach the model; system and tool turns are the server's own notes. */
function sentToModel(turn: Turn): boolean {
  return turn.role === 'user' || turn.role === 'assistant';
}

/**
 * `provider` is the provider the history goes to: reasoning is replayed only to
 * the provider that produced it (others may reject the field, and it costs budget).
 */
export function fitHistory(turns: readonly Turn[], budgetTokens: number, provider?: string): FittedHistory {
  const kept: ChatMessage[] = [];
  let spent = 0;
  for (let index = turns.length - 1; index >= 0; index -= 1) {
    const turn = turns[index]!;
    if (!sentToModel(turn)) continue;
    const replayReasoning = turn.role === 'assistant' && turn.reasoningContent !== null && turn.reasoningContent !== '' && (provider === undefined || turn.provider === provider);
    const cost = replayReasoning ? turnTokens(turn) : countStoredTokens(`${turn.id}:c`, turn.content);
    if (spent + cost > budgetTokens) break;
    spent += cost;
    const message: ChatMessage = { role: turn.role as 'user' | 'assistant', content: turn.content };
    if (replayReasoning) message.reasoningContent = turn.reasoningContent!;
    kept.push(message);
  }
  const considered = turns.filter(sentToModel).length;
  return { messages: kept.reverse(), omitted: considered - kept.length, included: kept.length, tokens: spent };
}

/** Files the thread's turns referred to, newest first, each once. */
export function historyFiles(turns: readonly Turn[]): string[] {
  const seen = new Set<string>();
  const files: string[] = [];
  for (let index = turns.length - 1; index >= 0; index -= 1) {
    for (const file of turns[index]!.files) {
      if (seen.has(file)) continue;
      seen.add(file);
      files.push(file);
    }
  }
  return files;
}
