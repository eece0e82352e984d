// Real worker processes (bin/pulseboard-worker.js, as PM2 runs them) for the ingest and shutdown suites:
// each one can be paused (SIGSTOP), resumed, signalled and killed (SIGKILL) on its own. Always stopped by
// stopWorkers().
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { boardKeys } from '../../shared/keys.ts';
import type { RedisClient } from '../../server/redis.ts';
import { freePort } from '../helpers/redis-server.ts';
import { ROOT } from './pm2-cluster.ts';

/** How a worker process ended, and when (performance.now()). */
export interface WorkerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  at: number;
}

export interface WorkerProcess {
  child: ChildProcess;
  pid: number;
  url: string;
  output(): string;
  exited: Promise<WorkerExit>;
}

export async function startWorker(
  redisUrl: string,
  prefix: string,
  env: Record<string, string> = {},
): Promise<WorkerProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/pulseboard-worker.js')], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      REDIS_URL: redisUrl,
      PULSEBOARD_PREFIX: prefix,
      PULSEBOARD_ADMIN_PASSWORD: 'ingest-test-password',
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<WorkerExit>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: performance.now() })),
  );
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no 'ready' within 30 s:\n${output}`)), 30_000);
      child.once('message', (message) => {
        if (message === 'ready') resolve();
        else reject(new Error(`unexpected message ${JSON.stringify(message)}`));
      });
      void exited.then(() => reject(new Error(`worker exited before ready:\n${output}`)));
    });
  } catch (error) {
    // A worker that never became ready is still a process: the caller never gets it to stop.
    child.kill('SIGKILL');
    await exited;
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return { child, pid: child.pid!, url: `http://127.0.0.1:${port}`, output: () => output, exited };
}

/** Starts workers one after another (each registers its marker as it starts). */
export async function startWorkers(
  count: number,
  redisUrl: string,
  prefix: string,
  env: Record<string, string> = {},
): Promise<WorkerProcess[]> {
  const workers: WorkerProcess[] = [];
  try {
    for (let index = 0; index < count; index += 1) workers.push(await startWorker(redisUrl, prefix, env));
  } catch (error) {
    await stopWorkers(workers);
    throw error;
  }
  return workers;
}

/** Resumes (in case a test paused it) and SIGKILLs every worker still running. */
export async function stopWorkers(workers: readonly WorkerProcess[]): Promise<void> {
  await Promise.all(
    workers.map(async (worker) => {
      if (worker.child.exitCode !== null || worker.child.signalCode !== null) return;
      worker.child.kill('SIGCONT');
      worker.child.kill('SIGKILL');
      await worker.exited;
    }),
  );
}

/** Every event in the log, as parsed JSON with its id. */
export async function logEvents(
  client: RedisClient,
  prefix: string,
  board = 'main',
): Promise<{ id: string; event: Record<string, unknown> }[]> {
  const entries = await client.xRange(boardKeys(prefix, board).log, '-', '+');
  return (entries ?? []).map((entry) => ({ id: entry.id, event: JSON.parse(entry.message.e ?? '{}') }));
}

/** Waits until `check` holds (polling), or throws with `what` after `timeoutMs`. */
export async function waitUntil(
  check: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Counts values; returns those seen more than once. */
export function repeated(values: readonly string[]): string[] {
  const seen = new Map<string, number>();
  for (const value of values) seen.set(value, (seen.get(value) ?? 0) + 1);
  return [...seen].filter(([, count]) => count > 1).map(([value]) => value);
}
