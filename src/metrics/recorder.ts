/**
 * Keeps recording off the hot path: `record` only appends to a bounded
 * in-memory buffer, and a flush writes the buffer in batches, when a batch is
 * full or every `flushIntervalMs`, and on close. When the buffer is full (the
 * database is down or slower than the calls), new events are dropped and
 * counted instead of making calls wait. A crash loses what was not yet
 * flushed: at most one flush interval of calls.
 */
import type { Logger } from '../logger.js';
import type { MetricEvent } from './event.js';

export interface MetricsSink {
  write(events: MetricEvent[]): Promise<void>;
}

export interface MetricsRecorderOptions {
  sink: MetricsSink;
  logger: Logger;
  /** Events held at most; beyond it new events are dropped. */
  maxBuffered?: number;
  /** Events per write, and the count that starts a flush before the interval ends. */
  batchSize?: number;
  flushIntervalMs?: number;
}

export interface RecorderStats {
  buffered: number;
  written: number;
  dropped: number;
  failedFlushes: number;
}

export type MetricListener = (event: MetricEvent) => void;

export class MetricsRecorder {
  private buffer: MetricEvent[] = [];
  private readonly listeners: MetricListener[] = [];
  private readonly maxBuffered: number;
  private readonly batchSize: number;
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> | undefined;
  private closed = false;
  private lastFailureLog = 0;
  private readonly counts = { written: 0, dropped: 0, failedFlushes: 0 };

  constructor(private readonly options: MetricsRecorderOptions) {
    this.maxBuffered = options.maxBuffered ?? 10_000;
    this.batchSize = options.batchSize ?? 500;
    this.timer = setInterval(() => void this.flush(), options.flushIntervalMs ?? 1_000);
    // The timer must not keep a finished process alive; close() flushes what is left.
    this.timer.unref();
  }

  /** Never waits and never throws: the call being measured must not notice. */
  record(event: MetricEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.options.logger.warn({ err: error }, 'a metrics listener failed');
      }
    }
    if (this.closed || this.buffer.length >= this.maxBuffered) {
      this.counts.dropped += 1;
      return;
    }
    this.buffer.push(event);
    if (this.buffer.length >= this.batchSize && this.flushing === undefined) void this.flush();
  }

  /** Listeners see every event as it is recorded (Prometheus counters, alerts). */
  onEvent(listener: MetricListener): void {
    this.listeners.push(listener);
  }

  stats(): RecorderStats {
    return { buffered: this.buffer.length, ...this.counts };
  }

  /** Writes everything buffered now; one flush runs at a time, and a second caller waits for it. */
  flush(): Promise<void> {
    this.flushing ??= this.drain().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  /** Stops recording and writes what is left. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.flushing;
    await this.flush();
  }

  private async drain(): Promise<void> {
    while (this.buffer.length > 0) {
      const batch = this.buffer.slice(0, this.batchSize);
      try {
        await this.options.sink.write(batch);
      } catch (error) {
        this.counts.failedFlushes += 1;
        // Kept for the next flush; the buffer's bound still holds because record() checks it.
        const now = Date.now();
        if (now - this.lastFailureLog > 60_000) {
          this.lastFailureLog = now;
          this.options.logger.warn({ err: error, buffered: this.buffer.length }, 'metrics could not be written; kept in memory and retried');
        }
        return;
      }
      this.buffer = this.buffer.slice(batch.length);
      this.counts.written += batch.length;
    }
  }
}
