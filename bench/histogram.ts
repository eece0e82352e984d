// Log-linear latency histogram over a SharedArrayBuffer, updated with Atomics so every client thread of
// a driver process records into the same counts without messages (docs/performance.md, "How it
// measures"). Values are microseconds; buckets are exact below 32 µs, then 16 per power of two (~6%
// relative width, as HdrHistogram with 1 significant digit and a half).

/** Buckets for values up to 2^31 µs (~36 min): 32 exact, then 16 per power of two from 2^5 to 2^30. */
export const HISTOGRAM_BUCKETS = 32 + 26 * 16;
/** Int32 slots one histogram takes: the buckets, then the largest value seen. */
export const HISTOGRAM_SLOTS = HISTOGRAM_BUCKETS + 1;

export function bucketOf(micros: number): number {
  const value = Math.max(0, Math.min(0x7fff_ffff, Math.round(micros)));
  if (value < 32) return value;
  const exponent = 31 - Math.clz32(value); // >= 5
  const mantissa = value >>> (exponent - 4); // 16..31
  return 32 + (exponent - 5) * 16 + (mantissa - 16);
}

/** The largest value a bucket holds (quantiles report the upper edge, so they never flatter). */
export function bucketUpperBound(bucket: number): number {
  if (bucket < 32) return bucket;
  const exponent = 5 + Math.floor((bucket - 32) / 16);
  const mantissa = 16 + ((bucket - 32) % 16);
  return (mantissa + 1) * 2 ** (exponent - 4) - 1;
}

/** A view of one histogram inside a shared Int32Array, starting at `offset`. */
export class SharedHistogram {
  constructor(
    private readonly slots: Int32Array,
    private readonly offset: number,
  ) {}

  record(micros: number): void {
    Atomics.add(this.slots, this.offset + bucketOf(micros), 1);
    const maxSlot = this.offset + HISTOGRAM_BUCKETS;
    const value = Math.max(0, Math.min(0x7fff_ffff, Math.round(micros)));
    let seen = Atomics.load(this.slots, maxSlot);
    while (value > seen) {
      const previous = Atomics.compareExchange(this.slots, maxSlot, seen, value);
      if (previous === seen) break;
      seen = previous;
    }
  }

  /** A plain copy of the counts (for merging across driver processes). */
  snapshot(): number[] {
    return Array.from(this.slots.subarray(this.offset, this.offset + HISTOGRAM_SLOTS));
  }
}

export interface HistogramSummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Adds snapshots (same layout) and reads count, p50, p99 and max from the sum, in milliseconds. */
export function summarize(snapshots: readonly number[][]): HistogramSummary {
  const counts = new Array<number>(HISTOGRAM_BUCKETS).fill(0);
  let max = 0;
  for (const snapshot of snapshots) {
    for (let bucket = 0; bucket < HISTOGRAM_BUCKETS; bucket += 1) counts[bucket]! += snapshot[bucket] ?? 0;
    max = Math.max(max, snapshot[HISTOGRAM_BUCKETS] ?? 0);
  }
  const count = counts.reduce((sum, value) => sum + value, 0);
  const quantile = (q: number): number => {
    if (count === 0) return 0;
    const target = Math.ceil(count * q);
    let seen = 0;
    for (let bucket = 0; bucket < HISTOGRAM_BUCKETS; bucket += 1) {
      seen += counts[bucket]!;
      if (seen >= target) return Math.min(bucketUpperBound(bucket), max);
    }
    return max;
  };
  const ms = (micros: number) => Math.round(micros / 100) / 10;
  return { count, p50Ms: ms(quantile(0.5)), p99Ms: ms(quantile(0.99)), maxMs: ms(max) };
}
