// A private redis-server per test file, on a free port, so tests are hermetic and can stop and restart
// Redis on purpose. With REDIS_URL set, tests use that server instead (and cannot stop it), except the
// suites that ask for a server of their own (`own: true`): those that stop, pause or restart Redis.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createClient } from 'redis';
import { freePort } from '../../server/demo/private-redis.ts';

export { freePort };

/**
 * Every redis-server this process started and that still runs (standalone, cluster and sentinel nodes: `track`
 * each one). A suite whose `before all` fails after starting one may never reach the code that stops it;
 * none outlives the test process.
 */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

export function track(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const server of running) server.kill('SIGKILL');
  });
}

export interface TestRedis {
  url: string;
  port: number;
  /** Whether this harness owns the server (false when REDIS_URL is used). */
  owned: boolean;
  /** Stops the server abruptly (SIGKILL), as a crash would. */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
  /** Stops it cleanly with `redis-cli shutdown` (with appendonly, everything acknowledged is on disk). */
  shutdown(): Promise<void>;
  /** Stops it for good and removes its folder. */
  close(): Promise<void>;
}

/** Resolves once a Redis at `url` answers PING; throws after `timeoutMs`. */
export async function waitForPing(url: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 500 } });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.ping();
      await client.quit();
      return;
    } catch (error) {
      client.destroy();
      if (Date.now() > deadline) throw new Error(`redis at ${url} did not answer: ${String(error)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

export interface TestRedisOptions {
  /** Persist with an append-only file in the server's folder (survives shutdown() and start()). */
  appendonly?: boolean;
  /** A private server even when REDIS_URL is set: the suite stops or restarts it. */
  own?: boolean;
}

export async function startTestRedis(options: TestRedisOptions = {}): Promise<TestRedis> {
  if (process.env.REDIS_URL && !options.own) {
    const url = process.env.REDIS_URL;
    await waitForPing(url);
    const refuse = async () => {
      throw new Error('this test needs its own redis-server; unset REDIS_URL');
    };
    return {
      url,
      port: Number(new URL(url).port || 6379),
      owned: false,
      stop: refuse,
      start: refuse,
      shutdown: refuse,
      close: async () => undefined,
    };
  }
  const port = await freePort();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pulseboard-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;

  async function start(): Promise<void> {
    const proc = spawn(
      'redis-server',
      [
        ...['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir],
        ...['--appendonly', options.appendonly ? 'yes' : 'no'],
      ],
      { stdio: 'ignore' },
    );
    child = proc;
    track(proc);
    await new Promise<void>((resolve, reject) => {
      proc.once('error', (error) =>
        reject(
          new Error(
            `cannot start redis-server (is it installed? apt-get install redis-server): ${error.message}`,
          ),
        ),
      );
      waitForPing(url).then(resolve, reject);
    });
  }

  async function stop(): Promise<void> {
    const proc = child;
    if (!proc || proc.exitCode !== null) return;
    child = undefined;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGKILL');
    });
  }

  async function shutdown(): Promise<void> {
    const proc = child;
    if (!proc || proc.exitCode !== null) return;
    child = undefined;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    // redis-cli reports the closed connection of a successful SHUTDOWN as an error: the exit is the answer.
    spawn('redis-cli', ['-p', String(port), 'shutdown'], { stdio: 'ignore' });
    await exited;
  }

  async function close(): Promise<void> {
    await stop();
    await rm(dir, { recursive: true, force: true });
  }

  // A server that never answered is still a process: stop it before reporting the failure.
  await start().catch(async (error: unknown) => {
    await close();
    throw error;
  });
  return {
    url,
    port,
    owned: true,
    stop,
    start,
    shutdown,
    close,
  };
}
