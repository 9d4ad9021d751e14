/** Small pieces every provider client shares: waits that abort, deadlines, and messages that never quote a key. */
import { isRetryable, retryDelayMs, type RetryPolicy } from './retry.js';

/** The prefix of a provider's settings: KIMI_*, GLM_*, OPENAI_COMPAT_*. */
export function settingPrefix(provider: string): string {
  return provider.toUpperCase().replace(/[^A-Z0-9]+/g, '_');
}

/** Provider text without the API key: some providers quote the key they refused. */
export function redact(text: string, apiKey: string | undefined): string {
  return apiKey === undefined || apiKey.length < 8 ? text : text.replaceAll(apiKey, '[redacted]');
}

/** Host and port of the base URL, without any credentials in it. */
export function hostOf(baseUrl: string): string {
  try {
    return new URL(baseUrl).host;
  } catch {
    return 'its base URL';
  }
}

/** Waits, unless the call is aborted first. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** The abort reason of a call that ran out of time, told apart from a caller's cancel. */
export class TimeoutReason extends Error {}

/**
 * Runs `attempt` under one deadline for all its tries (`timeoutMs`), retrying
 * transient failures with the policy's backoff, stopping at once when the
 * caller aborts. A failure that ends it becomes `failure(error, attempts, signal)`;
 * the signal's reason is a TimeoutReason when the deadline passed.
 */
export async function retryWithinDeadline<T>(
  options: { timeoutMs: number; signal: AbortSignal | undefined; retry: RetryPolicy },
  attempt: (signal: AbortSignal) => Promise<T>,
  failure: (error: unknown, attempts: number, signal: AbortSignal) => Error,
): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new TimeoutReason()), options.timeoutMs);
  const callerSignal = options.signal;
  const onCallerAbort = () => controller.abort(callerSignal?.reason);
  if (callerSignal?.aborted) onCallerAbort();
  else callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
  let attempts = 0;
  try {
    for (;;) {
      attempts += 1;
      try {
        if (controller.signal.aborted) throw controller.signal.reason;
        return await attempt(controller.signal);
      } catch (error) {
        if (controller.signal.aborted || attempts >= options.retry.maxAttempts || !isRetryable(error)) throw error;
        await pause(retryDelayMs(attempts, error, options.retry), controller.signal);
      }
    }
  } catch (error) {
    throw failure(error, attempts, controller.signal);
  } finally {
    clearTimeout(timer);
    callerSignal?.removeEventListener('abort', onCallerAbort);
  }
}
