// One stream carrying several boards (docs/events.md, "Boards" and "Resume"): per-board id order, exact
// resume from the multi-board cursor after a kill mid-burst (raw socket and EventSource), who sees which
// board in stream and replay, and access revoked while a stream is open, on two workers.
import { expect } from 'chai';
import { errorResponseSchema } from '../../../shared/api.ts';
import { parseCursor } from '../../../shared/cursor.ts';
import { redisNames, boardKeys } from '../../../shared/keys.ts';
import { createPublisher, type Publisher } from '../../../shared/publisher.ts';
import { BoardStore } from '../../../server/auth/boards.ts';
import { publishControl } from '../../../server/bus/control.ts';
import type { TestApp } from '../../helpers/app.ts';
import { withUsers, type TestSession } from '../../helpers/auth.ts';
import { sleep, until } from '../../helpers/sse-client.ts';
import { useTestBed } from '../../helpers/test-bed.ts';
import { openRawStream, type RawStream } from '../../helpers/raw-stream.ts';

/** One complete frame of a raw stream. */
interface Frame {
  id: string | undefined;
  event: string | undefined;
  data: string | undefined;
  /** When the frame's text was first seen complete (ms). */
  at: number;
}

/** Parses the complete frames of `text` (a partial last frame is left out). */
function framesOf(text: string): Omit<Frame, 'at'>[] {
  const blocks = text.split('\n\n');
  blocks.pop();
  return blocks.map((block) => {
    const field = (name: string) =>
      block
        .split('\n')
        .find((line) => line.startsWith(`${name}: `))
        ?.slice(name.length + 2);
    return { id: field('id'), event: field('event'), data: field('data') };
  });
}

/** The events of `frames`, as (board, id) from their data. */
function eventsOf(frames: readonly Omit<Frame, 'at'>[]): { board: string; id: string }[] {
  return frames
    .filter((frame) => frame.data !== undefined && ['status', 'metric', 'event'].includes(frame.event ?? ''))
    .map((frame) => {
      const { board, id } = JSON.parse(frame.data ?? '{}') as { board: string; id: string };
      return { board, id };
    });
}

/** Records when each frame of a raw stream arrived. */
function timeFrames(stream: RawStream): () => Frame[] {
  const seen: Frame[] = [];
  const timer = setInterval(() => {
    const frames = framesOf(stream.text());
    for (let index = seen.length; index < frames.length; index += 1)
      seen.push({ ...frames[index]!, at: Date.now() });
  }, 5);
  void stream.ended.then(() => clearInterval(timer));
  return () => {
    const frames = framesOf(stream.text());
    for (let index = seen.length; index < frames.length; index += 1)
      seen.push({ ...frames[index]!, at: Date.now() });
    return seen;
  };
}

