// The worker process as PM2 runs it (bin/pulseboard-worker.js): 'ready' only once it serves, and a SIGTERM
// or SIGINT ends every stream and exits well inside PM2's kill_timeout.
import { expect } from 'chai';
import { uniquePrefix } from '../helpers/app.ts';
import { login } from '../helpers/auth.ts';
import { openRawStream } from '../helpers/raw-stream.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startWorker, stopWorkers, type WorkerProcess } from './ingest-workers.ts';

// ecosystem.config.cjs: kill_timeout is at least this; "well inside" is a fifth of it.
const KILL_TIMEOUT_MS = 5000;

describe('worker process: ready and graceful shutdown', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  let worker: WorkerProcess | undefined;

  beforeEach(async function () {
    redis = await startTestRedis({ own: true }); // one test stops it
  });
  afterEach(async function () {
    if (worker) await stopWorkers([worker]);
    if (this.currentTest?.state === 'failed' && worker) console.log(worker.output());
    worker = undefined;
    await redis.close();
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`reports ready only when serving, and on ${signal} ends every stream and exits 0 within a fifth of kill_timeout`, async function () {
      const prefix = uniquePrefix();
      worker = await startWorker(redis.url, prefix, { LOG_LEVEL: 'info' });
      // 'ready' came after listening and subscribing: the worker is healthy at that very moment.
      expect((await fetch(`${worker.url}/healthz`)).status).to.equal(200);
      const { headers } = await login(worker.url, { redisUrl: redis.url, prefix });
      const streams = [1, 2, 3].map(() => openRawStream(`${worker!.url}/events`, { headers }));
      for (const stream of streams) {
        expect(await stream.status).to.equal(200);
        await stream.waitForText(/^retry:/m); // the stream is served before the signal
      }

      const signalledAt = performance.now();
      worker.child.kill(signal);
      const exit = await worker.exited;
      const ended = await Promise.all(streams.map((stream) => stream.ended));
      expect(exit).to.include({ code: 0, signal: null });
      const exitMs = exit.at - signalledAt;
      expect(exitMs).to.be.below(KILL_TIMEOUT_MS / 5);
      for (const at of ended) expect(at - signalledAt).to.be.below(KILL_TIMEOUT_MS / 5);
      console.log(
        `      ${signal}: 3 streams ended within ${Math.round(Math.max(...ended) - signalledAt)} ms; ` +
          `process exited 0 after ${Math.round(exitMs)} ms`,
      );
    });
  }

  it('exits 0 within a fifth of kill_timeout on SIGTERM even while Redis is down', async function () {
    worker = await startWorker(redis.url, uniquePrefix(), { LOG_LEVEL: 'info' });
    await redis.stop();
    const signalledAt = performance.now();
    worker.child.kill('SIGTERM');
    const exit = await worker.exited;
    await redis.start();
    const exitMs = exit.at - signalledAt;
    expect(exit, worker.output()).to.include({ code: 0, signal: null });
    expect(exitMs).to.be.below(KILL_TIMEOUT_MS / 5);
    console.log(`      SIGTERM with Redis down: exited 0 after ${Math.round(exitMs)} ms`);
  });
});
