// The three systems under test, each started fresh for a measurement and stopped after it:
// pulseboard as it runs in production (the real ecosystem.config.cjs under a PM2 daemon in a temporary
// PM2_HOME, logged-in streams) and the two ceilings (ceiling-naive.ts, ceiling-coalescing.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { boardKeys } from '../shared/keys.ts';
import { login } from '../test/helpers/auth.ts';
import { freePort } from '../test/helpers/redis-server.ts';
import { startPm2Cluster } from '../test/ops/pm2-cluster.ts';
import { spawnTracked, stopChild, trackPids } from './processes.ts';

export type SystemName = 'pulseboard' | 'coalescing' | 'naive';
export const SYSTEM_NAMES: readonly SystemName[] = ['pulseboard', 'coalescing', 'naive'];

export interface RunningSystem {
  name: SystemName;
  host: string;
  port: number;
  /** Session cookies to spread the streams over ([] when the system has no auth). */
  cookies: string[];
  /** The processes that serve streams (PM2 or cluster workers; not the PM2 daemon or cluster primary). */
  workerPids(): Promise<number[]>;
  /** Where its workers write their memory after a forced GC (server/memory-report.ts). */
  memoryDir: string;
  /** The end of the server's own logs (pulseboard: PM2 daemon and workers), kept when a run lost events. */
  logs(): Promise<string>;
  stop(): Promise<void>;
}

export interface SystemOptions {
  redisUrl: string;
  prefix: string;
  workers: number;
  /** Streams that will be opened: pulseboard gets one login session per STREAMS_PER_SESSION of them. */
  streams: number;
  /** Boards the bench user is granted (its streams carry all of them); empty: `main` only. */
  boards: readonly string[];
  /** pulseboard only: its workers write V8 CPU profiles here when they stop (`--cpu-prof`). */
  cpuProfileDir?: string;
  /**
   * Ceilings only: `own` starts them in a session of their own (setsid), as PM2's daemon starts
   * pulseboard's workers, so every system's server is one scheduling group apart from the load driver
   * (docs/performance.md, "Scheduling: one group per server"); `bench`: in the bench's own session.
   */
  ceilingSession: CeilingSession;
}

export type CeilingSession = 'own' | 'bench';

/**
 * Streams per login session. Each browser would have its own session; logins are rate- and
 * CPU-limited (scrypt), so the bench shares one session among this many streams and raises
 * MAX_STREAMS_PER_SESSION (twice that, as a storm's reconnect may arrive before the old stream is gone). Every stream still carries and checks its cookie.
 */
const STREAMS_PER_SESSION = 250;
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The memory report folders not yet removed; one exit listener for all of them. */
const memoryDirs = new Set<string>();
const removeMemoryDirs = () => {
  for (const dir of memoryDirs) removeMemoryDir(dir);
};

/** A temporary folder for the workers' memory reports, removed when the system stops or the bench exits. */
function memoryReportDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pulseboard-bench-memory-'));
  if (memoryDirs.size === 0) process.on('exit', removeMemoryDirs);
  memoryDirs.add(dir);
  return dir;
}

function removeMemoryDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  memoryDirs.delete(dir);
  if (memoryDirs.size === 0) process.off('exit', removeMemoryDirs);
}

async function startPulseboard(options: SystemOptions): Promise<RunningSystem> {
  const memoryDir = memoryReportDir();
  const cluster = await startPm2Cluster({
    redisUrl: options.redisUrl,
    prefix: options.prefix,
    instances: options.workers,
    env: {
      MAX_STREAMS_PER_SESSION: String(STREAMS_PER_SESSION * 2),
      // The bench's clients come from a few loopback addresses and log in once per 250 streams: the
      // per-address connection cap and the per-account session limit (sized for browsers) are lifted, the
      // fd limit (20,000 per process) stays the real bound.
      MAX_CONNECTIONS: '20000',
      MAX_CONNECTIONS_PER_IP: '20000',
      LOGIN_MAX_SESSIONS_PER_USER: '1000',
      LOG_LEVEL: 'warn',
      // SIGUSR2 from the bench: a full GC, then the worker's memory (bench only, server/memory-report.ts).
      BENCH_MEMORY_DIR: memoryDir,
      ...(options.cpuProfileDir === undefined ? {} : { BENCH_CPU_PROFILE_DIR: options.cpuProfileDir }),
    },
  });
  // startPm2Cluster kills its daemon synchronously at exit (Ctrl-C, errors); this listener, added after
  // the helper's, then removes the temporary PM2_HOME (removing it first would make `pm2 kill` start a
  // new daemon there).
  const removeHome = () => rmSync(cluster.home, { recursive: true, force: true });
  process.on('exit', removeHome);
  try {
    const sessions = Math.max(1, Math.ceil(options.streams / STREAMS_PER_SESSION));
    const cookies: string[] = [];
    for (let index = 0; index < sessions; index += 1) {
      const session = await login(cluster.url, {
        redisUrl: options.redisUrl,
        prefix: options.prefix,
        username: 'bench',
        ...(options.boards.length > 0 ? { boards: options.boards } : {}),
      });
      cookies.push(session.headers.Cookie!);
    }
    return {
      name: 'pulseboard',
      host: '127.0.0.1',
      port: cluster.port,
      cookies,
      memoryDir,
      workerPids: async () => (await cluster.workers()).map((worker) => worker.pid),
      logs: () => cluster.logs(),
      async stop() {
        process.off('exit', removeHome);
        await cluster.kill();
        removeMemoryDir(memoryDir);
      },
    };
  } catch (error) {
    process.off('exit', removeHome);
    await cluster.kill();
    throw error;
  }
}

async function startCeiling(name: 'naive' | 'coalescing', options: SystemOptions): Promise<RunningSystem> {
  const port = await freePort();
  const memoryDir = memoryReportDir();
  const child = spawnTracked(process.execPath, ['--import', 'tsx', `bench/ceiling-${name}.ts`], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      REDIS_URL: options.redisUrl,
      CHANNELS: (options.boards.length > 0 ? options.boards : ['main'])
        .map((board) => boardKeys(options.prefix, board).channel)
        .join(','),
      WORKERS: String(options.workers),
      BENCH_MEMORY_DIR: memoryDir,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
    // With the kernel's autogroup scheduling (on by default), CPU is shared fairly between sessions first,
    // then between the threads of one session: PM2's daemon is always a session of its own.
    detached: options.ceilingSession === 'own',
  });
  const lines = createInterface({ input: child.stdout! });
  const ready = new Promise<number[]>((resolve, reject) => {
    lines.on('line', (line) => {
      const parsed = JSON.parse(line) as { ready?: number[] };
      if (parsed.ready) resolve(parsed.ready);
    });
    child.once('exit', (code) =>
      reject(new Error(`${name} ceiling exited with ${code} before it was ready`)),
    );
  });
  const timeout = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const pids = await ready.finally(() => clearTimeout(timeout));
  const untrack = trackPids(pids);
  return {
    name,
    host: '127.0.0.1',
    port,
    cookies: [],
    memoryDir,
    workerPids: async () => pids,
    logs: async () => '',
    async stop() {
      await stopChild(child, 'SIGTERM');
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // exited with the primary
        }
      }
      untrack();
      lines.close();
      removeMemoryDir(memoryDir);
    },
  };
}

export async function startSystem(name: SystemName, options: SystemOptions): Promise<RunningSystem> {
  return name === 'pulseboard' ? startPulseboard(options) : startCeiling(name, options);
}
