/** The duration sketch: the library's quantiles, exact merges, a lossless compact encoding, ≤1% error. */
import { DDSketch } from '@datadog/sketches-js';
import { describe, expect, it } from 'vitest';
import { DurationSketch, sketchAccuracy } from '../../src/metrics/sketch.js';
import { exactQuantile, seededRandom } from '../support/metric-events.js';


const quantiles = [0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1];

const distributions: Record<string, (r: () => number) => number> = {
  'log-uniform 1 ms – 3 min': (r) => Math.exp(r() * Math.log(180_000)),
  'bimodal fast/slow': (r) => (r() < 0.8 ? 20 + r() * 30 : 8_000 + r() * 40_000),
  'narrow around 250 ms': (r) => 245 + r() * 10,
  'sub-millisecond': (r) => 0.001 + r() * 0.5,
};

describe('duration sketch', () => {
  for (const [name, draw] of Object.entries(distributions)) {
    it(`stays within 1% of the exact percentile_disc and reads the library's bins: ${name}`, () => {
      const r = seededRandom(name.length * 7919);
      const values = Array.from({ length: 20_000 }, () => draw(r));
      const ours = DurationSketch.of(values);
      const library = new DDSketch({ relativeAccuracy: sketchAccuracy });
      for (const value of values) library.accept(value);
      const n = values.length;
      for (const q of quantiles) {
        // The same bin as the library's rule at the rank percentile_disc picks.
        const rank = Math.max(0, Math.ceil(q * n) - 1);
        expect(ours.quantile(q)).toBe(library.getValueAtQuantile(rank / (n - 1)));
        const exact = exactQuantile(values, q);
        expect(Math.abs(ours.quantile(q) - exact) / exact, `q=${q}`).toBeLessThanOrEqual(0.01);
      }
    });
  }

  it('reads small samples as percentile_disc does', () => {
    const two = DurationSketch.of([2.6, 7.9]);
    expect(two.quantile(0.5)).toBeCloseTo(2.6, 1);
    expect(two.quantile(0.95)).toBeCloseTo(7.9, 1);
    const five = DurationSketch.of([1, 2, 3, 4, 19.9]);
    expect(five.quantile(0.99)).toBeCloseTo(19.9, 0);
    expect(five.quantile(0.5)).toBeCloseTo(3, 1);
  });

  it('merges exactly: the merge of parts equals the sketch of the whole, in any order', () => {
    const r = seededRandom(42);
    const parts = Array.from({ length: 24 }, (_, hour) => Array.from({ length: 500 }, () => (hour % 3 === 0 ? 5_000 : 50) * (0.5 + r())));
    const whole = DurationSketch.of(parts.flat());
    const forward = DurationSketch.empty();
    for (const part of parts) forward.merge(DurationSketch.of(part));
    const backward = DurationSketch.empty();
    for (const part of [...parts].reverse()) backward.merge(DurationSketch.decode(DurationSketch.of(part).encode()));
    for (const q of quantiles) {
      expect(forward.quantile(q)).toBe(whole.quantile(q));
      expect(backward.quantile(q)).toBe(whole.quantile(q));
    }
    expect(forward.encode()).toEqual(whole.encode());
  });

  it('round-trips through its encoding, zeros and extreme values included', () => {
    const sketch = DurationSketch.of([0, 0, -3, 1e-12, 0.002, 1, 1e6, 1e12, 3_000_000_000]);
    for (let i = 0; i < 3_000; i += 1) sketch.add(123.4);
    const again = DurationSketch.decode(sketch.encode());
    expect(again.count).toBe(sketch.count);
    for (const q of quantiles) expect(again.quantile(q)).toBe(sketch.quantile(q));
    expect(sketch.quantile(0)).toBe(0);
  });

  it('merges a concatenation of encodings as the database hands a group over', () => {
    const parts = [[1, 2, 3], [500, 600], [], [0, 70_000]].map((values) => DurationSketch.of(values));
    const one = DurationSketch.empty();
    one.mergeEncoded(Buffer.concat(parts.map((part) => part.encode())));
    const expected = DurationSketch.of([1, 2, 3, 500, 600, 0, 70_000]);
    expect(one.encode()).toEqual(expected.encode());
    expect(() => DurationSketch.empty().mergeEncoded(Buffer.concat([parts[0]!.encode(), Uint8Array.from([7])]))).toThrow(/format 7/);
  });

  it('keeps counts past 2^31 exact', () => {
    const sketch = DurationSketch.empty();
    sketch.add(10, 3_000_000_000);
    sketch.add(20, 5);
    expect(DurationSketch.decode(sketch.encode()).count).toBe(3_000_000_005);
  });

  it('answers 0 when empty and refuses bytes that are not a sketch', () => {
    expect(DurationSketch.empty().quantile(0.95)).toBe(0);
    expect(DurationSketch.decode(DurationSketch.empty().encode()).count).toBe(0);
    expect(() => DurationSketch.decode(Uint8Array.from([9, 0]))).toThrow(/format/);
    expect(() => DurationSketch.decode(Uint8Array.from([1, 0, 2, 5]))).toThrow(/ends too early/);
  });
});
