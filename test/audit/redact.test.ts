import { describe, expect, it } from 'vitest';
import { redactSecrets } from '../../src/audit/redact.js';
import { generateKey, hashMatches, keyPrefix } from '../../src/auth/api-key-format.js';

describe('redactSecrets', () => {
  const key = generateKey().key;
  const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLWJ5dGVz';

  it('keeps an API key\u2019s prefix and removes its secret', () => {
    const text = redactSecrets(`refused ${key} from 10.0.0.1`);
    expect(text).not.toContain(key.slice(18));
    expect(text).toContain(key.slice(0, 17));
    expect(text).toContain('from 10.0.0.1');
  });

  it('removes JWTs, bearer values and sk- keys inside nested values', () => {
    const scrubbed = redactSecrets({ header: `Bearer ${jwt}`, list: [jwt, 'sk-abcdefghijklmnop'], note: 'plain words', n: 3 });
    const text = JSON.stringify(scrubbed);
    expect(text).not.toContain(jwt);
    expect(text).not.toContain('sk-abcdefghijklmnop');
    expect(scrubbed.note).toBe('plain words');
    expect(scrubbed.n).toBe(3);
  });
});

describe('API key format', () => {
  it('makes distinct keys whose prefix is found and whose hash matches only the same key', () => {
    const first = generateKey();
    const second = generateKey();
    expect(first.key).toMatch(/^exai_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
    expect(first.key).not.toBe(second.key);
    expect(keyPrefix(first.key)).toBe(first.prefix);
    expect(hashMatches(first.key, first.hash)).toBe(true);
    expect(hashMatches(second.key, first.hash)).toBe(false);
    expect(keyPrefix(`${first.key}x`)).toBeUndefined();
    expect(keyPrefix('exai_short_x')).toBeUndefined();
  });
});
