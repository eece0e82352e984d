import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { boardKeys, redisNames } from '../../../shared/keys.ts';
import { createPublisher, UnknownBoard } from '../../../shared/publisher.ts';
import { TokenStore } from '../../../server/auth/tokens.ts';
import { UserStore } from '../../../server/auth/users.ts';
import { controlMessageSchema, type ControlMessage } from '../../../server/bus/control.ts';
import { ensureTestUser } from '../../helpers/auth.ts';
import { runCli, type CliResult } from '../../helpers/cli.ts';
import { useTestBed } from '../../helpers/test-bed.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

describe('pulseboard board commands (the real CLI)', function () {
  this.timeout(60_000);
  const bed = useTestBed();
  let control: ControlMessage[];
  let subscriber: typeof bed.client;

  beforeEach(async function () {
    control = [];
    subscriber = bed.client.duplicate();
    await subscriber.connect();
    await subscriber.subscribe(redisNames(bed.prefix).controlChannel, (raw) =>
      control.push(controlMessageSchema.parse(JSON.parse(raw))),
    );
  });
  afterEach(async function () {
    await subscriber.quit();
  });

  function cli(...args: string[]): Promise<CliResult> {
    return cliWithInput('', ...args);
  }

  function cliWithInput(input: string, ...args: string[]): Promise<CliResult> {
    const env = {
      ...process.env,
      REDIS_URL: bed.redis.url,
      PULSEBOARD_PREFIX: bed.prefix,
      LOG_LEVEL: 'silent',
    };
    return runCli(args, env, input);
  }

  const names = () => redisNames(bed.prefix);
  const users = () => new UserStore(bed.client, names());

  /** Control messages arrive asynchronously; a CLI call has returned by the time they are expected. */
  async function controlMessages(count: number): Promise<ControlMessage[]> {
    const deadline = Date.now() + 2000;
    while (control.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return control;
  }

  it('adds, lists, grants, revokes and removes boards, telling every worker', async function () {
    await ensureTestUser(bed.redis.url, bed.prefix, 'alice', 'viewer', []);
    const added = await cli('board', 'add', 'payments', '--title', 'Payments team');
    expect(added, added.stderr).to.include({ code: 0, stdout: 'added board payments (Payments team)\n' });
    expect(await bed.client.hGetAll(boardKeys(bed.prefix, 'payments').meta)).to.include({
      title: 'Payments team',
    });
    expect(await bed.client.hExists(names().boards, 'payments')).to.equal(1);

    const granted = await cli('board', 'grant', 'payments', 'Alice');
    expect(granted, granted.stderr).to.include({ code: 0, stdout: 'granted board payments to alice\n' });
    expect((await users().get('alice'))?.boards).to.deep.equal(['payments']);

    const listed = await cli('board', 'list');
    expect(listed.code).to.equal(0);
    expect(listed.stdout).to.match(/^main\s+Main\s+\(admins only\)$/m);
    expect(listed.stdout).to.match(/^payments\s+Payments team\s+alice$/m);

    // Data on the board, then its removal: every key of it goes, and alice's grant with it.
    const publisher = createPublisher(bed.client, { prefix: bed.prefix });
    await publisher.publish({ type: 'status', board: 'payments', service: 'ledger', state: 'ok' });
    await publisher.publish({ type: 'metric', board: 'payments', name: 'tps', value: 4 });
    await publisher.publish({
      type: 'event',
      board: 'payments',
      level: 'info',
      title: 'deployed',
      annotate: true,
    });
    // meta, log, status, metric index, the series, its two history rings, recent events, annotations.
    expect(await bed.client.keys(`${boardKeys(bed.prefix, 'payments').tag}:*`)).to.have.length(9);
    const revoked = await cli('board', 'revoke', 'payments', 'alice');
    expect(revoked, revoked.stderr).to.include({ code: 0, stdout: 'revoked board payments from alice\n' });
    await cli('board', 'grant', 'payments', 'alice');
    const removed = await cli('board', 'remove', 'payments');
    expect(removed, removed.stderr).to.include({
      code: 0,
      stdout: 'removed board payments; revoked from alice\n',
    });
    expect(await bed.client.keys(`${boardKeys(bed.prefix, 'payments').tag}:*`)).to.deep.equal([]);
    expect(await bed.client.hExists(names().boards, 'payments')).to.equal(0);
    expect((await users().get('alice'))?.boards).to.deep.equal([]);
    // Its events are refused from now on, like any unknown board's.
    let refused: unknown;
    await publisher
      .publish({ type: 'status', board: 'payments', service: 'x', state: 'ok' })
      .catch((error) => {
        refused = error;
      });
    expect(refused).to.be.instanceOf(UnknownBoard);

    expect(await controlMessages(5)).to.deep.equal([
      { type: 'boards-changed' },
      { type: 'access-changed', userName: 'alice' },
      { type: 'access-changed', userName: 'alice' },
      { type: 'access-changed', userName: 'alice' },
      { type: 'board-removed', board: 'payments' },
    ]);
  });

  it('lists boards under a header with aligned columns, and grants nothing to an admin', async function () {
    await ensureTestUser(bed.redis.url, bed.prefix, 'root', 'admin', []);
    await cli('board', 'add', 'edge', '--title', 'A title longer than thirty-two characters, surely');
    const listed = await cli('board', 'list');
    const lines = listed.stdout.trimEnd().split('\n');
    expect(lines[0]).to.match(/^BOARD\s+TITLE\s+USERS$/);
    // Every row's third column starts where the header's does, however long a title is.
    const usersColumn = lines[0]!.indexOf('USERS');
    for (const line of lines.slice(1)) expect(line.slice(usersColumn)).to.equal('(admins only)');

    const granted = await cli('board', 'grant', 'edge', 'root');
    expect(granted, granted.stderr).to.include({
      code: 0,
      stdout: 'root is an admin and sees every board already; nothing granted\n',
    });
    expect((await users().get('root'))?.boards).to.deep.equal([]);
  });

  it('ends quietly when its reader closes the pipe early (board list | head -1)', async function () {
    for (const board of ['a1', 'a2', 'a3']) await cli('board', 'add', board);
    const result = await new Promise<CliResult>((resolve, reject) => {
      const child = spawn(process.execPath, ['bin/pulseboard.js', 'board', 'list'], {
        cwd: ROOT,
        env: { ...process.env, REDIS_URL: bed.redis.url, PULSEBOARD_PREFIX: bed.prefix, LOG_LEVEL: 'silent' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      // The reader is gone before the command writes anything: its write fails with EPIPE.
      child.stdout.destroy();
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout: '', stderr }));
    });
    expect(result.stderr).to.equal('');
    expect(result.code).to.equal(0);
  });

  it('refuses mistakes with a clear message and exit code 1, writing nothing', async function () {
    await ensureTestUser(bed.redis.url, bed.prefix, 'alice', 'viewer', []);
    const before = await bed.client.keys('*');
    const cases: [string[], RegExp][] = [
      [['board', 'add', 'main'], /board main always exists/],
      [['board', 'add', 'Not_A_Board'], /must be 1\.\.64 of a-z 0-9 -/],
      [['board', 'remove', 'main'], /board main cannot be removed/],
      [['board', 'remove', 'nope'], /no board nope/],
      [['board', 'grant', 'nope', 'alice'], /no board nope/],
      [['board', 'grant', 'main', 'nobody'], /no user nobody/],
      [['token', 'create', '--name', 'ci', '--board', 'nope'], /no board nope/],
    ];
    for (const [args, message] of cases) {
      const result = await cli(...args);
      expect(result.code, args.join(' ')).to.equal(1);
      expect(result.stderr, args.join(' ')).to.match(message);
    }
    expect(await bed.client.keys('*')).to.have.members(before);
    expect(await controlMessages(0)).to.deep.equal([]);

    await cli('board', 'add', 'edge');
    const again = await cli('board', 'add', 'edge');
    expect(again.code).to.equal(1);
    expect(again.stderr).to.match(/board edge already exists/);
  });

  it('creates users and tokens limited to boards, and publishes to a board with --board', async function () {
    await cli('board', 'add', 'edge');
    await cli('board', 'add', 'payments');
    const bob = await cliWithInput('bob-password-123\n', 'user', 'add', 'bob', '--board', 'edge');
    expect(bob, bob.stderr).to.include({ code: 0 });
    expect((await users().get('bob'))?.boards).to.deep.equal(['edge']);
    const carol = await cliWithInput('carol-password-1\n', 'user', 'add', 'carol', '--board', 'nope');
    expect(carol.code).to.equal(1);
    expect(carol.stderr).to.match(/no board nope/);
    expect(await users().get('carol')).to.equal(undefined);
    expect((await cli('user', 'list')).stdout).to.match(/^bob\s+viewer\s+created \S+\s+boards edge$/m);

    const created = await cli('token', 'create', '--name', 'ci', '--board', 'payments', '--board', 'edge');
    expect(created, created.stderr).to.include({ code: 0 });
    expect(created.stderr).to.match(/boards edge, payments/);
    const record = await new TokenStore(bed.client, names()).verify(created.stdout.trim());
    expect(record?.boards).to.deep.equal(['edge', 'payments']);
    expect((await cli('token', 'list')).stdout).to.match(/ci .* boards edge,payments$/m);

    const published = await cli('publish', '--board', 'edge', 'status', 'cdn', 'down');
    expect(published, published.stderr).to.include({ code: 0 });
    const stored = await bed.client.hGet(boardKeys(bed.prefix, 'edge').status, 'cdn');
    expect(JSON.parse(stored!)).to.include({ id: published.stdout.trim(), board: 'edge', state: 'down' });

    for (const args of [
      ['publish', '--board', 'nope', 'status', 'cdn', 'ok'],
      ['publish', '--durable', '--board', 'nope', 'status', 'cdn', 'ok'],
      [
        'publish',
        '--board',
        'edge',
        'json',
        '{"type":"status","board":"payments","service":"a","state":"ok"}',
      ],
    ]) {
      const refused = await cli(...args);
      expect(refused.code, args.join(' ')).to.equal(2);
      expect(refused.stderr, args.join(' ')).to.match(/board/);
    }
    expect(await bed.client.keys(`${boardKeys(bed.prefix, 'nope').tag}*`)).to.deep.equal([]);
    expect(await bed.client.xLen(boardKeys(bed.prefix, 'edge').log)).to.equal(1);
    expect(await bed.client.exists(names().ingestStream)).to.equal(0);

    // Removing a board takes it out of the tokens limited to it; one limited to it alone is revoked, never
    // left with an empty limit (which would read as "every board").
    const only = await cli('token', 'create', '--name', 'pay-only', '--board', 'payments');
    const removed = await cli('board', 'remove', 'payments');
    expect(removed.stdout).to.equal(
      'removed board payments\nrevoked tokens limited to it alone: pay-only\ntook it out of the tokens ci\n',
    );
    const tokens = new TokenStore(bed.client, names());
    expect(await tokens.verify(only.stdout.trim())).to.equal(undefined);
    expect((await tokens.verify(created.stdout.trim()))?.boards).to.deep.equal(['edge']);
  });
});
