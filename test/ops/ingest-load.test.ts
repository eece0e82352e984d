// Raw ingest at 2,000 messages/s into 2 real worker processes: every message published is sequenced once
// (log length = messages published, no message twice), also while the workers are saturated by fan-out to
// thousands of SSE streams. Prints the ingest lag (PUBLISH to the sequenced envelope, one clock).
// `npm test` runs 3 s without the saturation run; `npm run test:ingest-load` runs 10 s and both.
// Knobs: INGEST_LOAD_SECONDS, INGEST_LOAD_RATE (messages/s), INGEST_LOAD_SATURATE=1, INGEST_LOAD_CLIENTS,
// INGEST_LOAD_BOARDS (spread the raw messages over main and N-1 created boards, in turn; default 1).
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { boardKeys, redisNames } from '../../shared/keys.ts';
import { createPublisher } from '../../shared/publisher.ts';
import { BoardStore } from '../../server/auth/boards.ts';
import type { RedisClient } from '../../server/redis.ts';
import { login } from '../helpers/auth.ts';
import { sleep } from '../helpers/sse-client.ts';
import { useTestBed } from '../helpers/test-bed.ts';
import {
  logEvents,
  repeated,
  startWorkers,
  stopWorkers,
  waitUntil,
  type WorkerProcess,
} from './ingest-workers.ts';

const SECONDS = Number(process.env.INGEST_LOAD_SECONDS ?? '3');
const RATE = Number(process.env.INGEST_LOAD_RATE ?? '2000');
const SATURATE = process.env.INGEST_LOAD_SATURATE === '1';
const CLIENTS = Number(process.env.INGEST_LOAD_CLIENTS ?? '1000');
/** `main` and the boards created for the run; raw messages go to each in turn. */
const BOARDS = [
  'main',
  ...Array.from({ length: Number(process.env.INGEST_LOAD_BOARDS ?? '1') - 1 }, (_, i) => `load-${i + 1}`),
];
/** Sequenced events per second fanned out to every SSE client in the saturation run. */
const FAN_OUT_RATE = 100;
const WORKER_ENV = { HISTORY_MAX: '1000000', MAX_STREAMS_PER_SESSION: '100000', LOG_LEVEL: 'warn' };

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;
}

interface LoadResult {
  published: number;
  fannedOut: number;
  lagsMs: number[];
}

