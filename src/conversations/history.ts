/**
 * Fits a thread's history into a model's context: newest turns first until the
 * history budget is spent, then shown oldest first. Budgets follow the peers'
 * rule of thumb: below 300K tokens of context, 60% for the prompt (half of it
 * history) and 40% for the reply; from 300K, 80/20 with 40% history.
 */
import type { ChatMessage } from '../providers/types.js';
import type { Turn } from './types.js';

/** About four characters a token: cheap, and errs on the side of sending less. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

export function historyBudget(contextWindow: number): number {
  const large = contextWindow >= 300_000;
  const input = contextWindow * (large ? 0.8 : 0.6);
  return Math.floor(input * (large ? 0.4 : 0.5));
}

export interface FittedHistory {
  messages: ChatMessage[];
  /** Older turns left out to stay within the budget. */
  omitted: number;
}

export function fitHistory(turns: readonly Turn[], budgetTokens: number): FittedHistory {
  const kept: ChatMessage[] = [];
  let spent = 0;
  for (let index = turns.length - 1; index >= 0; index -= 1) {
    const turn = turns[index]!;
    if (turn.role === 'tool') continue;
    const cost = estimateTokens(turn.content) + estimateTokens(turn.reasoningContent ?? '');
    if (spent + cost > budgetTokens) break;
    spent += cost;
    const message: ChatMessage = { role: turn.role, content: turn.content };
    if (turn.role === 'assistant' && turn.reasoningContent) message.reasoningContent = turn.reasoningContent;
    kept.push(message);
  }
  const considered = turns.filter((turn) => turn.role !== 'tool').length;
  return { messages: kept.reverse(), omitted: considered - kept.length };
}
