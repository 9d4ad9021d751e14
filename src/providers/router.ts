/**
 * Routes a model call: resolves the model (or `auto`), applies the provider's
 * quirks, keeps each provider within its concurrency limit, skips a provider
 * whose circuit is open, and falls back along the given chain when a provider
 * is unavailable or too slow. Bad requests and cancellations are not retried
 * elsewhere: they would fail the same way, or were meant to stop.
 */
import type { Config } from '../config.js';
import { ExaiError, isExaiError } from '../errors.js';
import type { CallRecorder } from './call-recorder.js';
import { CircuitBreaker, type CircuitBreakerOptions } from './circuit-breaker.js';
import { ProviderClient } from './client.js';
import { ModelRegistry, type ModelInfo, type ProviderName } from './registry.js';
import { chooseModel } from './model-choice.js';
import { Semaphore } from './semaphore.js';
import type { BuiltinTool, ChatRequest, ChatResult } from './types.js';

export interface RoutedRequest extends Omit<ChatRequest, 'model' | 'extra' | 'tools'> {
  /** A model name, an alias, or `auto`. */
  model: string;
  /** Models to try, in order, when the first one's provider is unavailable. */
  fallbacks?: string[];
  /** Ask for the model's thinking mode where the provider has a switch for it. */
  thinking?: boolean;
  /**
   * Let the model search the web where it can (the registry's `webSearch`);
   * elsewhere it answers without, and the result says `unsupported`.
   */
  webSearch?: boolean;
}

/** `webSearch`, `webSearchRounds` and `sources` (see ChatResult) say what became of web search. */
export interface RoutedResult extends ChatResult {
  /** Models tried before the one that answered, with why each was passed over. */
  passedOver: { model: string; reason: string }[];
}

interface ProviderLane {
  client: ProviderClient;
  breaker: CircuitBreaker;
  slots: Semaphore;
}

const defaultBreaker: CircuitBreakerOptions = { failureThreshold: 5, cooldownMs: 30_000 };

/** Provider-specific request fields. */
function providerFields(model: ModelInfo, thinking: boolean | undefined): Record<string, unknown> {
  // GLM takes a thinking switch, and only on models that support it; Kimi thinks by model choice.
  if (model.provider === 'glm' && thinking !== undefined && model.capabilities.thinking) {
    return { thinking: { type: thinking ? 'enabled' : 'disabled' } };
  }
  return {};
}

/** The provider's web search tool, for a model that has one. */
function searchTools(model: ModelInfo): BuiltinTool[] {
  switch (model.provider) {
    case 'kimi':
      return [{ type: 'builtin_function', function: { name: '$web_search' } }];
    case 'glm':
      return [{ type: 'web_search', web_search: { enable: true, search_result: true } }];
    case 'openai-compat':
      return [];
  }
}

/** Who a routed call is for: recorded with it, and charged with its tokens. */
export interface RouterCaller {
  userId: string;
  /** The key the caller authenticated with, when it was a key. */
  apiKeyId?: string;
  onTokens?(tokens: number): void;
  /** Receives this caller's call records instead of the router's recorder. */
  recorder?: CallRecorder;
}

/** Admission of one call to a provider across instances; resolves to its release. */
export type ProviderGate = (provider: string, signal: AbortSignal | undefined) => Promise<() => Promise<void>>;

export class ProviderRouter {
  private readonly lanes = new Map<ProviderName, ProviderLane>();
  private readonly gate: ProviderGate | undefined;
  private caller: RouterCaller | undefined;

  constructor(
    readonly registry: ModelRegistry,
    clients: Map<ProviderName, ProviderClient>,
    options: { maxConcurrent: number; breaker?: CircuitBreakerOptions; gate?: ProviderGate },
  ) {
    this.gate = options.gate;
    for (const [provider, client] of clients) {
      this.lanes.set(provider, {
        client,
        breaker: new CircuitBreaker(options.breaker ?? defaultBreaker),
        slots: new Semaphore(options.maxConcurrent),
      });
    }
  }

  /**
   * The same router acting for one caller: its calls are recorded under the
   * caller's id and their tokens reported to it. Shares lanes, breakers and slots.
   */
  forCaller(caller: RouterCaller): ProviderRouter {
    const view = Object.create(this) as ProviderRouter;
    view.caller = caller;
    return view;
  }

