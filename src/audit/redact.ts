/**
 * Scrubs credentials from text and structured values before they are audited:
 * exai API keys, JWTs, bearer values and `sk-…` style provider keys. (Logs are
 * redacted by path in src/logger.ts.)
 */
const patterns: RegExp[] = [
  /exai_[a-z0-9]{12}_[A-Za-z0-9_-]+/g,
  /\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g,
  /\b(Bearer|Basic)\s+[^\s"',;]+/gi,
  /\bsk-[A-Za-z0-9_-]{8,}/g,
];

function redactText(text: string): string {
  let result = text;
  for (const pattern of patterns) {
    result = result.replace(pattern, (match) => {
      if (match.startsWith('exai_')) return `${match.slice(0, 17)}_[redacted]`;
      const scheme = /^(Bearer|Basic)\s/i.exec(match);
      return scheme ? `${scheme[1]} [redacted]` : '[redacted]';
    });
  }
  return result;
}

export function redactSecrets<T>(value: T): T {
  if (typeof value === 'string') return redactText(value) as T;
  if (Array.isArray(value)) return value.map((item: unknown) => redactSecrets(item)) as T;
  if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, redactSecrets(item)])) as T;
  }
  return value;
}
