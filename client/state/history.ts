// Long-range charts (docs/dashboard.md, "Ranges and history"): a metric's buckets from `GET /api/history`
// extended by the live points after the answer's `lastEventId`, and the annotations a chart shows. Pure
// functions over plain data, so the seam (no gap, no point counted twice) is tested without a browser.
import { compareStreamIds, type LogEventEnvelope } from '../../shared/events.ts';
import {
  CHART_RANGES,
  DEFAULT_CHART_RANGE,
  type BucketColumns,
  type ChartRange,
  type HistoryResponse,
} from '../../shared/history.ts';
import type { Series } from './dashboard.ts';

/** A chart's buckets: the answer's, plus every live point folded in since (kept sorted by start). */
export interface BucketHistory {
  readonly bucketMs: number;
  readonly start: number[];
  readonly min: number[];
  readonly max: number[];
  readonly sum: number[];
  readonly count: number[];
  readonly last: number[];
  /** Ts of each bucket's last value (live points only; the answer's buckets start at their start). */
  readonly lastTs: number[];
  /** Every event up to this id is in the buckets; later points are folded in once, in id order. */
  foldedId: string;
}

export function historyFrom(
  answer: Pick<HistoryResponse, 'bucketMs' | 'buckets' | 'lastEventId'>,
): BucketHistory {
  const columns: BucketColumns = answer.buckets;
  return {
    bucketMs: answer.bucketMs,
    start: [...columns.start],
    min: [...columns.min],
    max: [...columns.max],
    sum: [...columns.sum],
    count: [...columns.count],
    last: [...columns.last],
    lastTs: [...columns.start],
    foldedId: answer.lastEventId,
  };
}

/** Index of the first bucket starting at or after `start`. */
function lowerBound(starts: readonly number[], start: number): number {
  let low = 0;
  let high = starts.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((starts[middle] ?? 0) < start) low = middle + 1;
    else high = middle;
  }
  return low;
}

function foldPoint(history: BucketHistory, ts: number, value: number): void {
  const start = Math.floor(ts / history.bucketMs) * history.bucketMs;
  const at = lowerBound(history.start, start);
  if (history.start[at] === start) {
    history.min[at] = Math.min(history.min[at] ?? value, value);
    history.max[at] = Math.max(history.max[at] ?? value, value);
    history.sum[at] = (history.sum[at] ?? 0) + value;
    history.count[at] = (history.count[at] ?? 0) + 1;
    if (ts >= (history.lastTs[at] ?? 0)) {
      history.last[at] = value;
      history.lastTs[at] = ts;
    }
    return;
  }
  history.start.splice(at, 0, start);
  history.min.splice(at, 0, value);
  history.max.splice(at, 0, value);
  history.sum.splice(at, 0, value);
  history.count.splice(at, 0, 1);
  history.last.splice(at, 0, value);
  history.lastTs.splice(at, 0, ts);
}

/**
 * Folds the series' points with an id after `foldedId` into the buckets, then moves `foldedId` to the
 * series' last id. The stream delivers a board's events in id order, so each point is folded exactly once,
 * even after the series drops it from its 15-minute window. Returns whether anything was folded.
 */
export function foldSeries(history: BucketHistory, series: Series): boolean {
  if (compareStreamIds(series.lastId, history.foldedId) <= 0) return false;
  const { ids, xs, ys } = series;
  let folded = false;
  for (let index = 0; index < ids.length; index += 1) {
    if (compareStreamIds(ids[index] ?? '0-0', history.foldedId) <= 0) continue;
    foldPoint(history, (xs[index] ?? 0) * 1000, ys[index] ?? 0);
    folded = true;
  }
  history.foldedId = series.lastId;
  return folded;
}

/** Drops buckets that ended before `fromMs`. */
export function trimHistory(history: BucketHistory, fromMs: number): void {
  const keep = lowerBound(history.start, fromMs - history.bucketMs + 1);
  if (keep === 0) return;
  for (const column of [history.start, history.min, history.max, history.sum, history.count, history.last]) {
    column.splice(0, keep);
  }
  history.lastTs.splice(0, keep);
}

/** What a bucketed chart draws: bucket starts (epoch seconds, uPlot's unit) and averages. */
export function chartData(history: BucketHistory): [number[], number[]] {
  const xs = history.start.map((start) => start / 1000);
  const ys = history.sum.map((sum, index) => sum / (history.count[index] ?? 1));
  return [xs, ys];
}

/**
 * Whether an annotation belongs on a metric's chart: one without a service marks every chart of its board;
 * one naming service `S` marks the metrics called `S` or named under it: `S.…`, `S:…` or `S/…`
 * (docs/dashboard.md, "Annotations").
 */
export function annotates(annotation: Pick<LogEventEnvelope, 'service'>, metric: string): boolean {
  const service = annotation.service;
  if (service === undefined) return true;
  if (metric === service) return true;
  if (!metric.startsWith(service)) return false;
  const next = metric.charAt(service.length);
  return next === '.' || next === ':' || next === '/';
}

/** Annotations by id from any number of lists (the history answer's, the live log's), sorted by ts. */
export function mergeAnnotations(...lists: (readonly LogEventEnvelope[])[]): LogEventEnvelope[] {
  const byId = new Map<string, LogEventEnvelope>();
  for (const list of lists) {
    for (const event of list) if (event.annotate === true) byId.set(event.id, event);
  }
  return [...byId.values()].sort((a, b) => a.ts - b.ts || compareStreamIds(a.id, b.id));
}

/** The range in a page's query (`?range=24h`), or the default. */
export function rangeFromSearch(search: string): ChartRange {
  const raw = new URLSearchParams(search).get('range');
  return CHART_RANGES.find((range) => range === raw) ?? DEFAULT_CHART_RANGE;
}