describe('streams of several boards', function () {
  this.timeout(60_000);
  const bed = useTestBed();
  let publisher: Publisher;

  beforeEach(async function () {
    publisher = createPublisher(bed.client, { prefix: bed.prefix });
    const boards = new BoardStore(bed.client, redisNames(bed.prefix));
    await boards.add('payments', 'Payments');
    await boards.add('edge', 'Edge');
  });

  async function logIdsOf(board: string): Promise<string[]> {
    const entries = await bed.client.xRange(boardKeys(bed.prefix, board).log, '-', '+');
    return (entries ?? []).map((entry) => entry.id);
  }

  function loginAs(app: TestApp, username: string, boards: string[], role: 'viewer' | 'admin' = 'viewer') {
    return bed.login(app.url, { username, boards, role });
  }

  /** Publishes `count` events on each board, interleaved; resolves with nothing (read the logs after). */
  async function burst(boards: readonly string[], count: number, pauseMs = 0): Promise<void> {
    for (let index = 0; index < count; index += 1) {
      for (const board of boards) {
        await publisher.publish({ type: 'metric', board, name: `${board}.rps`, value: index });
      }
      if (pauseMs > 0) await sleep(pauseMs);
    }
  }

  it('one stream for two boards delivers both, each in its id order, with the cursor naming both in every id', async function () {
    const app = await bed.startApp();
    const session = await loginAs(app, 'alice', ['payments', 'edge']);
    const stream = await openRawStream(`${app.url}/events?boards=payments,edge`, { headers: session.headers })
      .opened;
    await stream.waitForText(/pulseboard stream/);
    await burst(['payments', 'edge'], 50);
    const [payments, edge] = [await logIdsOf('payments'), await logIdsOf('edge')];
    await stream.waitForText(new RegExp(`"id":"${payments.at(-1)}"`));
    await stream.waitForText(new RegExp(`"id":"${edge.at(-1)}"`));
    const frames = framesOf(stream.text()).filter((frame) => frame.event === 'metric');
    const events = eventsOf(frames);
    expect(events.filter((event) => event.board === 'payments').map((event) => event.id)).to.deep.equal(
      payments,
    );
    expect(events.filter((event) => event.board === 'edge').map((event) => event.id)).to.deep.equal(edge);
    // Each frame's id is the cursor after it: that event's id for its board, both boards named.
    for (const [index, frame] of frames.entries()) {
      const cursor = parseCursor(frame.id ?? '');
      expect(cursor.ok).to.equal(true);
      if (!cursor.ok) return;
      expect([...cursor.value.keys()]).to.deep.equal(['edge', 'payments']);
      expect(cursor.value.get(events[index]!.board)).to.equal(events[index]!.id);
    }
    stream.close();
  });

  it('a raw socket killed mid-burst on both boards resumes on the other worker with the Last-Event-ID it holds: nothing missing, nothing twice', async function () {
    const apps = [await bed.startApp(), await bed.startApp()];
    const session = await loginAs(apps[0]!, 'alice', ['payments', 'edge']);
    const query = '/events?boards=edge,payments';
    const first = await openRawStream(`${apps[0]!.url}${query}`, { headers: session.headers }).opened;
    await first.waitForText(/pulseboard stream/);
    const publishing = burst(['payments', 'edge'], 150, 2);
    await until(() => eventsOf(framesOf(first.text())).length >= 60, 20_000, '60 events before the kill');
    first.close();
    const before = framesOf(first.text());
    const lastId = before.filter((frame) => frame.id !== undefined).at(-1)?.id;
    // The compact cursor (docs/events.md, "Resume"): the newest ms, then each board's age and sequence.
    expect(lastId).to.match(/^\d+~edge:\d+(-\d+)?,payments:\d+(-\d+)?$/);
    // The other worker has its own fan-out position for each board: the cursor alone decides the resume.
    const resumed = await openRawStream(`${apps[1]!.url}${query}`, {
      headers: session.headers,
      lastEventId: lastId!,
    }).opened;
    await publishing;
    const [payments, edge] = [await logIdsOf('payments'), await logIdsOf('edge')];
    await resumed.waitForText(new RegExp(`"id":"${payments.at(-1)}"`), 20_000);
    await resumed.waitForText(new RegExp(`"id":"${edge.at(-1)}"`), 20_000);
    await sleep(200);
    const all = [...eventsOf(before), ...eventsOf(framesOf(resumed.text()))];
    expect(all.filter((event) => event.board === 'payments').map((event) => event.id)).to.deep.equal(
      payments,
    );
    expect(all.filter((event) => event.board === 'edge').map((event) => event.id)).to.deep.equal(edge);
    resumed.close();
  });

  it('an EventSource cut by the server mid-burst reconnects by itself and gets every event of both boards once', async function () {
    const app = await bed.startApp({ SSE_RETRY_MS: '100' });
    const session = await loginAs(app, 'alice', ['payments', 'edge']);
    const stream = bed.openStream(`${app.url}/events?boards=edge,payments`, { headers: session.headers });
    await stream.waitForOpen();
    const publishing = burst(['payments', 'edge'], 150, 2);
    for (const after of [40, 120, 200]) {
      await stream.waitFor((events) => events.length >= after, 20_000, `${after} events`);
      // The worker ends every stream at once, as a crash or a reload would; the client keeps its cursor.
      app.hub.closeWhere(() => true, 'error');
    }
    await publishing;
    const [payments, edge] = [await logIdsOf('payments'), await logIdsOf('edge')];
    await stream.waitFor(
      (events) => events.some((event) => event.id === payments.at(-1) && event.board === 'payments'),
      20_000,
      'the last payments event',
    );
    await stream.waitFor(
      (events) => events.some((event) => event.id === edge.at(-1) && event.board === 'edge'),
      20_000,
      'the last edge event',
    );
    await sleep(200);
    expect(stream.opens).to.be.at.least(4);
    const idsOf = (board: string) =>
      stream.events.filter((event) => event.board === board).map((event) => event.id);
    expect(idsOf('payments')).to.deep.equal(payments);
    expect(idsOf('edge')).to.deep.equal(edge);
  });

  it('alice and bob see only their board in stream and replay, are refused the other with 403, and an admin sees both', async function () {
    const app = await bed.startApp();
    await burst(['payments', 'edge'], 3);
    const alice = await loginAs(app, 'alice', ['payments']);
    const bob = await loginAs(app, 'bob', ['edge']);
    const admin = await loginAs(app, 'root', [], 'admin');
    // Replay from the start of every board the cursor names: only the visible ones are replayed.
    const everything = { 'Last-Event-ID': 'edge:0-0,main:0-0,payments:0-0' };
    const streams = {
      alice: await openRawStream(`${app.url}/events`, { headers: { ...alice.headers, ...everything } })
        .opened,
      bob: await openRawStream(`${app.url}/events`, { headers: { ...bob.headers, ...everything } }).opened,
      admin: await openRawStream(`${app.url}/events`, { headers: { ...admin.headers, ...everything } })
        .opened,
    };
    await burst(['payments', 'edge'], 2);
    const [payments, edge] = [await logIdsOf('payments'), await logIdsOf('edge')];
    await streams.alice.waitForText(new RegExp(`"id":"${payments.at(-1)}"`));
    await streams.bob.waitForText(new RegExp(`"id":"${edge.at(-1)}"`));
    await streams.admin.waitForText(new RegExp(`"id":"${payments.at(-1)}"`));
    await streams.admin.waitForText(new RegExp(`"id":"${edge.at(-1)}"`));
    await sleep(200);
    const boardsSeen = (stream: RawStream) =>
      [...new Set(eventsOf(framesOf(stream.text())).map((e) => e.board))].sort();
    expect(boardsSeen(streams.alice)).to.deep.equal(['payments']);
    expect(boardsSeen(streams.bob)).to.deep.equal(['edge']);
    expect(boardsSeen(streams.admin)).to.deep.equal(['edge', 'payments']);
    expect(eventsOf(framesOf(streams.alice.text())).map((e) => e.id)).to.deep.equal(payments);
    expect(framesOf(streams.alice.text()).at(-1)?.id).to.equal(`payments:${payments.at(-1)}`);
    for (const stream of Object.values(streams)) stream.close();

    const refused = async (session: TestSession, query: string) => {
      const response = await fetch(`${app.url}/events?${query}`, { headers: session.headers });
      return { status: response.status, body: errorResponseSchema.parse(await response.json()) };
    };
    for (const [session, board] of [
      [alice, 'edge'],
      [bob, 'payments'],
      [alice, 'main'],
    ] as const) {
      const answer = await refused(session, `boards=${board}`);
      expect(answer.status).to.equal(403);
      expect(answer.body.error).to.include({ code: 'forbidden_board', field: 'board' });
    }
    expect((await refused(alice, 'boards=nope')).status).to.equal(403);
    const unknown = await refused(admin, 'boards=edge,nope');
    expect(unknown.status).to.equal(404);
    expect(unknown.body.error.code).to.equal('unknown_board');
    const invalid = await refused(admin, 'boards=Edge!');
    expect(invalid.status).to.equal(400);
    expect(invalid.body.error).to.include({ field: 'boards' });
    expect((await refused(admin, 'since=payments:nope')).body.error).to.include({ field: 'since' });
    const nobody = await loginAs(app, 'carol', []);
    expect((await refused(nobody, '')).status).to.equal(403);
  });

  it('a board created after the worker read the registry (no control message yet) is streamed when asked for by name', async function () {
    const app = await bed.startApp();
    const admin = await loginAs(app, 'root', [], 'admin');
    // Created behind the worker's back: its cached registry does not know the board yet.
    await new BoardStore(bed.client, redisNames(bed.prefix)).add('fresh');
    const stream = await openRawStream(`${app.url}/events?boards=fresh`, { headers: admin.headers }).opened;
    expect(await stream.status).to.equal(200);
    await stream.waitForText(/pulseboard stream/);
    const [id] = await publisher.publish({ type: 'status', board: 'fresh', service: 'api', state: 'ok' });
    await stream.waitForText(new RegExp(`id: fresh:${id}\\n`));
    stream.close();
  });

  describe('revoking access while the stream is open', function () {
    /** Publishes on payments and main every 20 ms until stopped. */
    function keepPublishing(): { stop(): Promise<void> } {
      let running = true;
      const loop = (async () => {
        for (let index = 0; running; index += 1) {
          await publisher.publish({ type: 'metric', board: 'payments', name: 'pay.rps', value: index });
          await publisher.publish({ type: 'metric', name: 'main.rps', value: index });
          await sleep(20);
        }
      })();
      return {
        stop: async () => {
          running = false;
          await loop;
        },
      };
    }

    async function revoke(userName: string, board: string): Promise<void> {
      await withUsers(bed.redis.url, bed.prefix, (users) =>
        users.updateBoards(userName, (boards) => boards.filter((name) => name !== board)),
      );
    }

    /** Checks one of alice's streams after the revocation at `revokedAt`. */
    function expectNarrowed(frames: Frame[], revokedAt: number): void {
      const boardsFrame = frames.find((frame) => frame.event === 'boards');
      expect(boardsFrame, 'an event: boards frame').to.not.equal(undefined);
      expect(JSON.parse(boardsFrame!.data!)).to.deep.equal({ removed: ['payments'] });
      expect(boardsFrame!.id).to.match(/^main:\d+-\d+$/);
      expect(boardsFrame!.at - revokedAt).to.be.below(1000);
      const after = frames.slice(frames.indexOf(boardsFrame!) + 1);
      expect(eventsOf(after).filter((event) => event.board === 'payments')).to.deep.equal([]);
      // The stream stays open for main.
      expect(eventsOf(after).filter((event) => event.board === 'main').length).to.be.above(0);
      const before = eventsOf(frames.slice(0, frames.indexOf(boardsFrame!)));
      expect(before.some((event) => event.board === 'payments')).to.equal(true);
    }

    it('on a control message, both workers narrow her streams within 1 s: no payments event after, main goes on', async function () {
      const apps = [await bed.startApp(), await bed.startApp()];
      const sessions = [
        await loginAs(apps[0]!, 'alice', ['main', 'payments']),
        await loginAs(apps[1]!, 'alice', ['main', 'payments']),
      ];
      const streams = await Promise.all(
        apps.map(
          (app, index) => openRawStream(`${app.url}/events`, { headers: sessions[index]!.headers }).opened,
        ),
      );
      const timed = streams.map(timeFrames);
      const publishing = keepPublishing();
      await sleep(300);
      const revokedAt = Date.now();
      await revoke('alice', 'payments');
      // What `pulseboard board revoke` publishes; the two workers learn it from Redis, not from this process.
      await publishControl(bed.client, redisNames(bed.prefix), { type: 'access-changed', userName: 'alice' });
      await sleep(1500);
      await publishing.stop();
      await sleep(100);
      for (const frames of timed) expectNarrowed(frames(), revokedAt);
      for (const stream of streams) stream.close();
    });

    it('without the control message, the periodic stream check narrows her stream', async function () {
      const app = await bed.startApp({ SESSION_CHECK_MS: '300' });
      const session = await loginAs(app, 'alice', ['main', 'payments']);
      const stream = await openRawStream(`${app.url}/events`, { headers: session.headers }).opened;
      const frames = timeFrames(stream);
      const publishing = keepPublishing();
      await sleep(300);
      const revokedAt = Date.now();
      await revoke('alice', 'payments');
      await sleep(1500);
      await publishing.stop();
      await sleep(100);
      expectNarrowed(frames(), revokedAt);
      stream.close();
    });

    it('a board taken out of a resuming stream before its replay reads the logs is not replayed, and no later event of it arrives', async function () {
      const app = await bed.startApp();
      await burst(['payments', 'main'], 3);
      const session = await loginAs(app, 'alice', ['main', 'payments']);
      // The board is removed the moment the resuming stream joins the hub, before its replay reads a log.
      const add = app.hub.add.bind(app.hub);
      app.hub.add = (connection) => {
        add(connection);
        app.hub.dropBoard('payments');
      };
      const stream = await openRawStream(`${app.url}/events`, {
        headers: session.headers,
        lastEventId: 'main:0-0,payments:0-0',
      }).opened;
      const main = await logIdsOf('main');
      await stream.waitForText(new RegExp(`"id":"${main.at(-1)}"`));
      await burst(['payments', 'main'], 2);
      const later = await logIdsOf('main');
      await stream.waitForText(new RegExp(`"id":"${later.at(-1)}"`));
      await sleep(200);
      const frames = framesOf(stream.text());
      // The first frame after the preamble (retry, comment).
      expect(frames.find((frame) => frame.event !== undefined)).to.deep.include({
        id: 'main:0-0',
        event: 'boards',
        data: '{"removed":["payments"]}',
      });
      expect(eventsOf(frames).map((event) => event.board)).to.deep.equal(later.map(() => 'main'));
      expect(eventsOf(frames).map((event) => event.id)).to.deep.equal(later);
      stream.close();
    });

    it('a removed board leaves every stream; a stream left with no board ends after saying so', async function () {
      const app = await bed.startApp();
      const both = await loginAs(app, 'alice', ['main', 'payments']);
      const only = await loginAs(app, 'bob', ['payments']);
      const wide = await openRawStream(`${app.url}/events`, { headers: both.headers }).opened;
      const narrow = await openRawStream(`${app.url}/events`, { headers: only.headers }).opened;
      await wide.waitForText(/pulseboard stream/);
      await narrow.waitForText(/pulseboard stream/);
      await until(() => app.hub.size === 2, 5000, 'both streams registered');
      await publishControl(bed.client, redisNames(bed.prefix), { type: 'board-removed', board: 'payments' });
      await wide.waitForText(/event: boards\ndata: \{"removed":\["payments"\]\}/);
      await narrow.ended;
      expect(framesOf(narrow.text()).at(-1)).to.deep.include({
        event: 'boards',
        data: '{"removed":["payments"]}',
      });
      expect(app.hub.size).to.equal(1);
      wide.close();
    });
  });
});
