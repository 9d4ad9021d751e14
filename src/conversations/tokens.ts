/**
 * Token counting with a real BPE tokenizer (o200k, the encoding of current
 * OpenAI models). Kimi and GLM publish no JavaScript tokenizer; o200k counts
 * code and CJK text within a few per cent of theirs, far closer than
 * characters ÷ 4, and budgets keep a margin for the difference.
 */
import { countTokens as countO200k } from 'gpt-tokenizer/encoding/o200k_base';
import { LRUCache } from 'lru-cache';

/** Turn texts do not change once stored, so their counts are kept (bounded). */
const counted = new LRUCache<string, number>({ max: 50_000 });

export function countTokens(text: string): number {
  if (text === '') return 0;
  return countO200k(text);
}

/** Counts a stored text once; `key` must identify that exact text (e.g. a turn id). */
export function countStoredTokens(key: string, text: string): number {
  const known = counted.get(key);
  if (known !== undefined) return known;
  const tokens = countTokens(text);
  counted.set(key, tokens);
  return tokens;
}
