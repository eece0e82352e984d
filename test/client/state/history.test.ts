import { expect } from 'chai';
import type { MetricEnvelope } from '../../../shared/events.ts';
import type { HistoryResponse } from '../../../shared/history.ts';
import { initialState, reduce, type Series } from '../../../client/state/dashboard.ts';
import {
  annotates,
  chartData,
  foldSeries,
  historyFrom,
  mergeAnnotations,
  rangeFromSearch,
  trimHistory,
} from '../../../client/state/history.ts';

const MINUTE = 60_000;
const T0 = 1_800_000_000_000 - (1_800_000_000_000 % MINUTE);

function point(id: string, ts: number, value: number): MetricEnvelope {
  return { type: 'metric', board: 'main', id, ts, name: 'cpu', value };
}

/** The series the dashboard's reducer builds from a snapshot of `points` plus `live` from the stream. */
function seriesOf(points: MetricEnvelope[], live: MetricEnvelope[] = []): Series {
  const lastEventId = points.at(-1)?.id ?? '0-0';
  let state = reduce(initialState(T0 + 10 * MINUTE), {
    type: 'snapshotLoaded',
    snapshot: {
      board: 'main',
      statuses: [],
      metrics: [{ name: 'cpu', points }],
      events: [],
      lastEventId,
      serverTime: T0 + 10 * MINUTE,
    },
    now: T0 + 10 * MINUTE,
  });
  state = reduce(state, { type: 'eventsReceived', events: live, now: T0 + 10 * MINUTE });
  const series = state.series.get('cpu');
  if (!series) throw new Error('no series');
  return series;
}

function answer(lastEventId: string, rows: [number, number, number][]): HistoryResponse {
  return {
    board: 'main',
    metric: 'cpu',
    range: '1h',
    bucketMs: MINUTE,
    serverTime: T0 + 10 * MINUTE,
    lastEventId,
    buckets: {
      start: rows.map((row) => row[0]),
      min: rows.map((row) => row[1]),
      max: rows.map((row) => row[1]),
      sum: rows.map((row) => row[1] * row[2]),
      count: rows.map((row) => row[2]),
      last: rows.map((row) => row[1]),
    },
    annotations: [],
  };
}

describe('chart history: buckets joined with live points', function () {
  it('folds only the points after the answer’s id, once, into their buckets', function () {
    const points = [
      point(`${T0 + 5}-0`, T0 + 5 * MINUTE + 1000, 4),
      point(`${T0 + 6}-0`, T0 + 5 * MINUTE + 2000, 6),
    ];
    const live = [point(`${T0 + 7}-0`, T0 + 5 * MINUTE + 3000, 8), point(`${T0 + 8}-0`, T0 + 7 * MINUTE, 1)];
    // The answer was read after the first snapshot point: it holds that one (and older buckets).
    const history = historyFrom(
      answer(`${T0 + 5}-0`, [
        [T0, 2, 3],
        [T0 + 5 * MINUTE, 4, 1],
      ]),
    );
    expect(foldSeries(history, seriesOf(points, live))).to.equal(true);
    expect(history.start).to.deep.equal([T0, T0 + 5 * MINUTE, T0 + 7 * MINUTE]);
    expect(history.count).to.deep.equal([3, 3, 1]);
    expect(history.sum).to.deep.equal([6, 18, 1]);
    expect(history.max).to.deep.equal([2, 8, 1]);
    // The same series again, or a new snapshot holding the same points: nothing is counted twice.
    expect(foldSeries(history, seriesOf([...points, ...live]))).to.equal(false);
    expect(history.count).to.deep.equal([3, 3, 1]);
    expect(chartData(history)).to.deep.equal([
      [T0 / 1000, (T0 + 5 * MINUTE) / 1000, (T0 + 7 * MINUTE) / 1000],
      [2, 6, 1],
    ]);
    trimHistory(history, T0 + 6 * MINUTE);
    expect(history.start).to.deep.equal([T0 + 7 * MINUTE]);
  });

  it('puts annotations on the charts of their service: the metric named so, or named under it', function () {
    expect(annotates({ service: undefined }, 'anything')).to.equal(true);
    for (const metric of ['api', 'api.latency', 'api:errors', 'api/v2/rps']) {
      expect(annotates({ service: 'api' }, metric), metric).to.equal(true);
    }
    for (const metric of ['apigw.latency', 'api-gw.latency', 'db.api', 'ap']) {
      expect(annotates({ service: 'api' }, metric), metric).to.equal(false);
    }
  });

  it('merges annotations by id, sorted by ts, leaving out events not marked', function () {
    const event = (id: string, ts: number, annotate?: boolean) => ({
      type: 'event' as const,
      board: 'main',
      id,
      ts,
      level: 'info' as const,
      title: id,
      ...(annotate === undefined ? {} : { annotate }),
    });
    const merged = mergeAnnotations(
      [event('2-0', 20, true), event('1-0', 30, true)],
      [event('2-0', 20, true), event('3-0', 10), event('4-0', 5, false)],
    );
    expect(merged.map((item) => item.id)).to.deep.equal(['2-0', '1-0']);
  });

  it('reads the range from the query, defaulting to 15 minutes', function () {
    expect(rangeFromSearch('?range=7d&q=api')).to.equal('7d');
    expect(rangeFromSearch('?range=2d')).to.equal('15m');
    expect(rangeFromSearch('')).to.equal('15m');
  });
});
