// The bench's own redis-server on a free loopback port, so runs never touch a developer's Redis and the
// server is always stopped (processes.ts kills it even on Ctrl-C).
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createClient } from 'redis';
import { freePort } from '../test/helpers/redis-server.ts';
import { spawnTracked, stopChild } from './processes.ts';

export interface BenchRedis {
  url: string;
  close(): Promise<void>;
}

export async function startBenchRedis(): Promise<BenchRedis> {
  const port = await freePort();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pulseboard-bench-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  const child = spawnTracked(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  );
  const deadline = Date.now() + 10_000;
  for (;;) {
    const client = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 500 } });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.ping();
      await client.quit();
      break;
    } catch (error) {
      client.destroy();
      if (child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`redis-server did not start (apt-get install redis-server): ${String(error)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    url,
    async close() {
      await stopChild(child, 'SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}
