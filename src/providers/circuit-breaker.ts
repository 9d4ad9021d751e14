/**
 * Stops hammering a failing provider: after `failureThreshold` failures in a
 * row the circuit opens and calls are refused at once for `cooldownMs`; then
 * one trial call is let through (half-open), and its outcome closes the
 * circuit again or reopens it.
 */
export interface CircuitBreakerOptions {
  failureThreshold: number;
  cooldownMs: number;
}

export type CircuitState = 'closed' | 'open' | 'half-open';

export class CircuitBreaker {
  private failures = 0;
  private openedAt: number | undefined;
  private trialInFlight = false;

  constructor(
    private readonly options: CircuitBreakerOptions,
    private readonly now: () => number = Date.now,
  ) {}

  get state(): CircuitState {
    if (this.openedAt === undefined) return 'closed';
    return this.now() - this.openedAt >= this.options.cooldownMs ? 'half-open' : 'open';
  }

  /** Milliseconds until a trial call is allowed; 0 when calls may go now. */
  retryInMs(): number {
    if (this.openedAt === undefined) return 0;
    return Math.max(0, this.options.cooldownMs - (this.now() - this.openedAt));
  }

  /** Whether a call may go now; in half-open, only one trial at a time. */
  tryAcquire(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open' || this.trialInFlight) return false;
    this.trialInFlight = true;
    return true;
  }

  succeeded(): void {
    this.failures = 0;
    this.openedAt = undefined;
    this.trialInFlight = false;
  }

  failed(): void {
    this.trialInFlight = false;
    this.failures += 1;
    if (this.openedAt !== undefined || this.failures >= this.options.failureThreshold) this.openedAt = this.now();
  }

  /** A call that ended without saying anything about the provider's health (a bad request, a cancellation). */
  released(): void {
    this.trialInFlight = false;
  }
}
