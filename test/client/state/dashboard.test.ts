import { expect } from 'chai';
import type { Snapshot } from '../../../shared/api.ts';
import type { LogEventEnvelope, MetricEnvelope, StatusEnvelope } from '../../../shared/events.ts';
import {
  connectionLabel,
  DEFAULT_HEARTBEAT_MS,
  initialState,
  isStale,
  MAX_LOG_ENTRIES,
  METRIC_WINDOW_MS,
  OFFLINE_AFTER_MS,
  reduce,
  type Action,
  type DashboardState,
} from '../../../client/state/dashboard.ts';
import { parseFilter } from '../../../client/state/filter.ts';

const T0 = 1_700_000_000_000;

function status(seq: number, fields: Partial<StatusEnvelope> = {}): StatusEnvelope {
  return {
    id: `${T0 + seq}-0`,
    board: 'main',
    type: 'status',
    service: 'api',
    state: 'ok',
    ts: T0 + seq,
    ...fields,
  };
}
function metric(seq: number, fields: Partial<MetricEnvelope> = {}): MetricEnvelope {
  return {
    id: `${T0 + seq}-0`,
    board: 'main',
    type: 'metric',
    name: 'api.latency',
    value: seq,
    unit: 'ms',
    ts: T0 + seq,
    ...fields,
  };
}
function logEvent(seq: number, fields: Partial<LogEventEnvelope> = {}): LogEventEnvelope {
  return {
    id: `${T0 + seq}-0`,
    board: 'main',
    type: 'event',
    level: 'info',
    title: `event ${seq}`,
    ts: T0 + seq,
    ...fields,
  };
}
function snapshot(fields: Partial<Snapshot> = {}): Snapshot {
  return {
    board: 'main',
    statuses: [],
    metrics: [],
    events: [],
    lastEventId: '0-0',
    serverTime: T0,
    ...fields,
  };
}
function run(actions: Action[], start: DashboardState = initialState(T0)): DashboardState {
  return actions.reduce(reduce, start);
}
function filtered(text: string): DashboardState {
  const parsed = parseFilter(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return initialState(T0, parsed.filter);
}

describe('dashboard reducer', function () {
  describe('snapshot', function () {
    it('renders the snapshot: tiles by service, series in time order, log by id, and its id', function () {
      const state = run([
        {
          type: 'snapshotLoaded',
          now: T0,
          snapshot: snapshot({
            statuses: [
              status(1, { group: 'edge', message: 'fine' }),
              status(2, { service: 'db', state: 'down' }),
            ],
            metrics: [{ name: 'api.latency', points: [metric(5, { value: 50 }), metric(3, { value: 30 })] }],
            events: [logEvent(7), logEvent(6)],
            lastEventId: `${T0 + 7}-0`,
            serverTime: T0 + 10,
          }),
        },
      ]);
      expect(state.loaded).to.equal(true);
      expect(state.snapshotId).to.equal(`${T0 + 7}-0`);
      expect(state.tiles.get('api')).to.include({
        group: 'edge',
        state: 'ok',
        message: 'fine',
        since: T0 + 1,
      });
      expect(state.tiles.get('db')).to.include({ group: '', state: 'down' });
      const series = state.series.get('api.latency')!;
      expect(series.ys).to.deep.equal([30, 50]);
      expect(series.xs).to.deep.equal([(T0 + 3) / 1000, (T0 + 5) / 1000]);
      expect(series.unit).to.equal('ms');
      expect(state.events.map((event) => event.title)).to.deep.equal(['event 6', 'event 7']);
      expect(state.clockOffsetMs).to.equal(10);
      expect(state.lastEventTs).to.equal(T0 + 7);
    });

    it('drops stream events the snapshot already contains (id <= lastEventId)', function () {
      const state = run([
        {
          type: 'snapshotLoaded',
          now: T0,
          snapshot: snapshot({ statuses: [status(5)], lastEventId: `${T0 + 5}-0` }),
        },
        {
          type: 'eventsReceived',
          now: T0,
          events: [status(4, { state: 'down' }), logEvent(5), metric(3), logEvent(6)],
        },
      ]);
      expect(state.tiles.get('api')?.state).to.equal('ok');
      expect(state.series.size).to.equal(0);
      expect(state.events.map((event) => event.id)).to.deep.equal([`${T0 + 6}-0`]);
    });

    it('a refetched snapshot replaces what was shown and keeps "since" for unchanged states', function () {
      const state = run([
        {
          type: 'snapshotLoaded',
          now: T0,
          snapshot: snapshot({ statuses: [status(1), status(2, { service: 'gone' })] }),
        },
        {
          type: 'snapshotLoaded',
          now: T0,
          snapshot: snapshot({ statuses: [status(9)], lastEventId: `${T0 + 9}-0`, serverTime: T0 + 9 }),
        },
      ]);
      expect([...state.tiles.keys()]).to.deep.equal(['api']);
      expect(state.tiles.get('api')).to.include({ since: T0 + 1, updatedAt: T0 + 9 });
    });
  });

  describe('stream events', function () {
    const loaded = () => run([{ type: 'snapshotLoaded', now: T0, snapshot: snapshot() }]);

    it('dedupes by id: a replayed event changes nothing', function () {
      const events = [status(1, { state: 'down' }), metric(2), logEvent(3)];
      const once = reduce(loaded(), { type: 'eventsReceived', now: T0, events });
      const twice = reduce(once, { type: 'eventsReceived', now: T0, events });
      expect(twice.tiles).to.equal(once.tiles);
      expect(twice.series).to.equal(once.series);
      expect(twice.events).to.have.length(1);
      expect(twice.series.get('api.latency')!.ys).to.deep.equal([2]);
    });

    it('keeps "since" while the state stays and restarts it when the state changes', function () {
      const state = run(
        [
          { type: 'eventsReceived', now: T0, events: [status(1), status(2)] },
          { type: 'eventsReceived', now: T0, events: [status(3, { state: 'down', message: 'boom' })] },
        ],
        loaded(),
      );
      expect(state.tiles.get('api')).to.include({ state: 'down', since: T0 + 3, message: 'boom' });
      const steady = run([{ type: 'eventsReceived', now: T0, events: [status(1), status(2)] }], loaded());
      expect(steady.tiles.get('api')).to.include({ since: T0 + 1, updatedAt: T0 + 2 });
    });

    it('ignores a status older by ts than the shown one, as the server does', function () {
      const state = run(
        [{ type: 'eventsReceived', now: T0, events: [status(5), status(6, { ts: T0 + 1, state: 'down' })] }],
        loaded(),
      );
      expect(state.tiles.get('api')?.state).to.equal('ok');
    });

    it('inserts log events from another level in id order and caps the log', function () {
      const state = run(
        [
          { type: 'eventsReceived', now: T0, events: [logEvent(10), logEvent(12, { level: 'error' })] },
          { type: 'eventsReceived', now: T0, events: [logEvent(11, { level: 'warn' })] },
        ],
        loaded(),
      );
      expect(state.events.map((event) => event.title)).to.deep.equal(['event 10', 'event 11', 'event 12']);
      const flood = Array.from({ length: MAX_LOG_ENTRIES + 20 }, (_, index) => logEvent(100 + index));
      const capped = reduce(state, { type: 'eventsReceived', now: T0, events: flood });
      expect(capped.events).to.have.length(MAX_LOG_ENTRIES);
      expect(capped.events.at(-1)?.title).to.equal(`event ${100 + MAX_LOG_ENTRIES + 19}`);
    });

    it('a burst of events becomes one new state, and unrelated parts keep their identity', function () {
      const start = run([{ type: 'eventsReceived', now: T0, events: [status(1), metric(2)] }], loaded());
      const burst = Array.from({ length: 50 }, (_, index) => metric(10 + index, { value: index }));
      const after = reduce(start, { type: 'eventsReceived', now: T0, events: burst });
      expect(after.tiles).to.equal(start.tiles);
      expect(after.series.get('api.latency')!.ys).to.have.length(51);
    });

    it('keeps what an event says as text, untouched', function () {
      const message = '<img src=x onerror=alert(1)>';
      const state = reduce(loaded(), { type: 'eventsReceived', now: T0, events: [status(1, { message })] });
      expect(state.tiles.get('api')?.message).to.equal(message);
    });
  });

  describe('staleness and time', function () {
    it('turns a tile stale when its ttl passes without an update, and fresh again on the next one', function () {
      let state = run([
        { type: 'snapshotLoaded', now: T0, snapshot: snapshot({ statuses: [status(0, { ttl: 30 })] }) },
        { type: 'tick', now: T0 + 29_000 },
      ]);
      expect(state.tiles.get('api')?.stale).to.equal(false);
      state = reduce(state, { type: 'tick', now: T0 + 30_000 });
      expect(state.tiles.get('api')?.stale).to.equal(true);
      expect(state.announcements.at(-1)?.text).to.equal('api is stale (last ok)');
      state = reduce(state, {
        type: 'eventsReceived',
        now: T0 + 31_000,
        events: [status(31_000, { ttl: 30 })],
      });
      expect(state.tiles.get('api')?.stale).to.equal(false);
    });

    it('ages ttls on the server clock, not the browser clock', function () {
      // The browser clock is 1 h behind the server's.
      const browser = T0 - 3_600_000;
      const state = run(
        [
          {
            type: 'snapshotLoaded',
            now: browser,
            snapshot: snapshot({ statuses: [status(0, { ttl: 60 })], serverTime: T0 }),
          },
          { type: 'tick', now: browser + 10_000 },
        ],
        initialState(browser),
      );
      expect(state.tiles.get('api')?.stale).to.equal(false);
      expect(reduce(state, { type: 'tick', now: browser + 61_000 }).tiles.get('api')?.stale).to.equal(true);
    });

    it('keeps only the last 15 minutes of each metric', function () {
      const state = run([
        {
          type: 'snapshotLoaded',
          now: T0,
          snapshot: snapshot({
            metrics: [
              { name: 'api.latency', points: [metric(0, { value: 1 }), metric(60_000, { value: 2 })] },
            ],
          }),
        },
        { type: 'tick', now: T0 + METRIC_WINDOW_MS + 30_000 },
      ]);
      expect(state.series.get('api.latency')!.ys).to.deep.equal([2]);
    });
  });

  describe('connection', function () {
    it('says live, reconnecting, then offline after a long outage or when the browser is offline', function () {
      let state = run([{ type: 'streamStateChanged', state: 'live', now: T0 }]);
      expect(connectionLabel(state)).to.equal('live');
      state = reduce(state, { type: 'streamStateChanged', state: 'reconnecting', now: T0 + 1000 });
      expect(connectionLabel(state)).to.equal('reconnecting');
      expect(state.announcements.at(-1)?.text).to.equal('Connection reconnecting');
      state = reduce(state, { type: 'tick', now: T0 + 1000 + OFFLINE_AFTER_MS });
      expect(connectionLabel(state)).to.equal('offline');
      state = reduce(state, { type: 'streamStateChanged', state: 'live', now: T0 + 40_000 });
      expect(connectionLabel(state)).to.equal('live');
      state = reduce(state, { type: 'browserOnlineChanged', online: false, now: T0 + 41_000 });
      expect(connectionLabel(state)).to.equal('offline');
    });
  });

  describe('filter', function () {
    it('shows only matching services, metrics and events from the snapshot and the stream', function () {
      const state = run(
        [
          {
            type: 'snapshotLoaded',
            now: T0,
            snapshot: snapshot({
              statuses: [status(1), status(2, { service: 'db' })],
              metrics: [
                { name: 'api.latency', points: [metric(3)] },
                { name: 'db.connections', points: [metric(4, { name: 'db.connections' })] },
              ],
              events: [logEvent(5, { service: 'api' }), logEvent(6, { service: 'db' }), logEvent(7)],
            }),
          },
          {
            type: 'eventsReceived',
            now: T0,
            events: [status(8, { service: 'db-replica' }), status(9, { service: 'api-2' })],
          },
        ],
        filtered('api*'),
      );
      expect([...state.tiles.keys()].sort()).to.deep.equal(['api', 'api-2']);
      expect([...state.series.keys()]).to.deep.equal(['api.latency']);
      expect(state.events.map((event) => event.service)).to.deep.equal(['api']);
    });

    it('narrows what is shown at once when the filter changes', function () {
      const state = run([
        {
          type: 'snapshotLoaded',
          now: T0,
          snapshot: snapshot({ statuses: [status(1), status(2, { service: 'db' })] }),
        },
        { type: 'filterChanged', now: T0, filter: filtered('db').filter },
      ]);
      expect([...state.tiles.keys()]).to.deep.equal(['db']);
    });
  });
});

describe('dashboard state: liveness ("updated N s ago", the stale banner)', function () {
  it('is stale once nothing arrived for 2.5 heartbeat periods, counted from the start until something does', function () {
    let state = initialState(T0);
    expect(state.heartbeatMs).to.equal(DEFAULT_HEARTBEAT_MS);
    expect(isStale({ ...state, now: T0 + 2.5 * DEFAULT_HEARTBEAT_MS })).to.equal(false);
    expect(isStale({ ...state, now: T0 + 2.5 * DEFAULT_HEARTBEAT_MS + 1 })).to.equal(true);
    state = reduce(state, {
      type: 'streamAlive',
      receivedAt: T0 + 60_000,
      heartbeatMs: 1000,
      now: T0 + 60_000,
    });
    expect(state.lastReceivedAt).to.equal(T0 + 60_000);
    expect(isStale(state)).to.equal(false);
    expect(isStale({ ...state, now: T0 + 62_500 })).to.equal(false);
    expect(isStale({ ...state, now: T0 + 62_501 })).to.equal(true);
    // A heartbeat without a period keeps the one known.
    state = reduce(state, {
      type: 'streamAlive',
      receivedAt: T0 + 70_000,
      heartbeatMs: undefined,
      now: T0 + 70_000,
    });
    expect(state.heartbeatMs).to.equal(1000);
    expect(isStale({ ...state, now: T0 + 71_000 })).to.equal(false);
    // A tab that joins a quiet stream learns when it last brought something, not "now".
    state = reduce(state, {
      type: 'streamAlive',
      receivedAt: T0 + 65_000,
      heartbeatMs: 1000,
      now: T0 + 72_000,
    });
    expect(state.lastReceivedAt).to.equal(T0 + 70_000);
  });
});
