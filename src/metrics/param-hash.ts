/**
 * The hash that groups calls made the same way. Only parameters that change
 * how fast or how well a model answers enter it, so prompts, users and
 * threads never split a group, and equal settings always hash alike.
 */
import { createHash } from 'node:crypto';

export interface PerformanceParams {
  model: string | null;
  temperature: number | null;
  /** The thinking setting as asked (`enabled`, `high` …), null when not asked. */
  thinking: string | null;
  webSearch: boolean;
  maxTokens: number | null;
}

export function performanceParamHash(params: PerformanceParams): string {
  // A fixed order of fields: the same settings give the same text.
  const canonical = JSON.stringify([params.model, params.temperature, params.thinking, params.webSearch, params.maxTokens]);
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}
