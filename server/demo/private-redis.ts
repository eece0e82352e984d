// For `pulseboard demo` on a machine without a running Redis: start a private redis-server with its data
// under .data/redis (git-ignored), or explain how to get one.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { createClient } from 'redis';

export async function redisAnswers(url: string, timeoutMs = 1500): Promise<boolean> {
  const client = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: timeoutMs } });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
    await client.quit();
    return true;
  } catch {
    client.destroy();
    return false;
  }
}

/** A TCP port free on loopback right now (the kernel picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no free port')),
      );
    });
  });
}

export const NO_REDIS_HELP = `pulseboard needs Redis 7 and none answered.
  - Debian/Ubuntu: sudo apt-get install redis-server   (then run this again; the demo starts a private one)
  - macOS:         brew install redis
  - Docker:        docker compose up -d redis            (then REDIS_URL=redis://127.0.0.1:6379)
  - or point REDIS_URL at a Redis you have.`;

export interface PrivateRedis {
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

/** Starts redis-server on a free loopback port with persistence in `dataDir`; null when not installed. */
export async function startPrivateRedis(dataDir: string): Promise<PrivateRedis | null> {
  await mkdir(dataDir, { recursive: true });
  const port = await freePort();
  const child: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      path.resolve(dataDir),
      '--appendonly',
      'yes',
      '--save',
      '60 1',
    ],
    { stdio: 'ignore' },
  );
  const spawned = await new Promise<boolean>((resolve) => {
    child.once('error', () => resolve(false));
    child.once('spawn', () => resolve(true));
  });
  if (!spawned) return null;
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  while (!(await redisAnswers(url, 500))) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`the private redis-server on port ${port} did not start`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    dataDir,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
