// The dashboard's state and its one reducer: pure functions over the shared event types, so the whole
// data flow (snapshot, stream, dedupe by id, ttl staleness, filter, connection) is tested without a DOM.
// Every action carries the time it happened; the reducer never reads a clock.
import type { Snapshot } from '../../shared/api.ts';
import {
  compareStreamIds,
  type Envelope,
  type LogEventEnvelope,
  type MetricEnvelope,
  type StatusEnvelope,
} from '../../shared/events.ts';
import { NO_FILTER, type DashboardFilter } from './filter.ts';

/** Metric charts show this much history. */
export const METRIC_WINDOW_MS = 15 * 60_000;
/**
 * Points kept per series (newest win), whatever the rate: a series fed 100 points/s would otherwise hold
 * 90,000 points for the 15-minute window and copy them on every point. A chart is at most a few thousand
 * pixels wide, so more points draw nothing more (docs/reliability.md, "Browser memory").
 */
export const MAX_POINTS_PER_SERIES = 3000;
/** Log entries kept (newest win). */
export const MAX_LOG_ENTRIES = 500;
/** Announcements kept for the live region (it only reads new ones). */
export const MAX_ANNOUNCEMENTS = 20;
/** A stream that has not been live for this long is shown as offline rather than reconnecting. */
export const OFFLINE_AFTER_MS = 30_000;
/** The server's heartbeat period until a heartbeat names it (the default `HEARTBEAT_MS`). */
export const DEFAULT_HEARTBEAT_MS = 15_000;
/**
 * The page is stale (banner) once nothing (event, heartbeat, reopen) arrived for this many heartbeat
 * periods: the server writes one at most 1.25 periods after the last write, so two were missed
 * (docs/dashboard.md, "Stale banner").
 */
export const STALE_AFTER_HEARTBEATS = 2.5;

export type StatusState = StatusEnvelope['state'];
export type StreamState = 'connecting' | 'live' | 'reconnecting';
export type ConnectionLabel = StreamState | 'offline';

export interface Tile {
  readonly id: string;
  readonly service: string;
  /** '' when the service has no group. */
  readonly group: string;
  readonly state: StatusState;
  readonly message: string | undefined;
  /** Server time of the last update. */
  readonly updatedAt: number;
  /** Server time the current state began, as far as this tab knows (the snapshot has only the latest). */
  readonly since: number;
  /** Server time after which the tile is stale, when the status has a ttl. */
  readonly staleAt: number | undefined;
  readonly stale: boolean;
}

/** One metric's points in chart form: x in epoch seconds (uPlot's time unit), sorted by x. */
export interface Series {
  readonly name: string;
  readonly unit: string | undefined;
  readonly xs: readonly number[];
  readonly ys: readonly number[];
  /** Each point's id, in the same order: a chart joining history keeps the points after the history's id. */
  readonly ids: readonly string[];
  /** Highest id applied; the stream delivers one series in id order, so older ids are duplicates. */
  readonly lastId: string;
}

export interface Announcement {
  readonly seq: number;
  readonly text: string;
}

/** When the stream last brought anything, for "updated N s ago" and the stale banner. */
export interface Liveness {
  /** Client time the page started: the stale clock runs from here until something arrives. */
  readonly startedAt: number;
  /** Client time the stream last brought anything (an event, a heartbeat, a reopen). */
  readonly lastReceivedAt: number | undefined;
  /** The server's heartbeat period, as its heartbeats say. */
  readonly heartbeatMs: number;
}

export interface DashboardState extends Liveness {
  readonly filter: DashboardFilter;
  readonly stream: { readonly state: StreamState; readonly since: number };
  readonly browserOnline: boolean;
  /** Whether a snapshot has been rendered (the stream may only start after it). */
  readonly loaded: boolean;
  /** Everything up to this id is part of the snapshot; the stream's copies of it are dropped. */
  readonly snapshotId: string;
  /** Server clock minus client clock, from the snapshot, to age ttls and chart windows. */
  readonly clockOffsetMs: number;
  /** Client time of the latest action. */
  readonly now: number;
  /** Server time of the newest event shown. */
  readonly lastEventTs: number | undefined;
  readonly tiles: ReadonlyMap<string, Tile>;
  readonly series: ReadonlyMap<string, Series>;
  /** Log events, oldest first, sorted by id. */
  readonly events: readonly LogEventEnvelope[];
  readonly announcements: readonly Announcement[];
}

