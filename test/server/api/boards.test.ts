import { expect } from 'chai';
import {
  boardsResponseSchema,
  errorResponseSchema,
  publishResponseSchema,
  snapshotSchema,
} from '../../../shared/api.ts';
import { boardKeys, redisNames } from '../../../shared/keys.ts';
import { createPublisher } from '../../../shared/publisher.ts';
import { BoardStore } from '../../../server/auth/boards.ts';
import { TokenStore } from '../../../server/auth/tokens.ts';
import { UserStore } from '../../../server/auth/users.ts';
import { publishControl } from '../../../server/bus/control.ts';
import type { TestApp } from '../../helpers/app.ts';
import type { TestSession } from '../../helpers/auth.ts';
import { useTestBed } from '../../helpers/test-bed.ts';

describe('boards over HTTP: /api/boards, /api/snapshot?board=, /api/publish with board', function () {
  this.timeout(30_000);
  const bed = useTestBed();
  let apps: TestApp[];
  let alice: TestSession;
  let bob: TestSession;
  let admin: TestSession;

  beforeEach(async function () {
    apps = [await bed.startApp(), await bed.startApp()];
    const boards = new BoardStore(bed.client, redisNames(bed.prefix));
    await boards.add('payments', 'Payments');
    await boards.add('edge');
    // Created behind the workers' backs (no control message): let them read the registry once.
    await Promise.all(apps.map((app) => app.boards.refresh()));
    // Alice on the first worker, bob and the admin on the second: the registry each one reads is its own.
    alice = await bed.login(apps[0]!.url, { username: 'alice', boards: ['payments'] });
    bob = await bed.login(apps[1]!.url, { username: 'bob', boards: ['edge'] });
    admin = await bed.login(apps[1]!.url, { username: 'root', role: 'admin', boards: [] });
    const publisher = createPublisher(bed.client, { prefix: bed.prefix });
    await publisher.publish({ type: 'status', board: 'payments', service: 'ledger', state: 'ok' });
    await publisher.publish({ type: 'status', board: 'payments', service: 'cards', state: 'degraded' });
    await publisher.publish({ type: 'status', board: 'edge', service: 'cdn', state: 'down' });
    await publisher.publish({ type: 'status', board: 'edge', service: 'dns', state: 'maintenance' });
    await publisher.publish({ type: 'status', service: 'api', state: 'ok' });
  });

  async function get(app: TestApp, path: string, session: TestSession) {
    const response = await fetch(`${app.url}${path}`, { headers: session.headers });
    return { status: response.status, body: (await response.json()) as unknown };
  }

  async function boardsOf(app: TestApp, session: TestSession) {
    const { status, body } = await get(app, '/api/boards', session);
    expect(status).to.equal(200);
    return boardsResponseSchema.parse(body).boards;
  }

  function expectError(
    answer: { status: number; body: unknown },
    status: number,
    code: string,
    field?: string,
  ) {
    expect(answer.status).to.equal(status);
    const { error } = errorResponseSchema.parse(answer.body);
    expect(error.code).to.equal(code);
    if (field !== undefined) expect(error.field).to.equal(field);
  }

  it('lists to each user only the boards granted (admin: all), with the worst current state and counts', async function () {
    expect(await boardsOf(apps[0]!, alice)).to.deep.equal([
      {
        name: 'payments',
        title: 'Payments',
        state: 'degraded',
        counts: { ok: 1, degraded: 1, down: 0, maintenance: 0 },
      },
    ]);
    expect((await boardsOf(apps[1]!, bob)).map((board) => [board.name, board.state])).to.deep.equal([
      ['edge', 'down'],
    ]);
    const all = await boardsOf(apps[1]!, admin);
    expect(all.map((board) => [board.name, board.title, board.state])).to.deep.equal([
      ['main', 'Main', 'ok'],
      ['edge', 'edge', 'down'],
      ['payments', 'Payments', 'degraded'],
    ]);
    expect(all[1]!.counts).to.deep.equal({ ok: 0, degraded: 0, down: 1, maintenance: 1 });
  });

  it("serves each user the snapshot of their board, and 403 for the other's (404 only for an admin and a missing board)", async function () {
    const own = await get(apps[0]!, '/api/snapshot?board=payments', alice);
    expect(own.status).to.equal(200);
    const snapshot = snapshotSchema.parse(own.body);
    expect(snapshot.board).to.equal('payments');
    expect(snapshot.statuses.map((status) => [status.board, status.service])).to.deep.equal([
      ['payments', 'cards'],
      ['payments', 'ledger'],
    ]);
    const lastPayments = await bed.client.xRevRange(boardKeys(bed.prefix, 'payments').log, '+', '-', {
      COUNT: 1,
    });
    expect(snapshot.lastEventId).to.equal(lastPayments?.[0]?.id);

    expectError(await get(apps[0]!, '/api/snapshot?board=edge', alice), 403, 'forbidden_board', 'board');
    expectError(await get(apps[1]!, '/api/snapshot?board=payments', bob), 403, 'forbidden_board', 'board');
    // Main is a board like the others: alice was not granted it.
    expectError(await get(apps[0]!, '/api/snapshot', alice), 403, 'forbidden_board', 'board');
    // A viewer cannot tell a missing board from a hidden one.
    expectError(await get(apps[0]!, '/api/snapshot?board=nope', alice), 403, 'forbidden_board', 'board');
    expectError(await get(apps[1]!, '/api/snapshot?board=nope', admin), 404, 'unknown_board', 'board');
    expectError(
      await get(apps[1]!, '/api/snapshot?board=Not%20a%20board', admin),
      400,
      'invalid_input',
      'board',
    );

    for (const board of ['main', 'edge', 'payments']) {
      const answer = await get(apps[1]!, `/api/snapshot?board=${board}`, admin);
      expect(answer.status, board).to.equal(200);
      expect(snapshotSchema.parse(answer.body).board).to.equal(board);
    }
  });

  it('takes effect at the next request on every worker: a revoked grant, a board created elsewhere', async function () {
    const users = new UserStore(bed.client, redisNames(bed.prefix));
    await users.updateBoards('alice', (boards) => boards.filter((board) => board !== 'payments'));
    expectError(await get(apps[0]!, '/api/snapshot?board=payments', alice), 403, 'forbidden_board');
    expect(await boardsOf(apps[0]!, alice)).to.deep.equal([]);

    // Created without a control message: the worker re-reads its registry on the miss.
    await new BoardStore(bed.client, redisNames(bed.prefix)).add('data');
    await users.updateBoards('alice', (boards) => [...boards, 'data']);
    expect((await get(apps[0]!, '/api/snapshot?board=data', alice)).status).to.equal(200);
    // An admin's list has no miss to notice: `board add` tells every worker with a control message.
    await publishControl(bed.client, redisNames(bed.prefix), { type: 'boards-changed' });
    const deadline = Date.now() + 1000;
    let names: string[] = [];
    while (!names.includes('data') && Date.now() < deadline) {
      names = (await boardsOf(apps[1]!, admin)).map((board) => board.name);
    }
    expect(names).to.include('data');
  });

  it('drops a removed board from every worker within a second of its control message', async function () {
    // Both workers know edge before it goes.
    expect((await boardsOf(apps[1]!, admin)).map((board) => board.name)).to.include('edge');
    expect((await get(apps[0]!, '/api/snapshot?board=edge', admin)).status).to.equal(200);
    await new BoardStore(bed.client, redisNames(bed.prefix)).remove('edge');
    await publishControl(bed.client, redisNames(bed.prefix), { type: 'board-removed', board: 'edge' });
    const deadline = Date.now() + 1000;
    let listed = ['edge'];
    let snapshot = 200;
    while ((listed.includes('edge') || snapshot !== 404) && Date.now() < deadline) {
      listed = (await boardsOf(apps[1]!, admin)).map((board) => board.name);
      snapshot = (await get(apps[0]!, '/api/snapshot?board=edge', admin)).status;
    }
    expect(listed).to.deep.equal(['main', 'payments']);
    expect(snapshot).to.equal(404);
    expect(await boardsOf(apps[1]!, bob)).to.deep.equal([]);
  });

  it('lets a user recorded before boards (no grants field) see main, as before', async function () {
    const key = redisNames(bed.prefix).key('users');
    const record = JSON.parse((await bed.client.hGet(key, 'bob'))!) as Record<string, unknown>;
    delete record.boards;
    await bed.client.hSet(key, 'bob', JSON.stringify(record));
    expect((await boardsOf(apps[1]!, bob)).map((board) => board.name)).to.deep.equal(['main']);
    expect((await get(apps[1]!, '/api/snapshot', bob)).status).to.equal(200);
  });

  describe('POST /api/publish', function () {
    async function publish(token: string, event: unknown) {
      const response = await fetch(`${apps[1]!.url}/api/publish`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(event),
      });
      return { status: response.status, body: (await response.json()) as unknown };
    }

    it('refuses a token limited to payments publishing to edge (403, nothing sequenced) and takes payments', async function () {
      const tokens = new TokenStore(bed.client, redisNames(bed.prefix));
      const { token } = await tokens.create('payments-ci', 'publisher', ['payments']);
      const edgeLog = boardKeys(bed.prefix, 'edge').log;
      const mainLog = boardKeys(bed.prefix, 'main').log;
      const before = [await bed.client.xLen(edgeLog), await bed.client.xLen(mainLog)];

      const status = { type: 'status', service: 'cdn', state: 'ok' };
      const refused = await publish(token, { ...status, board: 'edge' });
      expectError(refused, 403, 'forbidden_board', 'board');
      // Says what the token may not do: "you may not see" fits a user, not a publishing script.
      expect(errorResponseSchema.parse(refused.body).error.message).to.equal(
        'this token may not publish to board edge',
      );
      expectError(await publish(token, status), 403, 'forbidden_board', 'board');
      expectError(
        await publish(token, { type: 'metrics', board: 'edge', points: [{ name: 'rps', value: 1 }] }),
        403,
        'forbidden_board',
      );
      expect([await bed.client.xLen(edgeLog), await bed.client.xLen(mainLog)]).to.deep.equal(before);

      const accepted = await publish(token, { ...status, board: 'payments' });
      expect(accepted.status).to.equal(200);
      const [id] = publishResponseSchema.parse(accepted.body).ids;
      const stored = await bed.client.hGet(boardKeys(bed.prefix, 'payments').status, 'cdn');
      expect(JSON.parse(stored!)).to.include({ id, board: 'payments', state: 'ok' });
    });

    it('refuses an event for a board that does not exist: 400 unknown_board, counted, nothing written', async function () {
      const { token } = await new TokenStore(bed.client, redisNames(bed.prefix)).create('any');
      const answer = await publish(token, { type: 'event', board: 'nope', level: 'info', title: 'x' });
      expectError(answer, 400, 'unknown_board', 'board');
      expect(await bed.client.keys(`${boardKeys(bed.prefix, 'nope').tag}*`)).to.deep.equal([]);
      const counted = (await apps[1]!.metrics.eventsRejected.get()).values.find(
        (value) => value.labels.reason === 'unknown_board' && value.labels.source === 'http',
      );
      expect(counted?.value).to.equal(1);
    });
  });
});
