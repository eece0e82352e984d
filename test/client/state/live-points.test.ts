// Issue 14, item 15: the browser keeps at most MAX_POINTS_PER_SERIES live points per series (the newest),
// however fast a metric is fed, instead of every point of the 15-minute window.
import { expect } from 'chai';
import type { MetricEnvelope } from '../../../shared/events.ts';
import {
  initialState,
  MAX_POINTS_PER_SERIES,
  reduce,
  type DashboardState,
} from '../../../client/state/dashboard.ts';

const T0 = 1_700_000_000_000;

/** Point `seq` of a series fed at 100 points/s. */
function point(seq: number): MetricEnvelope {
  return {
    id: `${T0 + seq * 10}-0`,
    board: 'main',
    type: 'metric',
    name: 'api.rps',
    value: seq,
    ts: T0 + seq * 10,
  };
}

function loaded(points: MetricEnvelope[] = []): DashboardState {
  return reduce(initialState(T0), {
    type: 'snapshotLoaded',
    now: T0,
    snapshot: {
      board: 'main',
      statuses: [],
      metrics: points.length > 0 ? [{ name: 'api.rps', points }] : [],
      events: [],
      lastEventId: points.at(-1)?.id ?? '0-0',
      serverTime: points.at(-1)?.ts ?? T0,
    },
  });
}

describe('live points per series', function () {
  it('keeps the newest MAX_POINTS_PER_SERIES points of a series fed at 100 points/s for 100 s', function () {
    let state = loaded();
    const total = 10_000;
    for (let start = 1; start <= total; start += 100) {
      const events = Array.from({ length: 100 }, (_, index) => point(start + index));
      state = reduce(state, { type: 'eventsReceived', now: T0 + start * 10, events });
    }
    const series = state.series.get('api.rps')!;
    expect(total).to.be.greaterThan(MAX_POINTS_PER_SERIES);
    expect(series.ys).to.have.length(MAX_POINTS_PER_SERIES);
    expect(series.xs).to.have.length(MAX_POINTS_PER_SERIES);
    expect(series.ys[0]).to.equal(total - MAX_POINTS_PER_SERIES + 1);
    expect(series.ys.at(-1)).to.equal(total);
    expect(series.xs.every((x, index) => index === 0 || x >= series.xs[index - 1]!)).to.equal(true);
  });

  it('caps a snapshot series the same way', function () {
    const points = Array.from({ length: MAX_POINTS_PER_SERIES + 500 }, (_, index) => point(index + 1));
    const series = loaded(points).series.get('api.rps')!;
    expect(series.ys).to.have.length(MAX_POINTS_PER_SERIES);
    expect(series.ys.at(-1)).to.equal(MAX_POINTS_PER_SERIES + 500);
  });
});
