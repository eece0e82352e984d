import net from 'node:net';
import { expect } from 'chai';
import { formatCursor } from '../../../shared/cursor.ts';
import { parseEnvelope, type Envelope } from '../../../shared/events.ts';
import { redisNames } from '../../../shared/keys.ts';
import { BoardStore } from '../../../server/auth/boards.ts';
import type { TestApp } from '../../helpers/app.ts';
import { sleep, until } from '../../helpers/sse-client.ts';
import { useTestBed } from '../../helpers/test-bed.ts';
import { openRawStream, type RawStream } from '../../helpers/raw-stream.ts';

/** A metric envelope as the bus would hand it over, with an id newer than anything the app has seen. */
function metric(id: string, name: string, value: number): Envelope & { name: string } {
  const parsed = parseEnvelope(JSON.stringify({ id, type: 'metric', name, value, ts: Date.now() }));
  if (!parsed.ok || parsed.value.type !== 'metric') throw new Error('not a metric envelope');
  return parsed.value;
}

/**
 * Records every socket write of a whole HTTP/1.1 chunk of SSE frames while installed: which socket, the
 * written Buffer and the frames inside the chunk. A response's own write puts the size line, the data and
 * the CRLF in separate socket writes, so only the hub's pre-framed chunks are recorded.
 */
function recordWrites(): {
  writes: { socket: net.Socket; text: string; chunk: unknown }[];
  restore(): void;
} {
  const original = net.Socket.prototype.write;
  const writes: { socket: net.Socket; text: string; chunk: unknown }[] = [];
  net.Socket.prototype.write = function (this: net.Socket, ...args: unknown[]) {
    const [chunk] = args;
    if (Buffer.isBuffer(chunk)) {
      const framed = /^([0-9a-f]+)\r\n(id: [\s\S]*)\r\n$/.exec(chunk.toString('latin1'));
      if (framed && Number.parseInt(framed[1] ?? '', 16) === Buffer.byteLength(framed[2] ?? '', 'latin1')) {
        writes.push({ socket: this, chunk, text: Buffer.from(framed[2] ?? '', 'latin1').toString() });
      }
    }
    return Reflect.apply(original, this, args) as boolean;
  } as typeof original;
  return { writes, restore: () => (net.Socket.prototype.write = original) };
}

function idsIn(text: string): string[] {
  return [...text.matchAll(/^id: main:(\S+)$/gm)].map((match) => match[1] ?? '');
}

