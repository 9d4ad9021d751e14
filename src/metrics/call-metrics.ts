/**
 * Turns what happens during requests into metric events: each provider call,
 * and each tool call as its client saw it. A tool call collects its provider
 * calls and records them when it ends, so they carry the conversation the
 * call created or continued.
 */
import type { CallRecord, CallRecorder, MemoryCallRecorder } from '../providers/call-recorder.js';
import { isUuid } from '../db/session.js';
import type { MetricEvent, MetricOutcome } from './event.js';
import { performanceParamHash, type PerformanceParams } from './param-hash.js';
import type { MetricsRecorder } from './recorder.js';

/** US dollars for a call of `model`, or null when its price is unknown. */
export type CostOf = (model: string, inputTokens: number, outputTokens: number) => number | null;
/** The registry's name for a model name or alias, or null when it names no known model (`auto`, a typo). */
export type CanonicalModel = (nameOrAlias: string) => string | null;

export interface ToolCallEnd {
  outcome: MetricOutcome;
  errorClass: string | null;
  /** The thread the call created or continued, when there is one. */
  conversationId: string | null;
}

export interface ToolCallStart {
  tool: string;
  userId: string;
  apiKeyId: string | null;
  /** Settings from the tool's arguments; the model is the one that answered, when one did. */
  params: Omit<PerformanceParams, 'model'> & { model: string | null };
}

function startOf(call: CallRecord): number {
  return Date.parse(call.at) - call.durationMs;
}

export class CallMetrics implements CallRecorder {
  constructor(
    private readonly recorder: MetricsRecorder,
    private readonly costOf: CostOf,
    private readonly recent: MemoryCallRecorder,
    /** @internal */ readonly canonicalModel: CanonicalModel,
  ) {}

  /** A provider call made outside any tool call. */
  record(call: CallRecord): void {
    this.recent.record(call);
    this.recorder.record(this.providerEvent(call, null));
  }

  startToolCall(start: ToolCallStart): ToolCallMetrics {
    return new ToolCallMetrics(this, start);
  }

  /** @internal */
  providerEvent(call: CallRecord, conversationId: string | null): MetricEvent {
    const input = call.inputTokens ?? 0;
    const output = call.outputTokens ?? 0;
    return {
      kind: 'provider',
      at: new Date(startOf(call)),
      tool: call.tool,
      model: call.model,
      provider: call.provider,
      paramHash: performanceParamHash(call.params),
      durationMs: call.durationMs,
      timeToFirstTokenMs: call.timeToFirstTokenMs,
      inputTokens: input,
      outputTokens: output,
      costUsd: this.costOf(call.model, input, output),
      outcome: call.outcome,
      errorClass: call.errorClass,
      userId: call.userId,
      apiKeyId: call.apiKeyId,
      conversationId,
    };
  }

  /** @internal */
  emit(calls: CallRecord[], event: MetricEvent | undefined, conversationId: string | null): void {
    for (const call of calls) {
      this.recent.record(call);
      this.recorder.record(this.providerEvent(call, conversationId));
    }
    if (event !== undefined) this.recorder.record(event);
  }
}

/** One tool call's measurements; a CallRecorder for the provider calls it makes. */
export class ToolCallMetrics implements CallRecorder {
  private readonly calls: CallRecord[] = [];
  private readonly startedAt = Date.now();
  private readonly started = performance.now();
  private finished = false;

  constructor(
    private readonly metrics: CallMetrics,
    private readonly start: ToolCallStart,
  ) {}

  record(call: CallRecord): void {
    if (this.finished) this.metrics.emit([call], undefined, null);
    else this.calls.push(call);
  }

  finish(end: ToolCallEnd): void {
    if (this.finished) return;
    this.finished = true;
    const durationMs = performance.now() - this.started;
    const conversationId = end.conversationId !== null && isUuid(end.conversationId) ? end.conversationId.toLowerCase() : null;
    const answered = [...this.calls].reverse().find((call) => call.outcome === 'ok') ?? this.calls.at(-1);
    const first = this.calls.find((call) => call.timeToFirstTokenMs !== null);
    let input = 0;
    let output = 0;
    let cost: number | null = this.calls.length === 0 ? null : 0;
    for (const call of this.calls) {
      const event = this.metrics.providerEvent(call, conversationId);
      input += event.inputTokens;
      output += event.outputTokens;
      cost = cost === null || event.costUsd === null ? null : cost + event.costUsd;
    }
    // A model that answered is a registry name; one only asked for is whatever the client typed.
    const asked = this.start.params.model === null ? null : this.metrics.canonicalModel(this.start.params.model);
    const model = answered?.model ?? asked;
    this.metrics.emit(this.calls, {
      kind: 'tool',
      at: new Date(this.startedAt),
      tool: this.start.tool,
      model,
      provider: answered?.provider ?? null,
      paramHash: performanceParamHash({ ...this.start.params, model }),
      durationMs,
      timeToFirstTokenMs: first === undefined ? null : Math.max(0, startOf(first) + first.timeToFirstTokenMs! - this.startedAt),
      inputTokens: input,
      outputTokens: output,
      costUsd: cost,
      outcome: end.outcome,
      errorClass: end.errorClass,
      userId: this.start.userId,
      apiKeyId: this.start.apiKeyId,
      conversationId,
    }, conversationId);
  }
}
