// The bench's own redis-server on a free loopback port, so runs never touch a developer's Redis and the
// server is always stopped (processes.ts kills it even on Ctrl-C).
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitForPing } from '../test/helpers/redis-server.ts';
import { atExit, spawnTracked, stopChild } from './processes.ts';

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
  // Its data folder goes at exit too (redis-server runs with --save '', so removing it early is harmless).
  const forgetDir = atExit(() => rmSync(dir, { recursive: true, force: true }));
  await waitForPing(url).catch((error: unknown) => {
    throw new Error(`redis-server did not start (apt-get install redis-server): ${String(error)}`);
  });
  return {
    url,
    async close() {
      forgetDir();
      await stopChild(child, 'SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}
