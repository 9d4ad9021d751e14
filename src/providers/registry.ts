/**
 * The model registry, as data: what each model can do, how much it takes and
 * gives, what it costs. It drives routing, token budgets and cost tracking.
 * Only models whose provider is configured are offered.
 *
 * Prices are US dollars per million tokens at the providers' list prices where
 * they were known to us; null means unknown, and no cost is computed for it.
 */
import type { Config } from '../config.js';
import { ExaiError } from '../errors.js';

export type ProviderName = 'kimi' | 'glm' | 'openai-compat';

export interface ModelCapabilities {
  /** Returns reasoning_content, or accepts a thinking switch. */
  thinking: boolean;
  vision: boolean;
  tools: boolean;
  webSearch: boolean;
  files: boolean;
}

export interface ModelInfo {
  name: string;
  aliases: string[];
  provider: ProviderName;
  contextWindow: number;
  maxOutput: number;
  capabilities: ModelCapabilities;
  price: { inputPerMillion: number | null; outputPerMillion: number | null };
}

const unknownPrice = { inputPerMillion: null, outputPerMillion: null };
const kimiText: ModelCapabilities = { thinking: false, vision: false, tools: true, webSearch: true, files: true };
const glmText: ModelCapabilities = { thinking: false, vision: false, tools: true, webSearch: true, files: true };

export const builtInModels: readonly ModelInfo[] = [
  { name: 'kimi-k2-0905-preview', aliases: ['kimi', 'kimi-k2'], provider: 'kimi', contextWindow: 262_144, maxOutput: 16_384, capabilities: kimiText, price: { inputPerMillion: 0.6, outputPerMillion: 2.5 } },
  { name: 'kimi-k2-0711-preview', aliases: [], provider: 'kimi', contextWindow: 131_072, maxOutput: 16_384, capabilities: kimiText, price: unknownPrice },
  { name: 'kimi-k2-turbo-preview', aliases: ['kimi-turbo'], provider: 'kimi', contextWindow: 262_144, maxOutput: 16_384, capabilities: kimiText, price: { inputPerMillion: 1.15, outputPerMillion: 8 } },
  { name: 'kimi-thinking-preview', aliases: ['kimi-thinking'], provider: 'kimi', contextWindow: 131_072, maxOutput: 32_768, capabilities: { ...kimiText, thinking: true, tools: false, webSearch: false }, price: unknownPrice },
  { name: 'kimi-latest', aliases: [], provider: 'kimi', contextWindow: 131_072, maxOutput: 16_384, capabilities: { ...kimiText, vision: true }, price: unknownPrice },
  { name: 'moonshot-v1-8k', aliases: [], provider: 'kimi', contextWindow: 8_192, maxOutput: 4_096, capabilities: kimiText, price: unknownPrice },
  { name: 'moonshot-v1-32k', aliases: [], provider: 'kimi', contextWindow: 32_768, maxOutput: 8_192, capabilities: kimiText, price: unknownPrice },
  { name: 'moonshot-v1-128k', aliases: [], provider: 'kimi', contextWindow: 131_072, maxOutput: 8_192, capabilities: kimiText, price: unknownPrice },
  { name: 'glm-4.6', aliases: ['glm'], provider: 'glm', contextWindow: 200_000, maxOutput: 131_072, capabilities: { ...glmText, thinking: true }, price: unknownPrice },
  { name: 'glm-4.5', aliases: [], provider: 'glm', contextWindow: 131_072, maxOutput: 98_304, capabilities: { ...glmText, thinking: true }, price: unknownPrice },
  { name: 'glm-4.5-air', aliases: ['glm-air'], provider: 'glm', contextWindow: 131_072, maxOutput: 98_304, capabilities: { ...glmText, thinking: true }, price: unknownPrice },
  { name: 'glm-4.5-flash', aliases: ['glm-flash'], provider: 'glm', contextWindow: 131_072, maxOutput: 98_304, capabilities: glmText, price: { inputPerMillion: 0, outputPerMillion: 0 } },
  { name: 'glm-4.5v', aliases: ['glm-vision'], provider: 'glm', contextWindow: 65_536, maxOutput: 16_384, capabilities: { ...glmText, vision: true, thinking: true, files: false }, price: unknownPrice },
];

/** What is known of a model served by an OpenAI-compatible endpoint: only its name. */
function compatModel(name: string): ModelInfo {
  return {
    name,
    aliases: [],
    provider: 'openai-compat',
    contextWindow: 32_768,
    maxOutput: 4_096,
    capabilities: { thinking: false, vision: false, tools: false, webSearch: false, files: false },
    price: unknownPrice,
  };
}

export class ModelRegistry {
  private readonly byName = new Map<string, ModelInfo>();

  constructor(readonly models: readonly ModelInfo[]) {
    for (const model of models) {
      for (const key of [model.name, ...model.aliases]) {
        const lower = key.toLowerCase();
        if (!this.byName.has(lower)) this.byName.set(lower, model);
      }
    }
  }

  /** The models of the configured providers: Kimi with KIMI_API_KEY, GLM with GLM_API_KEY, the endpoint's OPENAI_COMPAT_MODELS. */
  static fromConfig(config: Config): ModelRegistry {
    const models: ModelInfo[] = [];
    if (config.providers.kimi.apiKey !== undefined) models.push(...builtInModels.filter((model) => model.provider === 'kimi'));
    if (config.providers.glm.apiKey !== undefined) models.push(...builtInModels.filter((model) => model.provider === 'glm'));
    if (config.providers.openaiCompat.baseUrl !== undefined) models.push(...config.providers.openaiCompat.models.map(compatModel));
    return new ModelRegistry(models);
  }

  /** A model by name or alias, case-insensitively, or undefined. */
  find(nameOrAlias: string): ModelInfo | undefined {
    return this.byName.get(nameOrAlias.trim().toLowerCase());
  }

  /** A model by name or alias, case-insensitively; the error lists what is offered. */
  resolve(nameOrAlias: string): ModelInfo {
    const model = this.byName.get(nameOrAlias.trim().toLowerCase());
    if (model !== undefined) return model;
    const offered = this.models.map((entry) => entry.name);
    throw new ExaiError(
      'invalid_argument',
      offered.length === 0
        ? `Model ${JSON.stringify(nameOrAlias)} is not available: no provider is configured. Set KIMI_API_KEY, GLM_API_KEY or OPENAI_COMPAT_BASE_URL with OPENAI_COMPAT_MODELS.`
        : `Model ${JSON.stringify(nameOrAlias)} is not available. Available: ${offered.join(', ')} (or "auto").`,
    );
  }

  /** Cost in US dollars of a call, or null when the model's price is unknown. */
  static cost(model: ModelInfo, inputTokens: number, outputTokens: number): number | null {
    const { inputPerMillion, outputPerMillion } = model.price;
    if (inputPerMillion === null || outputPerMillion === null) return null;
    return (inputTokens * inputPerMillion + outputTokens * outputPerMillion) / 1_000_000;
  }
}