describe('coalesced fan-out', function () {
  this.timeout(30_000);
  const bed = useTestBed();
  let recorder: ReturnType<typeof recordWrites> | undefined;
  afterEach(() => recorder?.restore());

  async function openStreams(app: TestApp, queries: string[]): Promise<RawStream[]> {
    const session = await bed.login(app.url);
    const streams: RawStream[] = [];
    for (const query of queries) {
      const stream = await openRawStream(`${app.url}/events${query}`, { headers: session.headers }).opened;
      await stream.waitForText(/: pulseboard stream/);
      streams.push(stream);
    }
    await until(() => app.hub.size === queries.length, 5000, 'streams registered');
    return streams;
  }

  it('writes N events taken in one event-loop turn to each socket in one write, in id order', async function () {
    const app = await bed.startApp();
    const [first, second] = await openStreams(app, ['', '']);
    const base = Date.now() + 60_000;
    const events = Array.from({ length: 50 }, (_, index) => metric(`${base}-${index}`, 'api.rps', index));
    recorder = recordWrites();
    for (const event of events) app.hub.deliver(event);
    await until(() => recorder!.writes.length >= 2, 5000, 'the flush');
    await sleep(100);
    recorder.restore();
    const expected = events.map((event) => event.id);
    // One socket write per connection, each one chunk holding all 50 frames.
    expect(recorder.writes).to.have.length(2);
    for (const write of recorder.writes) expect(idsIn(write.text)).to.deep.equal(expected);
    for (const stream of [first!, second!]) {
      await stream.waitForText(new RegExp(`id: main:${events.at(-1)!.id}\\n`));
      expect(idsIn(stream.text())).to.deep.equal(expected);
    }
  });

  it('gives each topic filter its own joined frames, still one write per connection', async function () {
    const app = await bed.startApp();
    const [api, db, everything] = await openStreams(app, ['?topics=metric:api.*', '?topics=metric:db.*', '']);
    const base = Date.now() + 60_000;
    const events = Array.from({ length: 10 }, (_, index) =>
      metric(`${base}-${index}`, index % 2 === 0 ? 'api.rps' : 'db.qps', index),
    );
    recorder = recordWrites();
    for (const event of events) app.hub.deliver(event);
    await until(() => recorder!.writes.length >= 3, 5000, 'the flush');
    await sleep(100);
    recorder.restore();
    expect(recorder.writes).to.have.length(3);
    const idsOf = (prefix: string) =>
      events.filter((event) => event.name.startsWith(prefix)).map((e) => e.id);
    const written = recorder.writes.map((write) => idsIn(write.text));
    expect(written).to.deep.include.members([idsOf('api.'), idsOf('db.'), events.map((event) => event.id)]);
    await everything!.waitForText(new RegExp(`id: main:${events.at(-1)!.id}\\n`));
    await api!.waitForText(new RegExp(`id: main:${idsOf('api.').at(-1)}\\n`));
    await db!.waitForText(new RegExp(`id: main:${idsOf('db.').at(-1)}\\n`));
    expect(idsIn(api!.text())).to.deep.equal(idsOf('api.'));
    expect(idsIn(db!.text())).to.deep.equal(idsOf('db.'));
  });

  it('writes through the response to an HTTP/1.0 client, whose body is not chunked', async function () {
    const app = await bed.startApp();
    const session = await bed.login(app.url);
    const socket = net.connect(Number(new URL(app.url).port), '127.0.0.1');
    let text = '';
    socket.on('data', (data: Buffer) => (text += data.toString('latin1')));
    socket.write(`GET /events HTTP/1.0\r\nHost: 127.0.0.1\r\nCookie: ${session.headers.Cookie}\r\n\r\n`);
    try {
      await until(() => text.includes(': pulseboard stream'), 5000, 'the stream');
      await until(() => app.hub.size === 1, 5000, 'stream registered');
      const base = Date.now() + 60_000;
      const events = [0, 1].map((index) => metric(`${base}-${index}`, 'api.rps', index));
      recorder = recordWrites();
      for (const event of events) app.hub.deliver(event);
      await until(() => text.includes(`id: main:${events[1]!.id}\n`), 5000, 'the events');
      recorder.restore();
      expect(recorder.writes).to.have.length(0);
      expect(text).to.not.match(/transfer-encoding: chunked/i);
      expect(idsIn(text)).to.deep.equal(events.map((event) => event.id));
    } finally {
      socket.destroy();
    }
  });

  it('drops an id taken twice or out of order before it reaches any connection', async function () {
    const app = await bed.startApp();
    const [stream] = await openStreams(app, ['']);
    const base = Date.now() + 60_000;
    const [a, b, c] = [0, 1, 2].map((index) => metric(`${base}-${index}`, 'api.rps', index));
    for (const event of [a!, b!, a!, b!, c!, b!]) app.hub.deliver(event);
    await stream!.waitForText(new RegExp(`id: main:${c!.id}\\n`));
    await sleep(100);
    expect(idsIn(stream!.text())).to.deep.equal([a!.id, b!.id, c!.id]);
  });

  it('frames a flush once per board set: streams of one set share the same bytes, each set gets its own cursor ids', async function () {
    await new BoardStore(bed.client, redisNames(bed.prefix)).add('payments');
    const app = await bed.startApp();
    const session = await bed.login(app.url, { boards: ['main', 'payments'] });
    const queries = ['?boards=main,payments', '?boards=payments,main', '?boards=main'];
    const streams: RawStream[] = [];
    for (const query of queries) {
      const stream = await openRawStream(`${app.url}/events${query}`, { headers: session.headers }).opened;
      await stream.waitForText(/: pulseboard stream/);
      streams.push(stream);
    }
    await until(() => app.hub.size === 3, 5000, 'streams registered');
    const base = Date.now() + 60_000;
    const events = Array.from({ length: 10 }, (_, index) => {
      const parsed = parseEnvelope(
        JSON.stringify({
          id: `${base}-${index}`,
          board: index % 2 === 0 ? 'main' : 'payments',
          type: 'metric',
          name: 'api.rps',
          value: index,
          ts: Date.now(),
        }),
      );
      if (!parsed.ok) throw new Error(parsed.message);
      return parsed.value;
    });
    recorder = recordWrites();
    for (const event of events) app.hub.deliver(event);
    await until(() => recorder!.writes.length >= 3, 5000, 'the flush');
    await sleep(100);
    recorder.restore();
    expect(recorder.writes).to.have.length(3);
    const [both, bothAgain, mainOnly] = recorder.writes;
    // The two streams of {main, payments} got the very same Buffer.
    expect(both!.chunk).to.equal(bothAgain!.chunk);
    const frameIds = (text: string) => [...text.matchAll(/^id: (\S+)$/gm)].map((match) => match[1]);
    // Each id is the set's cursor after the event: the positions before the flush (the logs are empty:
    // 0-0), moved along event by event.
    let mainAt = '0-0';
    let paymentsAt = '0-0';
    const expectedBoth = events.map((event) => {
      if (event.board === 'main') mainAt = event.id;
      else paymentsAt = event.id;
      return formatCursor(
        new Map([
          ['main', mainAt],
          ['payments', paymentsAt],
        ]),
      );
    });
    expect(frameIds(both!.text)).to.deep.equal(expectedBoth);
    expect(frameIds(mainOnly!.text)).to.deep.equal(
      events.filter((event) => event.board === 'main').map((event) => `main:${event.id}`),
    );
    for (const stream of streams) stream.close();
  });

  // docs/performance.md, "Paced flushes": after a flush that took long, the next waits as long, and the
  // events of separate turns in that wait go out in one write; after a quick flush nothing waits.
  it('after a slow flush, writes the events of the next turns together; after a quick one, each turn at once', async function () {
    const app = await bed.startApp();
    const streams = await openStreams(app, ['', '']);
    const base = Date.now() + 60_000;
    const events = Array.from({ length: 5 }, (_, index) => metric(`${base}-${index}`, 'api.rps', index));
    const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
    // The clock the hub reads stands still, except that the first event's flush takes 50 ms by it: its
    // first framed socket write moves it on (the real flush takes well under a millisecond).
    const realNow = performance.now.bind(performance);
    let clock = 1000;
    performance.now = () => clock;
    recorder = recordWrites();
    const original = net.Socket.prototype.write;
    net.Socket.prototype.write = function (this: net.Socket, ...args: unknown[]) {
      const [chunk] = args;
      if (
        clock === 1000 &&
        Buffer.isBuffer(chunk) &&
        /^[0-9a-f]+\r\nid: /.test(chunk.toString('latin1', 0, 40))
      )
        clock = 1050;
      return Reflect.apply(original, this, args) as boolean;
    } as typeof original;
    try {
      app.hub.deliver(events[0]!);
      await until(() => recorder!.writes.length >= 2, 5000, 'the first flush');
      net.Socket.prototype.write = original;
      // Two more events, each in a turn of its own, right after the slow flush: they wait, then go together.
      app.hub.deliver(events[1]!);
      await nextTurn();
      app.hub.deliver(events[2]!);
      await until(() => recorder!.writes.length >= 4, 5000, 'the paced flush');
      // That flush was quick: the next two turns' events go out one by one, at once.
      app.hub.deliver(events[3]!);
      await until(() => recorder!.writes.length >= 6, 5000, 'the flush of the fourth');
      app.hub.deliver(events[4]!);
      await until(() => recorder!.writes.length >= 8, 5000, 'the flush of the fifth');
      await sleep(100);
    } finally {
      net.Socket.prototype.write = original;
      performance.now = realNow;
      recorder.restore();
    }
    const ids = (index: number) => events[index]!.id;
    expect(recorder.writes.map((write) => idsIn(write.text))).to.deep.equal([
      [ids(0)],
      [ids(0)],
      [ids(1), ids(2)],
      [ids(1), ids(2)],
      [ids(3)],
      [ids(3)],
      [ids(4)],
      [ids(4)],
    ]);
    for (const stream of streams) stream.close();
  });
});
