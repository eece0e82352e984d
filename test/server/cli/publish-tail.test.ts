import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { envelopeSchema } from '../../../shared/events.ts';
import { createPublisher } from '../../../shared/publisher.ts';
import { formatEvent } from '../../../server/cli/tail.ts';
import { ensureTestUser, TEST_PASSWORD } from '../../helpers/auth.ts';
import { useTestBed } from '../../helpers/test-bed.ts';
import { until } from '../../helpers/sse-client.ts';
import { runCli } from '../../helpers/cli.ts';
import { logIds } from '../sse/stream-helpers.ts';
import { redisNames } from '../../../shared/keys.ts';

const BIN = fileURLToPath(new URL('../../../bin/pulseboard.js', import.meta.url));

interface TailProcess {
  child: ChildProcess;
  stdout(): string[];
  stderr(): string;
  exited: Promise<number | null>;
}

function startTail(args: string[], env: Record<string, string>): TailProcess {
  const child = spawn(process.execPath, [BIN, 'tail', ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, stdout: () => stdout.split('\n').filter(Boolean), stderr: () => stderr, exited };
}

describe('pulseboard publish and tail (the real CLI)', function () {
  this.timeout(60_000);
  let tails: TailProcess[] = [];
  // Registered before the bed's, so the tails die before their app stops, as they always did.
  afterEach(function () {
    for (const tail of tails) if (tail.child.exitCode === null) tail.child.kill('SIGKILL');
    tails = [];
  });
  const bed = useTestBed();
  let env: Record<string, string>;

  beforeEach(function () {
    env = { REDIS_URL: bed.redis.url, PULSEBOARD_PREFIX: bed.prefix };
  });

  async function logEntries() {
    const entries = await bed.client.xRange(redisNames(bed.prefix).log, '-', '+');
    return (entries ?? []).map((entry) => ({ id: entry.id, ...JSON.parse(entry.message.e!) }));
  }

  describe('publish', function () {
    it('publishes a status, a metric, an event and raw JSON, printing each new id', async function () {
      const status = await runCli(
        [
          'publish',
          'status',
          'api',
          'degraded',
          '--message',
          'p99 > 800 ms',
          '--group',
          'edge',
          '--ttl',
          '60',
        ],
        env,
      );
      const metric = await runCli(
        ['publish', 'metric', 'api.latency', '12.5', '--unit', 'ms', '--ts', '1700000000000'],
        env,
      );
      const event = await runCli(
        ['publish', 'event', 'warn', 'deploy started', '--text', 'v1.2.3', '--service', 'api'],
        env,
      );
      const batch = await runCli(
        ['publish', 'json', '{"type":"metrics","points":[{"name":"a","value":1},{"name":"b","value":-2e3}]}'],
        env,
      );
      const fromStdin = await runCli(
        ['publish', 'json'],
        env,
        '{"type":"status","service":"db","state":"ok"}',
      );
      for (const result of [status, metric, event, batch, fromStdin]) {
        expect(result.code, result.stderr).to.equal(0);
        expect(result.stderr).to.equal('');
      }

      const entries = await logEntries();
      const printed = [status, metric, event, batch, fromStdin].flatMap((result) =>
        result.stdout.trim().split('\n'),
      );
      expect(printed).to.deep.equal(entries.map((entry) => entry.id));
      expect(entries[0]).to.deep.include({
        type: 'status',
        service: 'api',
        state: 'degraded',
        message: 'p99 > 800 ms',
        group: 'edge',
        ttl: 60,
      });
      expect(entries[1]).to.deep.include({
        type: 'metric',
        name: 'api.latency',
        value: 12.5,
        unit: 'ms',
        ts: 1_700_000_000_000,
      });
      expect(entries[2]).to.deep.include({
        type: 'event',
        level: 'warn',
        title: 'deploy started',
        text: 'v1.2.3',
        service: 'api',
      });
      expect(entries.slice(3, 5).map((entry) => [entry.name, entry.value])).to.deep.equal([
        ['a', 1],
        ['b', -2000],
      ]);
      expect(entries[5]).to.deep.include({ type: 'status', service: 'db', state: 'ok' });
    });

    it('explains a bad argument, naming the field, exits 2 and publishes nothing', async function () {
      const cases: [string[], RegExp][] = [
        [['publish', 'status', 'api', 'sideways'], /state/],
        [['publish', 'status', 'a b', 'ok'], /service/],
        [['publish', 'status', 'api', 'ok', '--ttl', 'soon'], /ttl: "soon" is not a whole number/],
        [['publish', 'metric', 'api.latency', 'fast'], /value: "fast" is not a number/],
        [['publish', 'metric', 'api.latency', '1e999'], /value: "1e999" is not a finite number/],
        [['publish', 'event', 'fatal', 'x'], /level/],
        [['publish', 'status', 'api'], /missing required argument 'state'/],
        [['publish', 'status', 'api', 'ok', '--colour', 'red'], /unknown option '--colour'/],
        [
          ['publish', 'json', '{"type":"status","service":"api","state":"ok","color":"red"}'],
          /color: unknown field/,
        ],
        [['publish', 'json', '{nope'], /not valid JSON/],
      ];
      // A few at a time: each is a Node process start.
      for (let index = 0; index < cases.length; index += 4) {
        const batch = cases.slice(index, index + 4);
        const results = await Promise.all(batch.map(([args]) => runCli(args, env)));
        for (const [offset, result] of results.entries()) {
          const [args, message] = batch[offset]!;
          expect(result.code, args.join(' ')).to.equal(2);
          expect(result.stderr, args.join(' ')).to.match(message);
          expect(result.stdout).to.equal('');
        }
      }
      expect(await logEntries()).to.deep.equal([]);
    });

    it('fails with exit code 1 and says where when Redis cannot be reached', async function () {
      const result = await runCli(['publish', 'status', 'api', 'ok'], {
        ...env,
        REDIS_URL: 'redis://127.0.0.1:1',
      });
      expect(result.code).to.equal(1);
      expect(result.stderr).to.match(/cannot reach Redis at redis:\/\/127\.0\.0\.1:1/);
    });
  });

  describe('tail', function () {
    async function startApp(): Promise<Record<string, string>> {
      const app = await bed.startApp();
      const session = await bed.login(app.url);
      const cookie = session.headers.Cookie ?? session.headers.cookie;
      return { ...env, PULSEBOARD_URL: app.url, ...(cookie ? { PULSEBOARD_COOKIE: cookie } : {}) };
    }

    function follow(args: string[], tailEnv: Record<string, string>): TailProcess {
      const tail = startTail(args, tailEnv);
      tails.push(tail);
      return tail;
    }

    it('prints one line per event of the chosen topics, with control characters escaped, and stops on SIGINT', async function () {
      const tailEnv = await startApp();
      const tail = follow(['--topics', 'metric:api.*,event:*'], tailEnv);
      await until(() => /following/.test(tail.stderr()), 15_000, 'tail to connect');
      const publisher = createPublisher(bed.client, { prefix: bed.prefix });
      const ts = Date.UTC(2024, 0, 2, 3, 4, 5);
      await publisher.publish({ type: 'status', service: 'api', state: 'down', ts });
      await publisher.publish({ type: 'metric', name: 'web.latency', value: 3, ts });
      await publisher.publish({ type: 'metric', name: 'api.latency', value: 12.5, unit: 'ms', ts });
      await publisher.publish({
        type: 'event',
        level: 'error',
        title: 'evil \u001b[2Jtitle',
        text: 'two\nlines',
        service: 'api',
        ts,
      });
      await until(() => tail.stdout().length >= 2, 5000, 'two lines');
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(tail.stdout()).to.deep.equal([
        '2024-01-02T03:04:05.000Z metric api.latency 12.5 ms',
        '2024-01-02T03:04:05.000Z event error [api] evil \\u001b[2Jtitle - two\\nlines',
      ]);
      tail.child.kill('SIGINT');
      expect(await tail.exited).to.equal(0);
    });

    it('with --since and --json replays what came after the id as JSON lines, then follows', async function () {
      const tailEnv = await startApp();
      const publisher = createPublisher(bed.client, { prefix: bed.prefix });
      const [first] = await publisher.publish({ type: 'status', service: 'api', state: 'ok' });
      await publisher.publish({ type: 'event', level: 'info', title: 'missed \u0085 C1' });
      await publisher.publish({ type: 'metric', name: 'm', value: 1 });
      const tail = follow(['--since', first!, '--json'], tailEnv);
      await until(() => tail.stdout().length >= 2, 15_000, 'the replay');
      await publisher.publish({ type: 'metric', name: 'm', value: 2 });
      await until(() => tail.stdout().length >= 3, 5000, 'the live event');
      const lines = tail.stdout();
      expect(lines[0]).to.not.match(/\u0085/);
      const events = lines.map((line) => envelopeSchema.parse(JSON.parse(line)));
      expect(events.map((event) => event.id)).to.deep.equal(await logIds(bed.client, bed.prefix, first));
      expect(events[0]).to.include({ title: 'missed \u0085 C1' });
    });

    it('logs in with --user and PULSEBOARD_PASSWORD; without a session it explains how to get one and exits 1', async function () {
      const tailEnv = await startApp();
      const { PULSEBOARD_COOKIE: _cookie, ...noSession } = tailEnv;
      const refused = follow([], noSession);
      expect(await refused.exited).to.equal(1);
      expect(refused.stderr()).to.match(/refused the stream \(401: .*\).*--user/);

      await ensureTestUser(bed.redis.url, bed.prefix, 'watcher');
      const tail = follow(['--user', 'watcher'], { ...noSession, PULSEBOARD_PASSWORD: TEST_PASSWORD });
      await until(() => /following/.test(tail.stderr()), 15_000, 'tail to log in and connect');
      const [id] = await createPublisher(bed.client, { prefix: bed.prefix }).publish({
        type: 'status',
        service: 'api',
        state: 'ok',
      });
      await until(() => tail.stdout().length === 1, 5000, 'the event');
      expect(tail.stdout()[0]).to.match(/ status api ok$/);
      expect(id).to.match(/^\d+-\d+$/); // a Redis stream id: ms-seq

      const wrong = follow(['--user', 'watcher'], { ...noSession, PULSEBOARD_PASSWORD: 'not the password' });
      expect(await wrong.exited).to.equal(1);
      expect(wrong.stderr()).to.match(/login as watcher failed \(401\)/);
    });

    it('explains a refused stream (bad topic pattern) and exits 2; a bad --since exits 2 before connecting', async function () {
      const tailEnv = await startApp();
      const badTopics = follow(['--topics', 'metrics:*'], tailEnv);
      expect(await badTopics.exited).to.equal(2);
      expect(badTopics.stderr()).to.match(
        /refused the stream \(400: topics: "metrics:\*" is not a topic pattern/,
      );
      const badSince = await runCli(['tail', '--since', 'yesterday'], tailEnv);
      expect(badSince.code).to.equal(2);
      expect(badSince.stderr).to.match(/--since: "yesterday" is not a stream id/);
      const badBoards = await runCli(['tail', '--boards', 'edge,Payments!'], tailEnv);
      expect(badBoards.code).to.equal(2);
      expect(badBoards.stderr).to.match(/--boards: "Payments!" is not a board name/);
    });

    it('prints the board of an event on any board but main', function () {
      const ts = Date.UTC(2026, 0, 2, 3, 4, 5);
      const status = { type: 'status', id: '1-0', ts, service: 'api', state: 'ok' } as const;
      expect(formatEvent({ ...status, board: 'main' })).to.equal('2026-01-02T03:04:05.000Z status api ok');
      expect(formatEvent({ ...status, board: 'payments' })).to.equal(
        '2026-01-02T03:04:05.000Z [payments] status api ok',
      );
    });
  });
});
