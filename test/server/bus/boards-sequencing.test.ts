import { expect } from 'chai';
import { snapshotSchema } from '../../../shared/api.ts';
import { boardKeys, redisNames } from '../../../shared/keys.ts';
import { createPublisher, EventValidationError, UnknownBoard } from '../../../shared/publisher.ts';
import { BoardStore } from '../../../server/auth/boards.ts';
import { publishControl } from '../../../server/bus/control.ts';
import type { TestApp } from '../../helpers/app.ts';
import { useTestBed } from '../../helpers/test-bed.ts';

/** Every key of the installation whose hash tag is the board's, e.g. `{pbtest-1:edge}:log`. */
async function keysOfBoard(bed: ReturnType<typeof useTestBed>, board: string): Promise<string[]> {
  return (await bed.client.keys(`${boardKeys(bed.prefix, board).tag}:*`)).sort();
}

/** The data keys of a board that exist (for `main` the tag is shared with the installation's other keys). */
async function dataKeysOf(bed: ReturnType<typeof useTestBed>, board: string): Promise<string[]> {
  const keys = boardKeys(bed.prefix, board);
  const found = await bed.client.keys(`${keys.metricPrefix}*`);
  for (const key of [keys.log, keys.status, keys.metricIndex, keys.recentEvents])
    if ((await bed.client.exists(key)) === 1) found.push(key);
  return found;
}

