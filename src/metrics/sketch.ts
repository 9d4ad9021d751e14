/**
 * Duration distributions as DDSketches (Datadog's sketches-js): every
 * quantile is within 1% of the true value, and sketches merge exactly, so an
 * hourly or daily p95 comes from the merged distribution, not from averaging
 * percentiles. Stored as the library's protobuf bytes.
 */
import { DDSketch } from '@datadog/sketches-js';

/** The relative accuracy every stored sketch is made with; sketches of one accuracy merge. */
export const sketchAccuracy = 0.01;

export class DurationSketch {
  private constructor(private readonly sketch: DDSketch) {}

  static empty(): DurationSketch {
    return new DurationSketch(new DDSketch({ relativeAccuracy: sketchAccuracy }));
  }

  static of(values: Iterable<number>): DurationSketch {
    const sketch = DurationSketch.empty();
    for (const value of values) sketch.add(value);
    return sketch;
  }

  static decode(bytes: Uint8Array): DurationSketch {
    return new DurationSketch(DDSketch.fromProto(bytes));
  }

  add(value: number): void {
    this.sketch.accept(Math.max(0, value));
  }

  merge(other: DurationSketch): void {
    this.sketch.merge(other.sketch);
  }

  get count(): number {
    return this.sketch.count;
  }

  /** The value at quantile `q` (0–1); 0 for an empty sketch. */
  quantile(q: number): number {
    return this.sketch.count === 0 ? 0 : this.sketch.getValueAtQuantile(q);
  }

  encode(): Buffer {
    return Buffer.from(this.sketch.toProto());
  }
}