  static fromConfig(config: Config, recorder: CallRecorder, gate?: ProviderGate): ProviderRouter {
    const clients = new Map<ProviderName, ProviderClient>();
    const common = { timeoutMs: config.providers.timeoutMs, recorder };
    const { kimi, glm, openaiCompat } = config.providers;
    if (kimi.apiKey !== undefined) clients.set('kimi', new ProviderClient({ provider: 'kimi', baseUrl: kimi.baseUrl, apiKey: kimi.apiKey, ...common }));
    if (glm.apiKey !== undefined) clients.set('glm', new ProviderClient({ provider: 'glm', baseUrl: glm.baseUrl, apiKey: glm.apiKey, ...common }));
    if (openaiCompat.baseUrl !== undefined) {
      clients.set('openai-compat', new ProviderClient({ provider: 'openai-compat', baseUrl: openaiCompat.baseUrl, apiKey: openaiCompat.apiKey, ...common }));
    }
    return new ProviderRouter(ModelRegistry.fromConfig(config), clients, {
      maxConcurrent: config.providers.maxConcurrent,
      ...(gate === undefined ? {} : { gate }),
    });
  }

  /** Each configured provider and whether calls to it go through now. */
  providerStatus(): { provider: ProviderName; state: 'ok' | 'failing' | 'probing'; models: number }[] {
    return [...this.lanes].map(([provider, lane]) => ({
      provider,
      state: lane.breaker.state === 'closed' ? 'ok' : lane.breaker.state === 'open' ? 'failing' : 'probing',
      models: this.registry.models.filter((model) => model.provider === provider).length,
    }));
  }

  /** The named model, or what `auto` stands for when no tool category is known: the balanced choice. */
  pick(nameOrAuto: string): ModelInfo {
    if (nameOrAuto.trim().toLowerCase() !== 'auto') return this.registry.resolve(nameOrAuto);
    return chooseModel(this.registry, 'balanced');
  }

  async chat(request: RoutedRequest): Promise<RoutedResult> {
    const { model: asked, fallbacks = [], thinking, webSearch, ...rest } = request;
    const chain = [this.pick(asked), ...fallbacks.map((name) => this.registry.resolve(name))];
    const passedOver: RoutedResult['passedOver'] = [];
    let lastError: unknown;
    for (const model of chain) {
      const lane = this.lanes.get(model.provider);
      if (lane === undefined) {
        passedOver.push({ model: model.name, reason: `${model.provider} is not configured` });
        continue;
      }
      if (!lane.breaker.tryAcquire()) {
        passedOver.push({ model: model.name, reason: `${model.provider} is failing; retried in ${Math.ceil(lane.breaker.retryInMs() / 1000)} s` });
        continue;
      }
      const release = await lane.slots.acquire(rest.signal).catch((error: unknown) => {
        lane.breaker.released();
        throw new ExaiError('cancelled', `The call to ${model.name} was cancelled while waiting for a free slot.`, { cause: error });
      });
      let releaseGate: (() => Promise<void>) | undefined;
      try {
        // Across instances too: the gate counts this provider's calls in flight everywhere.
        releaseGate = await this.gate?.(model.provider, rest.signal);
      } catch (error) {
        release();
        lane.breaker.released();
        if (!isExaiError(error) || error.code !== 'rate_limited') throw error;
        // Busy everywhere is not a failure of the provider: try the next model.
        passedOver.push({ model: model.name, reason: error.message });
        lastError = error;
        continue;
      }
      try {
        // Judged per model: a fallback may lack the search its predecessor had.
        const tools = webSearch === true && model.capabilities.webSearch ? searchTools(model) : [];
        const result = await lane.client.chat({
          ...rest,
          model: model.name,
          extra: providerFields(model, thinking),
          ...(tools.length > 0 ? { tools } : {}),
          ...(this.caller === undefined ? {} : { userId: this.caller.userId }),
          ...(this.caller?.apiKeyId === undefined ? {} : { apiKeyId: this.caller.apiKeyId }),
          ...(this.caller?.recorder === undefined ? {} : { recorder: this.caller.recorder }),
        });
        this.caller?.onTokens?.((result.inputTokens ?? 0) + (result.outputTokens ?? 0));
        lane.breaker.succeeded();
        const unsupported = webSearch === true && tools.length === 0;
        return { ...result, ...(unsupported ? { webSearch: 'unsupported' as const } : {}), passedOver };
      } catch (error) {
        const unavailable = isExaiError(error) && (error.code === 'provider_unavailable' || error.code === 'timeout');
        if (!unavailable) {
          lane.breaker.released();
          throw error;
        }
        lane.breaker.failed();
        passedOver.push({ model: model.name, reason: error.message });
        lastError = error;
      } finally {
        release();
        await releaseGate?.();
      }
    }
    const tried = passedOver.map((entry) => `${entry.model}: ${entry.reason}`).join('; ');
    throw new ExaiError('provider_unavailable', `No model could answer. ${tried}`, {
      cause: lastError,
      details: { passed_over: passedOver },
    });
  }
}
