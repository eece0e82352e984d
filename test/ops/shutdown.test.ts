// The worker process as PM2 runs it (bin/pulseboard-worker.js): 'ready' only once it serves, and a SIGTERM
// or SIGINT ends every stream and exits well inside PM2's kill_timeout.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { expect } from 'chai';
import { uniquePrefix } from '../helpers/app.ts';
import { login } from '../helpers/auth.ts';
import { openRawStream } from '../helpers/raw-stream.ts';
import { freePort, startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { ROOT } from './pm2-cluster.ts';

// ecosystem.config.cjs: kill_timeout is at least this; "well inside" is a fifth of it.
const KILL_TIMEOUT_MS = 5000;

interface Worker {
  child: ChildProcess;
  url: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  output: () => string;
}

async function startWorker(redisUrl: string, prefix: string): Promise<Worker> {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/pulseboard-worker.js')], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      REDIS_URL: redisUrl,
      PULSEBOARD_PREFIX: prefix,
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: performance.now() })),
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no 'ready' within 20 s:\n${output}`)), 20_000);
    child.once('message', (message) => {
      clearTimeout(timer);
      if (message === 'ready') resolve();
      else reject(new Error(`unexpected message ${JSON.stringify(message)}`));
    });
    void exited.then(() => reject(new Error(`worker exited before ready:\n${output}`)));
  });
  return { child, url: `http://127.0.0.1:${port}`, exited, output: () => output };
}

describe('worker process: ready and graceful shutdown', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  let worker: Worker | undefined;

  beforeEach(async function () {
    redis = await startTestRedis({ own: true }); // one test stops it
  });
  afterEach(async function () {
    if (worker && worker.child.exitCode === null && worker.child.signalCode === null) {
      worker.child.kill('SIGKILL');
      await worker.exited;
    }
    if (this.currentTest?.state === 'failed' && worker) console.log(worker.output());
    worker = undefined;
    await redis.close();
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`reports ready only when serving, and on ${signal} ends every stream and exits 0 within a fifth of kill_timeout`, async function () {
      const prefix = uniquePrefix();
      worker = await startWorker(redis.url, prefix);
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
    worker = await startWorker(redis.url, uniquePrefix());
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