export type Action =
  | { type: 'snapshotLoaded'; snapshot: Snapshot; now: number }
  | { type: 'eventsReceived'; events: readonly Envelope[]; now: number }
  | { type: 'streamStateChanged'; state: StreamState; now: number }
  | { type: 'browserOnlineChanged'; online: boolean; now: number }
  | { type: 'streamAlive'; receivedAt: number; heartbeatMs: number | undefined; now: number }
  | { type: 'filterChanged'; filter: DashboardFilter; now: number }
  | { type: 'tick'; now: number };

export function initialState(now: number, filter: DashboardFilter = NO_FILTER): DashboardState {
  return {
    filter,
    stream: { state: 'connecting', since: now },
    browserOnline: true,
    startedAt: now,
    lastReceivedAt: undefined,
    heartbeatMs: DEFAULT_HEARTBEAT_MS,
    loaded: false,
    snapshotId: '0-0',
    clockOffsetMs: 0,
    now,
    lastEventTs: undefined,
    tiles: new Map(),
    series: new Map(),
    events: [],
    announcements: [],
  };
}

/** What the header shows of a page's state (the board view's and the overview's). */
export type ConnectionView = Pick<
  DashboardState,
  'stream' | 'browserOnline' | 'now' | 'clockOffsetMs' | 'lastEventTs' | keyof Liveness
>;

/** How long the page may hear nothing before it says it is stale. */
export function staleAfterMs(state: Pick<Liveness, 'heartbeatMs'>): number {
  return state.heartbeatMs * STALE_AFTER_HEARTBEATS;
}

/** Whether the stream has brought nothing for too long: what the page shows may be out of date. */
export function isStale(state: Liveness & { readonly now: number }): boolean {
  return state.now - (state.lastReceivedAt ?? state.startedAt) > staleAfterMs(state);
}

/** The stream brought something at `receivedAt`: `streamAlive` in both pages' reducers. */
export function heardFrom<T extends Liveness>(
  state: T,
  receivedAt: number,
  heartbeatMs: number | undefined,
): T {
  const lastReceivedAt = Math.max(state.lastReceivedAt ?? receivedAt, receivedAt);
  return { ...state, lastReceivedAt, heartbeatMs: heartbeatMs ?? state.heartbeatMs };
}

/** What the header says: offline when the browser is, or the stream has been down too long. */
export function connectionLabel(state: ConnectionView): ConnectionLabel {
  if (!state.browserOnline) return 'offline';
  const { state: stream, since } = state.stream;
  if (stream === 'reconnecting' && state.now - since >= OFFLINE_AFTER_MS) return 'offline';
  return stream;
}

export function serverNow(state: Pick<DashboardState, 'now' | 'clockOffsetMs'>): number {
  return state.now + state.clockOffsetMs;
}

function tileFrom(status: StatusEnvelope, previous: Tile | undefined, serverTime: number): Tile {
  const staleAt = status.ttl === undefined ? undefined : status.ts + status.ttl * 1000;
  return {
    id: status.id,
    service: status.service,
    group: status.group ?? '',
    state: status.state,
    message: status.message,
    updatedAt: status.ts,
    since: previous && previous.state === status.state ? previous.since : status.ts,
    staleAt,
    stale: staleAt !== undefined && serverTime >= staleAt,
  };
}

function describeTile(tile: Tile): string {
  return tile.stale ? `${tile.service} is stale (last ${tile.state})` : `${tile.service} is ${tile.state}`;
}

export function announce(
  announcements: readonly Announcement[],
  texts: readonly string[],
): readonly Announcement[] {
  if (texts.length === 0) return announcements;
  let seq = announcements.at(-1)?.seq ?? 0;
  const added = texts.map((text) => ({ seq: (seq += 1), text }));
  return [...announcements, ...added].slice(-MAX_ANNOUNCEMENTS);
}

