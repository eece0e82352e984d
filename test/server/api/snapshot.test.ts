import { expect } from 'chai';
import { initialState, reduce, type DashboardState } from '../../../client/state/dashboard.ts';
import { snapshotSchema, type Snapshot } from '../../../shared/api.ts';
import type { Envelope } from '../../../shared/events.ts';
import { createPublisher, type Publisher } from '../../../shared/publisher.ts';
import { SNAPSHOT_MAX_EVENTS, SNAPSHOT_WINDOW_MS } from '../../../server/api/snapshot.ts';
import type { TestApp } from '../../helpers/app.ts';
import type { TestSession } from '../../helpers/auth.ts';
import type { RecordedStream } from '../../helpers/sse-client.ts';
import { useTestBed } from '../../helpers/test-bed.ts';
import { logIds } from '../sse/stream-helpers.ts';
import { sleep } from '../../helpers/sse-client.ts';

const METRIC_HISTORY_MAX = 10;

/** A dashboard that loaded `snapshot`, built by the client's own reducer (client/state/dashboard.ts). */
function loadedFrom(snapshot: Snapshot): DashboardState {
  return reduce(initialState(snapshot.serverTime), {
    type: 'snapshotLoaded',
    snapshot,
    now: snapshot.serverTime,
  });
}

function received(state: DashboardState, events: readonly Envelope[]): DashboardState {
  return reduce(state, { type: 'eventsReceived', events, now: state.now });
}

/**
 * What the dashboard shows, cut to what the server keeps for a late client: the newest METRIC_HISTORY_MAX
 * points of a series and SNAPSHOT_MAX_EVENTS log entries. `since` is left out: only a tab that saw the
 * state change knows when it began.
 */
