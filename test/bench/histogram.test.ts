import { expect } from 'chai';
import {
  bucketOf,
  bucketUpperBound,
  HISTOGRAM_BUCKETS,
  HISTOGRAM_SLOTS,
  SharedHistogram,
  summarize,
} from '../../bench/histogram.ts';

describe('bench histogram', () => {
  it('puts every value in a bucket whose range holds it, at most 1/16 wide', () => {
    for (const value of [0, 1, 31, 32, 33, 47, 48, 1000, 65_535, 1_000_000, 2 ** 31 - 1]) {
      const bucket = bucketOf(value);
      expect(bucket).to.be.within(0, HISTOGRAM_BUCKETS - 1);
      expect(bucketUpperBound(bucket)).to.be.at.least(value);
      const lower = bucket === 0 ? 0 : bucketUpperBound(bucket - 1) + 1;
      expect(lower).to.be.at.most(value);
      expect(bucketUpperBound(bucket) - lower + 1).to.be.at.most(Math.max(1, value / 16 + 1));
    }
  });

  it('reads count, p50, p99 and max from shared counts', () => {
    const slots = new Int32Array(new SharedArrayBuffer(HISTOGRAM_SLOTS * 4 * 2));
    const histogram = new SharedHistogram(slots, HISTOGRAM_SLOTS);
    for (let ms = 1; ms <= 100; ms += 1) histogram.record(ms * 1000);
    const summary = summarize([histogram.snapshot()]);
    expect(summary.count).to.equal(100);
    expect(summary.p50Ms).to.be.within(50, 50 * 1.07);
    expect(summary.p99Ms).to.be.within(99, 100);
    expect(summary.maxMs).to.equal(100);
    // The first histogram's slots are untouched.
    expect(Array.from(slots.subarray(0, HISTOGRAM_SLOTS)).every((count) => count === 0)).to.equal(true);
  });
});
