/**
 * Keeps recording off the hot path: `record` only appends to a bounded
 * in-memory buffer, and a flush writes the buffer in batches, when a batch is
 * full or every `flushIntervalMs`, and on close. When the buffer is full (the
 * database is down or slower than the calls), new events are dropped and
 * counted instead of making calls wait. A crash loses what was not yet
 * flushed: normally the last flush interval; while the database is
 * unreachable, what the buffer holds (flushes then back off, up to 30 s).
 */
import type { Logger } from '../logger.js';
import type { MetricEvent } from './event.js';

export interface MetricsSink {
  /** Stores the events; resolves to how many it refused as invalid (they are not retried). */
  write(events: MetricEvent[]): Promise<number>;
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
  /** Not recorded: the buffer was full, or the process closed while the database was unreachable. */
  dropped: number;
  /** Refused by the database as invalid. */
  rejected: number;
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
  /** After a failed write, flushes wait until then (doubling up to 30 s), so a database in trouble is not hammered. */
  private retryAt = 0;
  private backoffMs = 0;
  private readonly counts = { written: 0, dropped: 0, rejected: 0, failedFlushes: 0 };

  constructor(private readonly options: MetricsRecorderOptions) {
    this.maxBuffered = options.maxBuffered ?? 10_000;
    this.batchSize = options.batchSize ?? 500;
    this.timer = setInterval(() => {
      if (Date.now() >= this.retryAt) void this.flush();
    }, options.flushIntervalMs ?? 1_000);
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
    // A full batch goes at once, alone: what arrives meanwhile waits for the next full batch or the timer,
    // so back-to-back calls are written in full batches rather than many small transactions.
    if (this.buffer.length >= this.batchSize && this.flushing === undefined && Date.now() >= this.retryAt) void this.flush(false);
  }

  /** Listeners see every event as it is recorded (Prometheus counters, alerts). */
  onEvent(listener: MetricListener): void {
    this.listeners.push(listener);
  }

  stats(): RecorderStats {
    return { buffered: this.buffer.length, ...this.counts };
  }

  /**
   * Writes what is buffered: everything (the timer, close, a caller who wants
   * it written now), or only full batches. One flush runs at a time; a second
   * caller waits for it.
   */
  flush(everything = true): Promise<void> {
    this.flushing ??= this.drain(everything).finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  /** Stops recording and writes what is left; what cannot be written now is counted as dropped. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.flushing;
    await this.flush();
    this.counts.dropped += this.buffer.length;
    this.buffer = [];
  }

  private async drain(everything: boolean): Promise<void> {
    // "Everything" is what was buffered when the flush began: calls that arrive while it writes
    // (the database answers over the network, so they do) wait for a full batch or the next tick
    // instead of trickling out in many small transactions.
    let owed = everything ? this.buffer.length : 0;
    while (owed > 0 || this.buffer.length >= this.batchSize) {
      const batch = this.buffer.slice(0, this.batchSize);
      owed = Math.max(0, owed - batch.length);
      let rejected: number;
      try {
        rejected = await this.options.sink.write(batch);
      } catch (error) {
        this.counts.failedFlushes += 1;
        this.backoffMs = Math.min(30_000, Math.max(1_000, this.backoffMs * 2));
        this.retryAt = Date.now() + this.backoffMs;
        // Kept for the next flush; the buffer's bound still holds because record() checks it.
        const now = Date.now();
        if (now - this.lastFailureLog > 60_000) {
          this.lastFailureLog = now;
          this.options.logger.warn({ err: error, buffered: this.buffer.length }, 'metrics could not be written; kept in memory and retried');
        }
        return;
      }
      this.backoffMs = 0;
      this.retryAt = 0;
      this.buffer = this.buffer.slice(batch.length);
      this.counts.written += batch.length - rejected;
      this.counts.rejected += rejected;
      if (rejected > 0) this.options.logger.warn({ rejected }, 'metric events refused by the database as invalid were dropped');
    }
  }
}