function shown(state: DashboardState) {
  return {
    tiles: [...state.tiles.values()]
      .map(({ since: _since, ...tile }) => tile)
      .sort((a, b) => a.service.localeCompare(b.service)),
    series: [...state.series.values()]
      .map(({ name, xs, ys }) => ({
        name,
        xs: xs.slice(-METRIC_HISTORY_MAX),
        ys: ys.slice(-METRIC_HISTORY_MAX),
      }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    events: state.events.slice(-SNAPSHOT_MAX_EVENTS).map((event) => event.id),
  };
}

describe('GET /api/snapshot', function () {
  this.timeout(30_000);
  const bed = useTestBed();
  let app: TestApp | undefined;
  let session: TestSession;
  let publisher: Publisher;

  beforeEach(async function () {
    app = await bed.startApp({ METRIC_HISTORY_MAX: String(METRIC_HISTORY_MAX) });
    session = await bed.login(app.url);
    publisher = createPublisher(bed.client, { prefix: bed.prefix, metricHistoryMax: METRIC_HISTORY_MAX });
  });

  async function fetchSnapshot(headers: Record<string, string> = {}): Promise<Snapshot> {
    const response = await fetch(`${app!.url}/api/snapshot`, { headers: { ...session.headers, ...headers } });
    expect(response.status).to.equal(200);
    expect(response.headers.get('cache-control')).to.equal('no-store');
    return snapshotSchema.parse(await response.json());
  }

  it('is empty with lastEventId 0-0 on a fresh installation', async function () {
    const snapshot = await fetchSnapshot();
    expect(snapshot).to.deep.include({ statuses: [], metrics: [], events: [], lastEventId: '0-0' });
    expect(snapshot.serverTime).to.be.within(Date.now() - 5000, Date.now() + 5000);
  });

  it('holds the newest status by ts per service, capped recent metric windows, the last log events and the last id', async function () {
    const now = Date.now();
    await publisher.publish({ type: 'status', service: 'api', state: 'down', ts: now - 1000 });
    await publisher.publish({ type: 'status', service: 'api', state: 'ok', message: 'newer', ts: now });
    // Arrives later but is older by ts: the tile keeps the newer state.
    await publisher.publish({ type: 'status', service: 'api', state: 'degraded', ts: now - 500 });
    await publisher.publish({ type: 'status', service: 'db', state: 'maintenance', group: 'data', ttl: 60 });
    await publisher.publish({
      type: 'metrics',
      points: Array.from({ length: 15 }, (_, index) => ({ name: 'api.latency', value: index, unit: 'ms' })),
    });
    // Outside the window: a stale series is left out, and so are a live series' old points.
    await publisher.publish({
      type: 'metric',
      name: 'old.series',
      value: 1,
      ts: now - SNAPSHOT_WINDOW_MS - 60_000,
    });
    await publisher.publish({
      type: 'metric',
      name: 'mixed',
      value: 1,
      ts: now - SNAPSHOT_WINDOW_MS - 60_000,
    });
    await publisher.publish({ type: 'metric', name: 'mixed', value: 2 });
    for (let index = 0; index < SNAPSHOT_MAX_EVENTS + 5; index += 1)
      await publisher.publish({ type: 'event', level: 'info', title: `event ${index}` });
    const [lastId] = await publisher.publish({ type: 'metric', name: 'mixed', value: 3 });

    const snapshot = await fetchSnapshot();
    expect(snapshot.lastEventId).to.equal(lastId);
    expect(snapshot.statuses.map((status) => [status.service, status.state])).to.deep.equal([
      ['api', 'ok'],
      ['db', 'maintenance'],
    ]);
    expect(snapshot.statuses[1]).to.include({ group: 'data', ttl: 60 });
    const series = new Map(snapshot.metrics.map(({ name, points }) => [name, points]));
    expect([...series.keys()].sort()).to.deep.equal(['api.latency', 'mixed']);
    expect(series.get('api.latency')!.map((point) => point.value)).to.deep.equal([
      5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    ]);
    expect(series.get('mixed')!.map((point) => point.value)).to.deep.equal([2, 3]);
    expect(snapshot.events).to.have.length(SNAPSHOT_MAX_EVENTS);
    expect(snapshot.events[0]!.title).to.equal('event 5');
    expect(snapshot.events.at(-1)!.title).to.equal(`event ${SNAPSHOT_MAX_EVENTS + 4}`);
  });

  it('is gzip-compressed for clients that accept it', async function () {
    await publisher.publish({
      type: 'metrics',
      points: Array.from({ length: 10 }, (_, index) => ({ name: `series.${index}`, value: index })),
    });
    const response = await fetch(`${app!.url}/api/snapshot`, {
      headers: { ...session.headers, 'Accept-Encoding': 'gzip' },
    });
    expect(response.headers.get('content-encoding')).to.equal('gzip');
    expect(snapshotSchema.parse(await response.json()).metrics).to.have.length(10);
  });

  it('is reused by a worker for 250 ms at most, and the stream from its lastEventId still delivers what it lacks', async function () {
    await publisher.publish({ type: 'status', service: 'api', state: 'ok' });
    const first = await fetchSnapshot();
    const [newer] = await publisher.publish({ type: 'status', service: 'api', state: 'down' });
    const cached = await fetchSnapshot();
    expect(cached, 'served from the worker cache').to.deep.equal(first);
    const stream = bed.openStream(`${app!.url}/events?since=${cached.lastEventId}`, {
      headers: session.headers,
    });
    await stream.waitFor((events) => events.length === 1);
    expect(stream.events[0]).to.include({ id: newer, state: 'down' });

    await sleep(300);
    const fresh = await fetchSnapshot();
    expect(fresh.lastEventId).to.equal(newer);
    expect(fresh.statuses[0]).to.include({ state: 'down' });
  });

  it('plus the stream from its lastEventId rebuilds exactly the state of a client that saw every event', async function () {
    // Seen from the very beginning.
    const fromStart = bed.openStream(`${app!.url}/events?since=0-0`, { headers: session.headers });
    await fromStart.waitForOpen();

    let publishing = true;
    const background = (async () => {
      let index = 0;
      // At least 300 events, however slow the machine: enough to overflow every cap above.
      while (publishing || index < 300) {
        const now = Date.now();
        const choice = index % 5;
        if (choice === 0 || choice === 1)
          await publisher.publish({
            type: 'status',
            service: `svc-${index % 4}`,
            state: index % 3 === 0 ? 'ok' : 'degraded',
            // Some arrive older by ts than the current state and must not replace it.
            ts: now - Math.floor(Math.random() * 3000),
          });
        else if (choice === 2 || choice === 3)
          await publisher.publish({ type: 'metric', name: `m.${index % 3}`, value: index });
        else await publisher.publish({ type: 'event', level: 'warn', title: `e${index}` });
        index += 1;
      }
    })();

    // Dashboards that load at different moments, while events keep being published.
    const late: { snapshot: Snapshot; stream: RecordedStream }[] = [];
    for (const delay of [200, 300, 400]) {
      await sleep(delay);
      const snapshot = await fetchSnapshot();
      const stream = bed.openStream(`${app!.url}/events?since=${snapshot.lastEventId}`, {
        headers: session.headers,
      });
      late.push({ snapshot, stream });
    }
    await sleep(300);
    publishing = false;
    await background;

    const all = await logIds(bed.client, bed.prefix);
    expect(all.length).to.be.at.least(300);
    await fromStart.waitFor((events) => events.length === all.length, 10_000, 'the full log');
    const empty = {
      board: 'main',
      statuses: [],
      metrics: [],
      events: [],
      lastEventId: '0-0',
      serverTime: Date.now(),
    };
    const reference = shown(received(loadedFrom(empty), fromStart.events));

    for (const { snapshot, stream } of late) {
      const after = all.filter((id) => all.indexOf(id) > all.indexOf(snapshot.lastEventId));
      await stream.waitFor(
        (events) => events.length === after.length,
        10_000,
        'the events after the snapshot',
      );
      expect(stream.events.map((event) => event.id)).to.deep.equal(after);
      expect(shown(received(loadedFrom(snapshot), stream.events))).to.deep.equal(reference);
    }
    // The final snapshot agrees too.
    expect(shown(loadedFrom(await fetchSnapshot()))).to.deep.equal(reference);
  });
});
