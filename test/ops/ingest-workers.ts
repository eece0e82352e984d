// Real worker processes (bin/pulseboard-worker.js, as PM2 runs them) for the ingest suites: each one can
// be paused (SIGSTOP), resumed and killed (SIGKILL) on its own. Always stopped by stopWorkers().
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createClient } from 'redis';
import { boardKeys } from '../../shared/keys.ts';
import type { RedisClient } from '../../server/redis.ts';
import { freePort } from '../helpers/redis-server.ts';
import { ROOT } from './pm2-cluster.ts';

export interface WorkerProcess {
  child: ChildProcess;
  pid: number;
  url: string;
  output(): string;
  exited: Promise<void>;
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
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no 'ready' within 30 s:\n${output}`)), 30_000);
    child.once('message', (message) => {
      clearTimeout(timer);
      if (message === 'ready') resolve();
      else reject(new Error(`unexpected message ${JSON.stringify(message)}`));
    });
    void exited.then(() => reject(new Error(`worker exited before ready:\n${output}`)));
  });
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
  for (let index = 0; index < count; index += 1) workers.push(await startWorker(redisUrl, prefix, env));
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

export async function connect(url: string): Promise<RedisClient> {
  // A test process starved by a load run may write a command late; that is not what is measured.
  const client = createClient({ url, commandOptions: { timeout: 120_000 } });
  await client.connect();
  return client as unknown as RedisClient;
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

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Counts values; returns those seen more than once. */
export function repeated(values: readonly string[]): string[] {
  const seen = new Map<string, number>();
  for (const value of values) seen.set(value, (seen.get(value) ?? 0) + 1);
  return [...seen].filter(([, count]) => count > 1).map(([value]) => value);
}
