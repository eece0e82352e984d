import { expect } from 'chai';
import { formatCursor } from '../../../shared/cursor.ts';
import { parseEnvelope, type Envelope } from '../../../shared/events.ts';
import { boardKeys, redisNames } from '../../../shared/keys.ts';
import { BoardStore } from '../../../server/auth/boards.ts';
import type { SseConnection } from '../../../server/sse/connection.ts';
import type { TestApp } from '../../helpers/app.ts';
import { sleep, until } from '../../helpers/sse-client.ts';
import { useTestBed } from '../../helpers/test-bed.ts';
import { openRawStream } from '../../helpers/raw-stream.ts';

function metric(id: string, value: number): Envelope {
  const parsed = parseEnvelope(JSON.stringify({ id, type: 'metric', name: 'api.rps', value, ts: 1 }));
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.value;
}

function idsIn(text: string): string[] {
  return [...text.matchAll(/^id: main:(\S+)$/gm)].map((match) => match[1] ?? '');
}

describe('replay de-duplication', function () {
  this.timeout(30_000);
  const bed = useTestBed();

  it('skips live events the replay already sent when the log is ahead of the hub, then goes live', async function () {
    const app = await bed.startApp();
    const names = redisNames(bed.prefix);
    // Five events in the log that the hub has not fanned out yet (as when the replay's read overtakes
    // pub/sub): the resume replays 2..5 from the log, and the hub delivers 3..7 afterwards.
    const base = Date.now() + 60_000;
    const events = [1, 2, 3, 4, 5, 6, 7].map((n) => metric(`${base}-${n}`, n));
    for (const event of events.slice(0, 5)) {
      const { id, ...rest } = event;
      await bed.client.xAdd(names.log, id, { e: JSON.stringify(rest) });
    }
    const session = await bed.login(app.url);
    const stream = await openRawStream(`${app.url}/events`, {
      headers: session.headers,
      lastEventId: events[0]!.id,
    }).opened;
    await stream.waitForText(new RegExp(`id: main:${events[4]!.id}\\n`));
    await until(() => app.hub.size === 1, 5000, 'the stream registered');
    for (const event of events.slice(2)) app.hub.deliver(event);
    await stream.waitForText(new RegExp(`id: main:${events[6]!.id}\\n`));
    // And a later live batch goes straight through.
    const later = metric(`${base}-8`, 8);
    app.hub.deliver(later);
    await stream.waitForText(new RegExp(`id: main:${later.id}\\n`));
    await sleep(100);
    expect(idsIn(stream.text())).to.deep.equal([...events.slice(1), later].map((event) => event.id));
  });

  it('releases live events held during a replay once, without those the replay covered', async function () {
    const app = await bed.startApp();
    const names = redisNames(bed.prefix);
    const base = Date.now() + 60_000;
    const events = [1, 2, 3, 4].map((n) => metric(`${base}-${n}`, n));
    for (const event of events.slice(0, 3)) {
      const { id, ...rest } = event;
      await bed.client.xAdd(names.log, id, { e: JSON.stringify(rest) });
    }
    const session = await bed.login(app.url);
    // Deliver 2..4 live the moment the stream joins the hub, while its replay (2, 3) has not read the log
    // yet: all three are held, and only 4 is released after the replay.
    const add = app.hub.add.bind(app.hub);
    app.hub.add = (connection) => {
      add(connection);
      for (const event of events.slice(1)) app.hub.deliver(event);
    };
    const stream = await openRawStream(`${app.url}/events`, {
      headers: session.headers,
      lastEventId: events[0]!.id,
    }).opened;
    await stream.waitForText(new RegExp(`id: main:${events[3]!.id}\\n`));
    await sleep(100);
    expect(idsIn(stream.text())).to.deep.equal(events.slice(1).map((event) => event.id));
  });

  it('a stream of two boards ahead of the hub on one of them gets its own frames until the hub catches up, then the shared ones', async function () {
    await new BoardStore(bed.client, redisNames(bed.prefix)).add('payments');
    const app = await bed.startApp();
    const base = Date.now() + 60_000;
    const onBoard = (board: string, id: string, value: number): Envelope => {
      const parsed = parseEnvelope(
        JSON.stringify({ id, board, type: 'metric', name: 'api.rps', value, ts: 1 }),
      );
      if (!parsed.ok) throw new Error(parsed.message);
      return parsed.value;
    };
    // The hub has fanned out payments 0; 1..4 are in the log but not fanned out yet (pub/sub lags); main
    // has nothing.
    const payments = [0, 1, 2, 3, 4, 5].map((n) => onBoard('payments', `${base}-${n}`, n));
    app.hub.deliver(payments[0]!);
    app.hub.flush();
    for (const event of payments.slice(0, 5)) {
      const { id, ...rest } = event;
      await bed.client.xAdd(boardKeys(bed.prefix, 'payments').log, id, { e: JSON.stringify(rest) });
    }
    const session = await bed.login(app.url, { boards: ['main', 'payments'] });
    const stream = await openRawStream(`${app.url}/events?boards=main,payments`, {
      headers: session.headers,
      lastEventId: `main:0-0,payments:${payments[1]!.id}`,
    }).opened;
    await stream.waitForText(new RegExp(`"id":"${payments[4]!.id}"`));
    await until(() => app.hub.size === 1, 5000, 'the stream registered');
    const [connection] = connections(app);
    expect(connection!.catchingUp, 'ahead of the hub on payments').to.equal(true);
    // The hub catches up (1..4 are dropped for this stream), then goes past it.
    for (const event of payments.slice(1)) app.hub.deliver(event);
    await stream.waitForText(new RegExp(`"id":"${payments[5]!.id}"`));
    expect(connection!.catchingUp, 'back on the shared frames').to.equal(false);
    const mainEvent = onBoard('main', `${base}-9`, 9);
    app.hub.deliver(mainEvent);
    await stream.waitForText(new RegExp(`"id":"${mainEvent.id}"`));
    await sleep(100);
    const ids = [...stream.text().matchAll(/^id: (\S+)$/gm)].map((match) => match[1]);
    expect(ids).to.deep.equal([
      ...payments.slice(2).map((event) =>
        formatCursor(
          new Map([
            ['main', '0-0'],
            ['payments', event.id],
          ]),
        ),
      ),
      formatCursor(
        new Map([
          ['main', mainEvent.id],
          ['payments', payments[5]!.id],
        ]),
      ),
    ]);
  });
});

/** The hub's open connections (the hub keeps them private; tests reach them through count()). */
function connections(app: TestApp): SseConnection[] {
  const found: SseConnection[] = [];
  app.hub.count((connection) => {
    found.push(connection);
    return false;
  });
  return found;
}
