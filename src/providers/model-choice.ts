/**
 * What `model: "auto"` means for a tool: each tool belongs to a category, each
 * category prefers some models, and the call's needs (images, web search,
 * thinking) narrow the choice to models that can meet them.
 */
import { ExaiError } from '../errors.js';
import type { ModelInfo, ModelRegistry } from './registry.js';

export type ToolCategory = 'reasoning' | 'balanced' | 'fast';

/** Strongest first within each category. */
const preferences: Record<ToolCategory, readonly string[]> = {
  // Deep analysis: thinking-capable, large-context models.
  reasoning: ['glm-4.6', 'kimi-k2-0905-preview', 'kimi-thinking-preview', 'glm-4.5', 'kimi-k2-turbo-preview', 'glm-4.5-air'],
  balanced: ['kimi-k2-0905-preview', 'glm-4.6', 'kimi-k2-turbo-preview', 'glm-4.5', 'glm-4.5-air', 'glm-4.5-flash'],
  fast: ['kimi-k2-turbo-preview', 'glm-4.5-flash', 'glm-4.5-air', 'kimi-k2-0905-preview', 'glm-4.6'],
};

export interface ModelNeeds {
  vision?: boolean;
  webSearch?: boolean;
  thinking?: boolean;
}

function meets(model: ModelInfo, needs: ModelNeeds): boolean {
  return (!needs.vision || model.capabilities.vision) && (!needs.webSearch || model.capabilities.webSearch) && (!needs.thinking || model.capabilities.thinking);
}

/** Ranks every offered model for a category: preferred ones first, then the rest in registry order. */
function ranked(registry: ModelRegistry, category: ToolCategory): ModelInfo[] {
  const preferred = preferences[category].map((name) => registry.models.find((model) => model.name === name)).filter((model): model is ModelInfo => model !== undefined);
  return [...preferred, ...registry.models.filter((model) => !preferred.includes(model))];
}

/**
 * The model for `auto`. Vision is a hard need (a model that cannot see would
 * ignore the images); web search and thinking are preferences.
 */
export function chooseModel(registry: ModelRegistry, category: ToolCategory, needs: ModelNeeds = {}): ModelInfo {
  const candidates = ranked(registry, category);
  if (candidates.length === 0) {
    throw new ExaiError('invalid_argument', 'No model is available: no provider is configured. Set KIMI_API_KEY, GLM_API_KEY or OPENAI_COMPAT_BASE_URL with OPENAI_COMPAT_MODELS.');
  }
  const seeing = needs.vision ? candidates.filter((model) => model.capabilities.vision) : candidates;
  if (seeing.length === 0) {
    throw new ExaiError('invalid_argument', `No configured model can read images. Configure GLM (glm-4.5v) or Kimi (kimi-latest), or leave out "images".`);
  }
  return seeing.find((model) => meets(model, needs)) ?? seeing.find((model) => meets(model, { ...needs, thinking: false })) ?? seeing[0]!;
}

/** Models for a fallback chain: same category, other providers first, never the chosen one. */
export function fallbackModels(registry: ModelRegistry, category: ToolCategory, chosen: ModelInfo, needs: ModelNeeds = {}): string[] {
  const others = ranked(registry, category).filter((model) => model.name !== chosen.name && (!needs.vision || model.capabilities.vision));
  const otherProvider = others.find((model) => model.provider !== chosen.provider);
  return otherProvider === undefined ? [] : [otherProvider.name];
}