async function rejected(apps: readonly TestApp[], reason: string, source: string): Promise<number> {
  let total = 0;
  for (const app of apps) {
    for (const value of (await app.metrics.eventsRejected.get()).values) {
      if (value.labels.reason === reason && value.labels.source === source) total += value.value;
    }
  }
  return total;
}

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('sequencing per board', function () {
  this.timeout(30_000);
  const bed = useTestBed();

  /** Creates a board the way `pulseboard board add` does: its meta hash is what lets events in. */
  async function createBoard(board: string): Promise<void> {
    await bed.client.hSet(boardKeys(bed.prefix, board).meta, { title: board, createdAt: String(Date.now()) });
  }

  it('writes an event of board x-1 to the keys boardKeys names (the Lua and TS tags agree), naming the board', async function () {
    await createBoard('x-1');
    const publisher = createPublisher(bed.client, { prefix: bed.prefix });
    const [statusId] = await publisher.publish({ type: 'status', board: 'x-1', service: 'api', state: 'ok' });
    await publisher.publish({ type: 'metrics', board: 'x-1', points: [{ name: 'rps', value: 3 }] });
    await publisher.publish({ type: 'event', board: 'x-1', level: 'info', title: 'deployed' });

    const keys = boardKeys(bed.prefix, 'x-1');
    expect(keys.tag).to.equal(`{${bed.prefix}:x-1}`);
    expect(await keysOfBoard(bed, 'x-1')).to.deep.equal(
      [
        keys.meta,
        keys.log,
        keys.status,
        keys.metricIndex,
        `${keys.metricPrefix}rps`,
        `${keys.historyPrefix}1m:rps`,
        `${keys.historyPrefix}10m:rps`,
        keys.recentEvents,
      ].sort(),
    );
    expect(await bed.client.xLen(keys.log)).to.equal(3);
    // Nothing of it on main.
    expect(await dataKeysOf(bed, 'main')).to.deep.equal([]);

    const status = await bed.client.hGet(keys.status, 'api');
    expect(status).to.match(new RegExp(`^\\{"id":"${statusId}","board":"x-1","ts":\\d+,"type":"status"`));
    const entries = await bed.client.xRange(keys.log, '-', '+', { COUNT: 1 });
    expect(entries?.[0]?.message.e).to.match(/^\{"board":"x-1","ts":\d+,"type":"status","service":"api"/);
    const [point] = await bed.client.lRange(`${keys.metricPrefix}rps`, 0, -1);
    expect(JSON.parse(point!)).to.include({ board: 'x-1', name: 'rps', value: 3 });
  });

  it('gives each board its own log and ids: main keeps the keys of an installation from before boards', async function () {
    await createBoard('edge');
    const publisher = createPublisher(bed.client, { prefix: bed.prefix });
    await publisher.publish({ type: 'status', service: 'api', state: 'ok' });
    await publisher.publish({ type: 'status', board: 'main', service: 'db', state: 'ok' });
    await publisher.publish({ type: 'status', board: 'edge', service: 'cdn', state: 'down' });
    const names = redisNames(bed.prefix);
    expect(boardKeys(bed.prefix, 'main').log).to.equal(names.log);
    expect(await bed.client.xLen(names.log)).to.equal(2);
    expect(await bed.client.hKeys(names.status)).to.have.members(['api', 'db']);
    expect(await bed.client.xLen(boardKeys(bed.prefix, 'edge').log)).to.equal(1);
    expect(await bed.client.hKeys(boardKeys(bed.prefix, 'edge').status)).to.deep.equal(['cdn']);
  });

  it('refuses a whole publish naming a board that does not exist, writing nothing', async function () {
    const publisher = createPublisher(bed.client, { prefix: bed.prefix });
    let error: unknown;
    try {
      await publisher.publish({ type: 'metrics', board: 'nope', points: [{ name: 'a', value: 1 }] });
    } catch (caught) {
      error = caught;
    }
    expect(error).to.be.instanceOf(UnknownBoard).and.to.be.instanceOf(EventValidationError);
    expect(error).to.include({ board: 'nope', field: 'board', reason: 'unknown_board', index: 0 });
    expect((error as Error).message).to.match(/no board nope/);
    expect(await keysOfBoard(bed, 'nope')).to.deep.equal([]);
    expect(await dataKeysOf(bed, 'main')).to.deep.equal([]);
  });

  describe('with two workers', function () {
    let apps: TestApp[];
    beforeEach(async function () {
      apps = [await bed.startApp(), await bed.startApp()];
    });

    it('refuses raw PUBLISH input for an unknown board (counted once, as unknown_board), and sequences the next', async function () {
      await createBoard('edge');
      const channel = redisNames(bed.prefix).ingestChannel;
      await bed.client.publish(
        channel,
        JSON.stringify({ type: 'status', board: 'nope', service: 'a', state: 'ok' }),
      );
      await bed.client.publish(
        channel,
        JSON.stringify({ type: 'status', board: 'edge', service: 'b', state: 'ok' }),
      );
      const edgeLog = boardKeys(bed.prefix, 'edge').log;
      await eventually(async () => (await bed.client.xLen(edgeLog)) === 1, 'the edge event');
      await eventually(async () => (await rejected(apps, 'unknown_board', 'ingest')) === 1, 'the count');
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await rejected(apps, 'unknown_board', 'ingest')).to.equal(1);
      expect(await bed.client.xLen(edgeLog)).to.equal(1);
      // Counted by board once, by the worker that sequenced it; the refused board gets no label.
      const byBoard: Record<string, number> = {};
      for (const app of apps) {
        const counter = app.metrics.registry.getSingleMetric('pulseboard_board_events_total');
        for (const value of (await counter!.get()).values)
          byBoard[String(value.labels.board)] = (byBoard[String(value.labels.board)] ?? 0) + value.value;
      }
      expect(byBoard).to.deep.equal({ edge: 1 });
      // Only the refused board's raw-ingest position record, kept a minute (so it is counted once).
      const left = await keysOfBoard(bed, 'nope');
      expect(left).to.have.length(1);
      expect(left[0]).to.match(/:ingest:part:[0-9a-f]{32}$/);
      expect(await bed.client.pTTL(left[0]!)).to.be.within(1, 60_000);
      expect(await dataKeysOf(bed, 'main')).to.deep.equal([]);
    });

    it('acknowledges, deletes and counts a durable entry for an unknown board, writing nothing', async function () {
      const names = redisNames(bed.prefix);
      const event = { type: 'event', board: 'nope', level: 'info', title: 'x' };
      await bed.client.xAdd(names.ingestStream, '*', { event: JSON.stringify(event) });
      await bed.client.xAdd(names.ingestStream, '*', { event: JSON.stringify({ ...event, board: 'main' }) });
      await eventually(async () => (await bed.client.xLen(names.log)) === 1, 'the main event');
      await eventually(async () => (await rejected(apps, 'unknown_board', 'durable')) === 1, 'the count');
      await eventually(async () => (await bed.client.xLen(names.ingestStream)) === 0, 'an empty backlog');
      expect(await keysOfBoard(bed, 'nope')).to.deep.equal([]);
    });

    it('reads data written before boards (entries without "board") as main in snapshot and replay', async function () {
      const names = redisNames(bed.prefix);
      // What a worker from before boards wrote: envelopes and log entries with no board.
      const entry = `{"ts":1700000000000,"type":"status","service":"legacy","state":"down"}`;
      const id = await bed.client.xAdd(names.log, '*', { e: entry });
      await bed.client.hSet(names.status, 'legacy', `{"id":"${id}",${entry.slice(1)}`);
      const session = await bed.login(apps[0]!.url);

      const response = await fetch(`${apps[0]!.url}/api/snapshot`, { headers: session.headers });
      expect(response.status).to.equal(200);
      const snapshot = snapshotSchema.parse(await response.json());
      expect(snapshot).to.deep.include({ board: 'main', lastEventId: id });
      expect(snapshot.statuses).to.have.length(1);
      expect(snapshot.statuses[0]).to.include({ id, board: 'main', service: 'legacy', state: 'down' });

      const stream = bed.openStream(`${apps[1]!.url}/events?since=0-0`, { headers: session.headers });
      await stream.waitFor((events) => events.length >= 1, 5000, 'the replayed entry');
      expect(stream.events[0]).to.include({ id, board: 'main', service: 'legacy' });
    });

    it('drops a removed board from pulseboard_board_events_total on every worker, so boards come and go without their labels piling up', async function () {
      const names = redisNames(bed.prefix);
      const store = new BoardStore(bed.client, names);
      await store.add('tmp-1', 'Tmp');
      await store.add('edge', 'Edge');
      const channel = redisNames(bed.prefix).ingestChannel;
      // Several messages, so both workers are likely to sequence some of them.
      for (let index = 0; index < 20; index += 1) {
        await bed.client.publish(
          channel,
          JSON.stringify({ type: 'metric', board: 'tmp-1', name: 'm', value: index }),
        );
        await bed.client.publish(
          channel,
          JSON.stringify({ type: 'metric', board: 'edge', name: 'm', value: index }),
        );
      }
      const labelled = async () => {
        const byBoard: Record<string, number> = {};
        for (const app of apps) {
          const counter = app.metrics.registry.getSingleMetric('pulseboard_board_events_total');
          for (const value of (await counter!.get()).values)
            byBoard[String(value.labels.board)] = (byBoard[String(value.labels.board)] ?? 0) + value.value;
        }
        return byBoard;
      };
      await eventually(async () => {
        const counts = await labelled();
        return counts['tmp-1'] === 20 && counts.edge === 20;
      }, 'both boards counted');
      // What `pulseboard board remove` does.
      expect(await store.remove('tmp-1')).to.equal(true);
      await publishControl(bed.client, names, { type: 'board-removed', board: 'tmp-1' });
      await eventually(async () => !('tmp-1' in (await labelled())), 'the label of tmp-1 gone', 1000);
      expect(await labelled()).to.deep.equal({ edge: 20 });
    });
  });
});
