/** Small pieces every provider client shares: waits that abort, deadlines, and messages that never quote a key. */

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
