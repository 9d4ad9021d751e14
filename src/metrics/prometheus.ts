/**
 * Prometheus metrics for `GET /metrics`, in a registry of their own (never
 * prom-client's global one: one process may run several apps, as the tests
 * do). Tool and provider calls arrive as metric events from the recorder
 * (`observe`), HTTP requests from the server's onResponse hook
 * (`observeHttp`); recorder, cache and job-queue figures are read when
 * Prometheus scrapes.
 *
 * Every label value comes from a bounded set, whatever the callers send:
 * models are the registry's, tools the catalog's, providers the three known
 * ones; error classes, routes and queues admit the first few distinct values
 * seen and call the rest `other`. A client inventing model names or a
 * provider inventing error messages cannot grow the number of series.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CacheReadCounts } from '../cache/counting.js';
import type { Logger } from '../logger.js';
import { toolNames } from '../tools/names.js';
import type { MetricEvent } from './event.js';
import type { RecorderStats } from './recorder.js';

/** The label value that stands for everything outside a label's bounded set. */
export const otherLabel = 'other';

/** Seconds: model calls take from tens of milliseconds to minutes (thinking models, long answers). */
export const llmBuckets = [0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 45, 60, 90, 120, 180, 240, 300];
/** Seconds: tool calls include instant ones (version, listmodels) and ones that wait on a model. */
export const toolBuckets = [0.005, 0.01, 0.025, ...llmBuckets];
/** Seconds: HTTP requests, from a health probe to a long MCP call. */
export const httpBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Depth of each job queue (jobs waiting), by queue name. */
export type QueueDepthSource = () => Promise<Record<string, number>>;

/** A label limited to known values; anything else (case aside) is `other`. */
export class AllowedLabel {
  private readonly byLower = new Map<string, string>();

  constructor(values: Iterable<string>) {
    for (const value of values) if (!this.byLower.has(value.toLowerCase())) this.byLower.set(value.toLowerCase(), value);
  }

  value(raw: string | null | undefined): string {
    return (raw === null || raw === undefined ? undefined : this.byLower.get(raw.toLowerCase())) ?? otherLabel;
  }
}

const labelShape = /^[A-Za-z0-9_.:/-]{1,80}$/;

/**
 * A label for values that are not known in advance but should be few (error
 * classes, route patterns, queue names): the first `max` distinct well-formed
 * values keep their name, every later one is `other`.
 */
export class FirstSeenLabel {
  private readonly seen = new Set<string>();

  constructor(private readonly max: number) {}

  value(raw: string | null | undefined): string {
    if (raw === null || raw === undefined || !labelShape.test(raw)) return otherLabel;
    if (this.seen.has(raw)) return raw;
    if (this.seen.size >= this.max) return otherLabel;
    this.seen.add(raw);
    return raw;
  }
}

export interface HttpObservation {
  method: string;
  /** The matched route pattern (`/mcp`, not the URL); undefined when no route matched. */
  route: string | undefined;
  statusCode: number;
  seconds: number;
}

export interface PrometheusMetricsOptions {
  logger: Logger;
  /** Canonical names of the models in the registry; other names are counted as `other`. */
  models: Iterable<string>;
  /** The metrics recorder, for its buffered and dropped counts. */
  recorder?: { stats(): RecorderStats };
  /** The cache's read counts (a CountingCache). */
  cache?: { counts(): CacheReadCounts };
  /** Queue depths, read at each scrape; see `setQueueDepthSource`. */
  queueDepth?: QueueDepthSource;
  /** Node.js process metrics (CPU, memory, event loop, GC); on unless false. */
  defaultMetrics?: boolean;
  /** Distinct error classes before the rest become `other`. */
  maxErrorClasses?: number;
  /** A queue-depth read that takes longer is abandoned for this scrape. */
  queueDepthTimeoutMs?: number;
}

const providers = ['kimi', 'glm', 'openai-compat'];
const outcomes = ['ok', 'error', 'timeout', 'cancelled'];
const httpMethods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

function seconds(ms: number): number {
  return Number.isFinite(ms) && ms > 0 ? ms / 1000 : 0;
}

function statusClass(status: number): string {
  return Number.isInteger(status) && status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : otherLabel;
}

export class PrometheusMetrics {
  /** This instance's own registry; scrape it with `metrics()`. */
  readonly registry = new Registry();