describe('raw ingest under load, with real worker processes', function () {
  this.timeout(300_000);
  // The bed's Redis and prefix; its own clients, whose commands may wait behind a saturated run.
  const bed = useTestBed({ client: false });
  let client: RedisClient;
  let observer: RedisClient;
  let prefix: string;
  let workers: WorkerProcess[] = [];
  let driver: ChildProcess | undefined;

  before(async function () {
    // A test process starved by a load run may write a command late; that is not what is measured.
    client = await bed.connect({ commandOptions: { timeout: 120_000 } });
    observer = await bed.connect({ commandOptions: { timeout: 120_000 } });
  });
  beforeEach(async function () {
    ({ prefix } = bed);
    const boards = new BoardStore(client, redisNames(prefix));
    for (const board of BOARDS.slice(1)) await boards.add(board);
  });

  /** Events in the logs of every board of the run. */
  async function logLength(): Promise<number> {
    let total = 0;
    for (const board of BOARDS) total += await client.xLen(boardKeys(prefix, board).log);
    return total;
  }
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      console.log(`      log length: ${await logLength()}`);
      for (const worker of workers) console.log(worker.output().slice(-4000));
    }
    driver?.kill('SIGKILL');
    driver = undefined;
    await stopWorkers(workers);
    workers = [];
  });

  /** Publishes RATE raw messages per second for SECONDS (and FAN_OUT_RATE sequenced events/s if asked). */
  async function publishLoad(fanOut: boolean): Promise<LoadResult> {
    const publishedAt: number[] = [];
    const lagsMs: number[] = [];
    // Every board's shard channel (and main's, for the fan-out events).
    const channels = [...new Set([...BOARDS, 'main'])].map((board) => boardKeys(prefix, board).channel);
    await observer.sSubscribe(channels, (raw) => {
      const match = /"title":"load (\d+)"/.exec(raw);
      if (match) lagsMs.push(performance.now() - publishedAt[Number(match[1])]!);
    });
    const publisher = createPublisher(client, { prefix });
    let fannedOut = 0;
    const started = performance.now();
    const heardBy: number[] = [];
    while (performance.now() - started < SECONDS * 1000) {
      const elapsed = (performance.now() - started) / 1000;
      const replies: Promise<number>[] = [];
      while (publishedAt.length < Math.floor(RATE * elapsed)) {
        const seq = publishedAt.length;
        publishedAt.push(performance.now());
        const board = BOARDS[seq % BOARDS.length]!;
        const message = JSON.stringify({ type: 'event', board, level: 'info', title: `load ${seq}` });
        replies.push(client.publish(redisNames(prefix).ingestChannel, message));
      }
      const calls: Promise<unknown>[] = [];
      while (fanOut && fannedOut < Math.floor(FAN_OUT_RATE * elapsed)) {
        calls.push(publisher.publish({ type: 'metric', name: `fan.${fannedOut % 10}`, value: fannedOut }));
        fannedOut += 1;
      }
      // One tick's pipeline at a time: a starved test process publishes late, never piles up commands.
      heardBy.push(...(await Promise.all(replies)));
      await Promise.all(calls);
      await sleep(5);
    }
    // PUBLISH answers how many subscribers got the message: every one must have reached both workers.
    expect(
      heardBy.filter((count) => count < 2),
      'messages not delivered to both workers',
    ).to.deep.equal([]);
    const expected = publishedAt.length + fannedOut;
    await waitUntil(
      async () => (await logLength()) >= expected,
      Number(process.env.INGEST_LOAD_WAIT_MS ?? '120000'),
      `${expected} events in the log`,
    );
    await sleep(1500);
    await observer.sUnsubscribe(channels);
    return { published: publishedAt.length, fannedOut, lagsMs };
  }

  async function checkLog(result: LoadResult): Promise<void> {
    const events = (await Promise.all(BOARDS.map((board) => logEvents(client, prefix, board)))).flat();
    // Ids are per board: one twice would be one entry sequenced twice in that board's log.
    expect(
      repeated(events.map(({ id, event }) => `${String(event.board)} ${id}`)),
      'ids twice',
    ).to.deep.equal([]);
    const misplaced = events.filter(({ event }) => {
      const match = /^load (\d+)$/.exec(String(event.title));
      return match !== null && event.board !== BOARDS[Number(match[1]) % BOARDS.length];
    });
    expect(misplaced, 'raw messages on another board than their own').to.deep.equal([]);
    const titles = events
      .filter(({ event }) => event.type === 'event')
      .map(({ event }) => String(event.title));
    expect(repeated(titles), 'messages sequenced twice').to.deep.equal([]);
    expect(titles.length, 'raw messages in the log').to.equal(result.published);
    expect(events.length, 'log length').to.equal(result.published + result.fannedOut);
  }

  function report(label: string, result: LoadResult): void {
    const sorted = [...result.lagsMs].sort((a, b) => a - b);
    console.log(
      `      ${label}: ${result.published} raw messages in ${SECONDS} s (${RATE}/s) over ${BOARDS.length} board(s), ` +
        `${result.fannedOut} fan-out events; ` +
        `ingest lag PUBLISH -> sequenced ms: p50 ${percentile(sorted, 50).toFixed(1)}, ` +
        `p99 ${percentile(sorted, 99).toFixed(1)}, max ${(sorted.at(-1) ?? NaN).toFixed(1)}`,
    );
  }

  it(`sequences every raw message once at ${RATE}/s for ${SECONDS} s with 2 workers`, async function () {
    workers = await startWorkers(2, bed.redis.url, prefix, WORKER_ENV);
    const result = await publishLoad(false);
    await checkLog(result);
    report('idle workers', result);
  });

  // The same load while the workers fan out to SSE streams.
  (SATURATE ? it : it.skip)(
    `sequences every raw message once at ${RATE}/s while 2 workers fan out ${FAN_OUT_RATE} events/s to ${CLIENTS} SSE streams`,
    async function () {
      workers = await startWorkers(2, bed.redis.url, prefix, WORKER_ENV);
      const session = await login(workers[0]!.url, { redisUrl: bed.redis.url, prefix });
      const stats: { open: number; frames: number; closed: number; latencies?: number[] } = {
        open: 0,
        frames: 0,
        closed: 0,
      };
      const loadDriver = fork(fileURLToPath(new URL('./ingest-load-clients.ts', import.meta.url)), {
        execArgv: ['--import', 'tsx'],
        env: {
          ...process.env,
          LOAD_URLS: workers.map((worker) => worker.url).join(','),
          LOAD_COOKIE: session.headers.Cookie ?? '',
          LOAD_CLIENTS: String(CLIENTS),
          // Only the fan-out metrics: the raw messages are log events, filtered out per stream.
          LOAD_TOPICS: 'metric:fan.*',
        },
      });
      driver = loadDriver;
      loadDriver.on('message', (message) => Object.assign(stats, message));
      await waitUntil(async () => stats.open >= CLIENTS, 120_000, `${CLIENTS} open streams`);
      const framesBefore = stats.frames;
      loadDriver.send('reset');
      const result = await publishLoad(true);
      const final = new Promise<void>((resolve) =>
        loadDriver.on('message', (message: { latencies?: unknown }) => {
          if (message.latencies) resolve();
        }),
      );
      loadDriver.send('stop');
      await final;
      await checkLog(result);
      report(`${CLIENTS} streams`, result);
      const latencies = [...(stats.latencies ?? [])].sort((x, y) => x - y);
      console.log(
        `      fan-out: ${stats.open} open, ${stats.closed} closed, ${stats.frames - framesBefore} of ` +
          `${result.fannedOut * CLIENTS} frames received; delivery latency ms (sampled): p50 ` +
          `${percentile(latencies, 50)}, p99 ${percentile(latencies, 99)}`,
      );
    },
  );
});