/** Index of the first element of sorted `values` greater than `value`. */
function upperBound(values: readonly number[], value: number): number {
  let low = 0;
  let high = values.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((values[middle] ?? 0) <= value) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** Drops points before the window start; returns the same series when nothing is dropped. */
function trimSeries(series: Series, fromSeconds: number): Series {
  const first = series.xs[0];
  if (first === undefined || first >= fromSeconds) return series;
  const keep = upperBound(series.xs, fromSeconds - Number.EPSILON);
  return { ...series, xs: series.xs.slice(keep), ys: series.ys.slice(keep), ids: series.ids.slice(keep) };
}

function seriesFromPoints(name: string, points: readonly MetricEnvelope[], fromSeconds: number): Series {
  const sorted = [...points]
    .sort((a, b) => a.ts - b.ts || compareStreamIds(a.id, b.id))
    .slice(-MAX_POINTS_PER_SERIES);
  const last = points.reduce<string>(
    (max, point) => (compareStreamIds(point.id, max) > 0 ? point.id : max),
    '0-0',
  );
  const unit = [...points].reverse().find((point) => point.unit !== undefined)?.unit;
  return trimSeries(
    {
      name,
      unit,
      xs: sorted.map((point) => point.ts / 1000),
      ys: sorted.map((point) => point.value),
      ids: sorted.map((point) => point.id),
      lastId: last,
    },
    fromSeconds,
  );
}

function addPoint(series: Series | undefined, point: MetricEnvelope): Series {
  const x = point.ts / 1000;
  if (!series) {
    return {
      name: point.name,
      unit: point.unit,
      xs: [x],
      ys: [point.value],
      ids: [point.id],
      lastId: point.id,
    };
  }
  const at = upperBound(series.xs, x);
  const xs = [...series.xs];
  const ys = [...series.ys];
  const ids = [...series.ids];
  xs.splice(at, 0, x);
  ys.splice(at, 0, point.value);
  ids.splice(at, 0, point.id);
  const over = xs.length - MAX_POINTS_PER_SERIES;
  if (over > 0) {
    xs.splice(0, over);
    ys.splice(0, over);
    ids.splice(0, over);
  }
  return { ...series, unit: point.unit ?? series.unit, xs, ys, ids, lastId: point.id };
}

function loadSnapshot(state: DashboardState, snapshot: Snapshot, now: number): DashboardState {
  const { filter } = state;
  const clockOffsetMs = snapshot.serverTime - now;
  const windowStart = (snapshot.serverTime - METRIC_WINDOW_MS) / 1000;
  const tiles = new Map<string, Tile>();
  for (const status of snapshot.statuses) {
    if (filter.matchesService(status.service)) {
      tiles.set(status.service, tileFrom(status, state.tiles.get(status.service), snapshot.serverTime));
    }
  }
  const series = new Map<string, Series>();
  for (const { name, points } of snapshot.metrics) {
    if (points.length > 0 && filter.matchesMetric(name)) {
      series.set(name, seriesFromPoints(name, points, windowStart));
    }
  }
  const events = snapshot.events
    .filter((event) => filter.matchesEvent(event))
    .sort((a, b) => compareStreamIds(a.id, b.id))
    .slice(-MAX_LOG_ENTRIES);
  let lastEventTs: number | undefined;
  const consider = (item: { ts: number }) => {
    if (lastEventTs === undefined || item.ts > lastEventTs) lastEventTs = item.ts;
  };
  snapshot.statuses.forEach(consider);
  snapshot.events.forEach(consider);
  for (const { points } of snapshot.metrics) points.forEach(consider);
  return {
    ...state,
    loaded: true,
    snapshotId: snapshot.lastEventId,
    clockOffsetMs,
    now,
    lastEventTs,
    tiles,
    series,
    events,
  };
}

/** Inserts log events by id, skipping ids already present or older than a full log's oldest entry. */
function mergeLog(
  log: readonly LogEventEnvelope[],
  added: readonly LogEventEnvelope[],
): readonly LogEventEnvelope[] {
  if (added.length === 0) return log;
  const merged = [...log];
  for (const event of added) {
    let index = merged.length;
    while (index > 0 && compareStreamIds(merged[index - 1]?.id ?? '0-0', event.id) > 0) index -= 1;
    if (index > 0 && merged[index - 1]?.id === event.id) continue;
    merged.splice(index, 0, event);
  }
  return merged.length > MAX_LOG_ENTRIES ? merged.slice(-MAX_LOG_ENTRIES) : merged;
}

function receiveEvents(state: DashboardState, events: readonly Envelope[], now: number): DashboardState {
  const serverTime = now + state.clockOffsetMs;
  const { filter } = state;
  let tiles: Map<string, Tile> | undefined;
  let series: Map<string, Series> | undefined;
  const logged: LogEventEnvelope[] = [];
  const said: string[] = [];
  let lastEventTs = state.lastEventTs;

  for (const event of events) {
    // Already part of the snapshot: the stream resumes from its id, but a shared stream may start earlier.
    if (compareStreamIds(event.id, state.snapshotId) <= 0) continue;
    switch (event.type) {
      case 'status': {
        if (!filter.matchesService(event.service)) continue;
        const current = (tiles ?? state.tiles).get(event.service);
        if (current && (compareStreamIds(event.id, current.id) <= 0 || event.ts < current.updatedAt))
          continue;
        const tile = tileFrom(event, current, serverTime);
        tiles ??= new Map(state.tiles);
        tiles.set(event.service, tile);
        if (!current || current.state !== tile.state || current.stale !== tile.stale)
          said.push(describeTile(tile));
        break;
      }
      case 'metric': {
        if (!filter.matchesMetric(event.name)) continue;
        const current = (series ?? state.series).get(event.name);
        if (current && compareStreamIds(event.id, current.lastId) <= 0) continue;
        series ??= new Map(state.series);
        series.set(event.name, addPoint(current, event));
        break;
      }
      case 'event': {
        if (!filter.matchesEvent(event)) continue;
        logged.push(event);
        break;
      }
    }
    lastEventTs = lastEventTs === undefined ? event.ts : Math.max(lastEventTs, event.ts);
  }
  if (!tiles && !series && logged.length === 0) return { ...state, now };
  return {
    ...state,
    now,
    lastEventTs,
    tiles: tiles ?? state.tiles,
    series: series ?? state.series,
    events: mergeLog(state.events, logged),
    announcements: announce(state.announcements, said),
  };
}

/** Turns tiles stale when their ttl passes and slides the metric window. */
function tick(state: DashboardState, now: number): DashboardState {
  const serverTime = now + state.clockOffsetMs;
  let tiles: Map<string, Tile> | undefined;
  const said: string[] = [];
  for (const tile of state.tiles.values()) {
    const stale = tile.staleAt !== undefined && serverTime >= tile.staleAt;
    if (stale === tile.stale) continue;
    tiles ??= new Map(state.tiles);
    const next = { ...tile, stale };
    tiles.set(tile.service, next);
    said.push(describeTile(next));
  }
  const windowStart = (serverTime - METRIC_WINDOW_MS) / 1000;
  let series: Map<string, Series> | undefined;
  for (const current of state.series.values()) {
    const trimmed = trimSeries(current, windowStart);
    if (trimmed === current) continue;
    series ??= new Map(state.series);
    series.set(current.name, trimmed);
  }
  return {
    ...state,
    now,
    tiles: tiles ?? state.tiles,
    series: series ?? state.series,
    announcements: announce(state.announcements, said),
  };
}

function applyFilter(state: DashboardState, filter: DashboardFilter, now: number): DashboardState {
  const keep = <T>(map: ReadonlyMap<string, T>, matches: (key: string) => boolean) =>
    new Map([...map].filter(([key]) => matches(key)));
  return {
    ...state,
    now,
    filter,
    tiles: keep(state.tiles, filter.matchesService),
    series: keep(state.series, filter.matchesMetric),
    events: state.events.filter((event) => filter.matchesEvent(event)),
  };
}

export function reduce(state: DashboardState, action: Action): DashboardState {
  switch (action.type) {
    case 'snapshotLoaded':
      return loadSnapshot(state, action.snapshot, action.now);
    case 'eventsReceived':
      return receiveEvents(state, action.events, action.now);
    case 'streamStateChanged': {
      if (action.state === state.stream.state) return { ...state, now: action.now };
      const next = { ...state, now: action.now, stream: { state: action.state, since: action.now } };
      const before = connectionLabel(state);
      const after = connectionLabel(next);
      return before === after
        ? next
        : { ...next, announcements: announce(state.announcements, [`Connection ${after}`]) };
    }
    case 'browserOnlineChanged': {
      const next = { ...state, now: action.now, browserOnline: action.online };
      const after = connectionLabel(next);
      return after === connectionLabel(state)
        ? next
        : { ...next, announcements: announce(state.announcements, [`Connection ${after}`]) };
    }
    case 'streamAlive':
      return { ...heardFrom(state, action.receivedAt, action.heartbeatMs), now: action.now };
    case 'filterChanged':
      return applyFilter(state, action.filter, action.now);
    case 'tick': {
      const next = tick(state, action.now);
      const after = connectionLabel(next);
      return after === connectionLabel(state)
        ? next
        : { ...next, announcements: announce(next.announcements, [`Connection ${after}`]) };
    }
  }
}