  private readonly labels: {
    model: AllowedLabel;
    tool: AllowedLabel;
    provider: AllowedLabel;
    outcome: AllowedLabel;
    method: AllowedLabel;
    errorClass: FirstSeenLabel;
    route: FirstSeenLabel;
    queue: FirstSeenLabel;
  };

  private readonly toolDuration: Histogram<'tool' | 'outcome'>;
  private readonly providerDuration: Histogram<'provider' | 'model' | 'outcome'>;
  private readonly timeToFirstToken: Histogram<'provider' | 'model'>;
  private readonly tokens: Counter<'provider' | 'model' | 'direction'>;
  private readonly cost: Counter<'provider' | 'model'>;
  private readonly errors: Counter<'kind' | 'error_class'>;
  private readonly httpDuration: Histogram<'method' | 'route' | 'status_class'>;

  private queueDepth: QueueDepthSource | undefined;
  private readonly queueDepthTimeoutMs: number;
  private lastQueueWarning = 0;

  constructor(private readonly options: PrometheusMetricsOptions) {
    const registers = [this.registry];
    this.queueDepth = options.queueDepth;
    this.queueDepthTimeoutMs = options.queueDepthTimeoutMs ?? 2_000;
    this.labels = {
      model: new AllowedLabel(options.models),
      tool: new AllowedLabel(toolNames),
      provider: new AllowedLabel(providers),
      outcome: new AllowedLabel(outcomes),
      method: new AllowedLabel(httpMethods),
      errorClass: new FirstSeenLabel(options.maxErrorClasses ?? 50),
      route: new FirstSeenLabel(100),
      queue: new FirstSeenLabel(50),
    };

    this.toolDuration = new Histogram({
      name: 'exai_tool_call_duration_seconds',
      help: 'MCP tool calls as their client saw them, by tool and outcome.',
      labelNames: ['tool', 'outcome'],
      buckets: toolBuckets,
      registers,
    });
    this.providerDuration = new Histogram({
      name: 'exai_provider_call_duration_seconds',
      help: 'Model calls (one per attempt that reached a provider), by provider, model and outcome.',
      labelNames: ['provider', 'model', 'outcome'],
      buckets: llmBuckets,
      registers,
    });
    this.timeToFirstToken = new Histogram({
      name: 'exai_provider_time_to_first_token_seconds',
      help: 'Time from sending a model call to its first streamed token.',
      labelNames: ['provider', 'model'],
      buckets: llmBuckets,
      registers,
    });
    this.tokens = new Counter({
      name: 'exai_tokens_total',
      help: 'Tokens of model calls as the providers reported them, by direction (input or output).',
      labelNames: ['provider', 'model', 'direction'],
      registers,
    });
    this.cost = new Counter({
      name: 'exai_cost_usd_total',
      help: "US dollars of model calls at the registry's list prices (models without a known price add nothing).",
      labelNames: ['provider', 'model'],
      registers,
    });
    this.errors = new Counter({
      name: 'exai_errors_total',
      help: 'Tool and model calls that did not succeed, by kind (tool or provider) and error class.',
      labelNames: ['kind', 'error_class'],
      registers,
    });
    this.httpDuration = new Histogram({
      name: 'exai_http_request_duration_seconds',
      help: 'HTTP requests, by method, route pattern and status class.',
      labelNames: ['method', 'route', 'status_class'],
      buckets: httpBuckets,
      registers,
    });

    const recorder = options.recorder;
    if (recorder !== undefined) {
      new Gauge({
        name: 'exai_metrics_buffered',
        help: 'Metric events held in memory, waiting to be written to the database.',
        registers,
        collect() {
          this.set(recorder.stats().buffered);
        },
      });
      const fromStats = (name: string, help: string, pick: (stats: RecorderStats) => number) =>
        new Counter({
          name,
          help,
          registers,
          collect() {
            this.reset();
            this.inc(pick(recorder.stats()));
          },
        });
      fromStats('exai_metrics_dropped_total', 'Metric events dropped: the buffer was full (the database down or too slow), or the process stopped while the database was unreachable.', (stats) => stats.dropped);
      fromStats('exai_metrics_rejected_total', 'Metric events the database refused as invalid, left out so the rest are written.', (stats) => stats.rejected);
      fromStats('exai_metrics_written_total', 'Metric events written to the database.', (stats) => stats.written);
      fromStats('exai_metrics_failed_flushes_total', 'Writes of metric events that failed (they are kept and retried).', (stats) => stats.failedFlushes);
    }

    const cache = options.cache;
    if (cache !== undefined) {
      const fromCounts = (name: string, help: string, pick: (counts: CacheReadCounts) => number) =>
        new Counter({
          name,
          help,
          registers,
          collect() {
            this.reset();
            this.inc(pick(cache.counts()));
          },
        });
      fromCounts('exai_cache_hits_total', 'Cache reads that found what they looked for.', (counts) => counts.hits);
      fromCounts('exai_cache_misses_total', 'Cache reads that went to the database instead (absent, being written, or the cache unreachable).', (counts) => counts.misses);
    }

    const queueGauge: Gauge<'queue'> = new Gauge({
      name: 'exai_job_queue_depth',
      help: 'Jobs waiting in each background job queue.',
      labelNames: ['queue'],
      registers,
      collect: async () => {
        const depths = await this.readQueueDepths();
        queueGauge.reset();
        for (const [queue, depth] of depths) queueGauge.set({ queue }, depth);
      },
    });

    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'exai_' });
  }

  /** Connects (or, with undefined, disconnects) the job queues' depths; read at each scrape. */
  setQueueDepthSource(source: QueueDepthSource | undefined): void {
    this.queueDepth = source;
  }

  /** The text exposition of every metric, as `GET /metrics` serves it. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  /** The Content-Type of `metrics()`. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Counts one recorded tool or provider call. Never throws. */
  observe(event: MetricEvent): void {
    const outcome = this.labels.outcome.value(event.outcome);
    if (event.kind === 'tool') {
      this.toolDuration.observe({ tool: this.labels.tool.value(event.tool), outcome }, seconds(event.durationMs));
      // Tokens and cost are counted from the provider calls: the tool event only sums them again.
    } else {
      const provider = this.labels.provider.value(event.provider);
      const model = this.labels.model.value(event.model);
      this.providerDuration.observe({ provider, model, outcome }, seconds(event.durationMs));
      if (event.timeToFirstTokenMs !== null) this.timeToFirstToken.observe({ provider, model }, seconds(event.timeToFirstTokenMs));
      if (event.inputTokens > 0) this.tokens.inc({ provider, model, direction: 'input' }, event.inputTokens);
      if (event.outputTokens > 0) this.tokens.inc({ provider, model, direction: 'output' }, event.outputTokens);
      if (event.costUsd !== null && Number.isFinite(event.costUsd) && event.costUsd > 0) this.cost.inc({ provider, model }, event.costUsd);
    }
    if (event.outcome !== 'ok') {
      const kind = event.kind === 'tool' ? 'tool' : 'provider';
      this.errors.inc({ kind, error_class: this.labels.errorClass.value(event.errorClass ?? event.outcome) });
    }
  }

  /** Counts one HTTP request (the server's onResponse hook). */
  observeHttp(request: HttpObservation): void {
    this.httpDuration.observe(
      {
        method: this.labels.method.value(request.method),
        route: request.route === undefined ? 'unmatched' : this.labels.route.value(request.route),
        status_class: statusClass(request.statusCode),
      },
      Number.isFinite(request.seconds) && request.seconds > 0 ? request.seconds : 0,
    );
  }

  /** The depth per (bounded) queue label; empty when there is no source or it failed. */
  private async readQueueDepths(): Promise<Map<string, number>> {
    const depths = new Map<string, number>();
    const source = this.queueDepth;
    if (source === undefined) return depths;
    let timer: NodeJS.Timeout | undefined;
    try {
      const read = await Promise.race([
        source(),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${this.queueDepthTimeoutMs} ms`)), this.queueDepthTimeoutMs);
        }),
      ]);
      for (const [name, depth] of Object.entries(read)) {
        if (typeof depth !== 'number' || !Number.isFinite(depth) || depth < 0) continue;
        const queue = this.labels.queue.value(name);
        depths.set(queue, (depths.get(queue) ?? 0) + depth);
      }
    } catch (error) {
      // A scrape without queue depths beats a failed scrape; one warning a minute is enough.
      const now = Date.now();
      if (now - this.lastQueueWarning > 60_000) {
        this.lastQueueWarning = now;
        this.options.logger.warn({ err: error }, 'job queue depths could not be read for /metrics; left out of this scrape');
      }
      depths.clear();
    } finally {
      clearTimeout(timer);
    }
    return depths;
  }
}
