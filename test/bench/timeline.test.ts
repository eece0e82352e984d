// The bench's per-event spread: the first, mean and last latency of every event, summed over the driver
// processes, so a run shows whether deliveries start late, spread wide, or fall further behind.
import { expect } from 'chai';
import { EventTimeline, medianOf, mergeTimelines } from '../../bench/timeline.ts';

describe('bench event timeline', () => {
  it('keeps the first, mean and last latency of each event across driver processes', () => {
    const a = EventTimeline.create(3);
    const b = EventTimeline.create(3);
    a.record(1, 120.4);
    a.record(1, 480);
    b.record(1, 60);
    b.record(2, 0);
    a.record(2, 30);

    const spread = mergeTimelines([a.snapshot(), b.snapshot()], 1, 3);

    expect(spread.count).to.deep.equal([3, 2, 0]);
    expect(spread.firstMs).to.deep.equal([60, 0, null]);
    expect(spread.meanMs).to.deep.equal([Math.round((120 + 480 + 60) / 3), 15, null]);
    expect(spread.lastMs).to.deep.equal([480, 30, null]);
  });

  it('ignores events outside its range instead of writing past them', () => {
    const timeline = EventTimeline.create(2);
    timeline.record(3, 10);
    timeline.record(-1, 10);
    expect(timeline.snapshot().every((slot) => slot === 0)).to.equal(true);
  });

  it('shares its slots with a thread that maps the same buffer', () => {
    const timeline = EventTimeline.create(1);
    const view = new EventTimeline(new Int32Array(timeline.slots.buffer));
    view.record(1, 250);
    expect(mergeTimelines([timeline.snapshot()], 1, 1).lastMs).to.deep.equal([250]);
  });

  it('takes the median of the known values', () => {
    expect(medianOf([3, null, 1, 2])).to.equal(2);
    expect(medianOf([4, 1, 2, 3])).to.equal(3);
    expect(medianOf([null])).to.equal(null);
  });
});
