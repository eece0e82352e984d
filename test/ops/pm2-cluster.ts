// Starts the real ecosystem.config.cjs under a real PM2 daemon in a temporary PM2_HOME, so tests never
// touch a developer's own PM2, and always kills that daemon (after the test, or at process exit).
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { z } from 'zod';
import { freePort } from '../helpers/redis-server.ts';

const run = promisify(execFile);
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PM2_BIN = path.join(ROOT, 'node_modules/.bin/pm2');
const ECOSYSTEM = path.join(ROOT, 'ecosystem.config.cjs');
export const APP_NAME = 'pulseboard';

export interface Pm2Worker {
  pmId: number;
  pid: number;
  status: string;
  restarts: number;
}

export interface Pm2Cluster {
  home: string;
  port: number;
  url: string;
  /** Runs the pm2 CLI against this cluster's daemon; resolves with its stdout. */
  pm2(args: string[]): Promise<string>;
  workers(): Promise<Pm2Worker[]>;
  /** Waits until `count` workers are online and /healthz answers 200; returns them. */
  waitForWorkers(count: number, timeoutMs?: number): Promise<Pm2Worker[]>;
  /** `pm2 reload pulseboard`; resolves with how long it took in ms. */
  reload(): Promise<number>;
  /** The end of the daemon's and the workers' logs, to print when a test fails. */
  logs(): Promise<string>;
  /** `pm2 kill` (workers get SIGINT, then the daemon exits) and removes the PM2_HOME. */
  kill(): Promise<void>;
}

export interface Pm2ClusterOptions {
  redisUrl: string;
  prefix: string;
  instances: number;
  /** More environment for the workers (SSE_RETRY_MS, …). */
  env?: Record<string, string>;
}

const jlistSchema = z.array(
  z.object({
    pid: z.number(),
    pm_id: z.number(),
    pm2_env: z.looseObject({ status: z.string(), restart_time: z.number() }),
  }),
);

/** Daemons still running, killed synchronously if the test process exits without `kill()`. */
const running = new Set<string>();
let exitHookInstalled = false;
function killLeftoversAtExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const home of running) {
      try {
        execFileSync(PM2_BIN, ['kill'], { env: { ...process.env, PM2_HOME: home }, stdio: 'ignore' });
      } catch {
        // best effort at exit
      }
    }
  });
}

async function healthy(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
    await response.body?.cancel();
    return response.status === 200;
  } catch {
    return false;
  }
}

async function tail(file: string, lines = 40): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export async function startPm2Cluster(options: Pm2ClusterOptions): Promise<Pm2Cluster> {
  killLeftoversAtExit();
  const home = await mkdtemp(path.join(os.tmpdir(), 'pulseboard-pm2-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PM2_HOME: home,
    PORT: String(port),
    HOST: '127.0.0.1',
    REDIS_URL: options.redisUrl,
    PULSEBOARD_PREFIX: options.prefix,
    WEB_CONCURRENCY: String(options.instances),
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    // As docs/deployment.md has the PM2 daemon started: its workers accept their own connections
    // (`NODE_CLUSTER_SCHED_POLICY=rr` in the environment measures Node's default instead, as the bench's
    // A/B in docs/performance.md did).
    NODE_CLUSTER_SCHED_POLICY: process.env.NODE_CLUSTER_SCHED_POLICY || 'none',
    // ecosystem.config.cjs sets NODE_ENV=production, where /metrics needs a token or this explicit opt-out;
    // these suites scrape it on loopback without one.
    METRICS_PUBLIC: 'true',
    ...options.env,
  };

  const pm2 = async (args: string[]): Promise<string> => {
    const { stdout } = await run(PM2_BIN, args, { env, cwd: ROOT, timeout: 60_000, maxBuffer: 16 << 20 });
    return stdout;
  };

  const workers = async (): Promise<Pm2Worker[]> =>
    jlistSchema.parse(JSON.parse(await pm2(['jlist']))).map((entry) => ({
      pmId: entry.pm_id,
      pid: entry.pid,
      status: entry.pm2_env.status,
      restarts: entry.pm2_env.restart_time,
    }));

  const logs = async (): Promise<string> => {
    const dir = path.join(home, 'logs');
    const files = await readdir(dir).catch(() => [] as string[]);
    const parts = [`--- ${home}/pm2.log\n${await tail(path.join(home, 'pm2.log'))}`];
    for (const file of files) parts.push(`--- ${file}\n${await tail(path.join(dir, file))}`);
    return parts.join('\n');
  };

  const cluster: Pm2Cluster = {
    home,
    port,
    url,
    pm2,
    workers,
    logs,
    async waitForWorkers(count, timeoutMs = 30_000) {
      let latest: Pm2Worker[] = [];
      let ok = false;
      const check = async () => {
        latest = await workers();
        ok =
          latest.length === count &&
          latest.every((worker) => worker.status === 'online' && worker.pid > 0) &&
          (await healthy(url));
      };
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        await check();
        if (ok) return latest;
        if (Date.now() > deadline) {
          throw new Error(`PM2 workers not ready: ${JSON.stringify(latest)}\n${await logs()}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    },
    async reload() {
      const started = performance.now();
      await pm2(['reload', APP_NAME]);
      return performance.now() - started;
    },
    async kill() {
      if (!running.has(home)) return;
      try {
        await pm2(['kill']);
      } finally {
        running.delete(home);
        await rm(home, { recursive: true, force: true });
      }
    },
  };

  running.add(home);
  try {
    await pm2(['start', ECOSYSTEM]);
    await cluster.waitForWorkers(options.instances);
  } catch (error) {
    const output = await logs();
    await cluster.kill();
    throw new Error(`${String(error)}\n${output}`);
  }
  return cluster;
}

/** Waits until a worker with this pm_id runs again under a new pid; returns it. */
export async function waitForRestart(
  cluster: Pm2Cluster,
  pmId: number,
  oldPid: number,
  timeoutMs = 30_000,
): Promise<Pm2Worker> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const restarted = (await cluster.workers()).find(
      (worker) => worker.pmId === pmId && worker.pid !== oldPid && worker.status === 'online',
    );
    if (restarted) return restarted;
    if (Date.now() > deadline) throw new Error(`PM2 did not restart worker ${pmId} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
