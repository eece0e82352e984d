// A real installation for browser tests: a private redis-server, the client bundled into a private
// folder (built once per test run, from the current sources), pulseboard workers serving it, a Redis
// client to publish with, and a user to log in as.
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createClient } from 'redis';
import { redisNames } from '../../../shared/keys.ts';
import { createPublisher, type Publisher } from '../../../shared/publisher.ts';
import { loadConfig } from '../../../server/config.ts';
import { createLogger } from '../../../server/log.ts';
import { startPulseboard, type Pulseboard } from '../../../server/pulseboard.ts';
import type { RedisClient } from '../../../server/redis.ts';
import { ensureTestUser, TEST_PASSWORD } from '../../helpers/auth.ts';
import { uniquePrefix } from '../../helpers/app.ts';
import { startTestRedis, type TestRedis } from '../../helpers/redis-server.ts';

const PROJECT = fileURLToPath(new URL('../../../', import.meta.url));
let built: Promise<string> | undefined;

/** Bundles the client once per process into a temporary folder; returns the folder. */
export function buildClientOnce(): Promise<string> {
  built ??= (async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pulseboard-client-'));
    // Shared by every test file of the run, so it goes when the process does.
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', path.join(PROJECT, 'client', 'build.ts'), '--outdir', dir],
      { cwd: PROJECT },
    );
    return dir;
  })();
  return built;
}

export interface BrowserEnvironment {
  redis: TestRedis;
  prefix: string;
  publicDir: string;
  /** Commands and raw PUBLISH on the installation's Redis. */
  client: RedisClient;
  publisher: Publisher;
  /** Apps started by `startApp` (stopping one twice is harmless). */
  apps: Pulseboard[];
  username: string;
  password: string;
  /** Starts a worker; `port` reuses a port (to restart "the same server"). */
  startApp(options?: { port?: number; env?: Record<string, string> }): Promise<Pulseboard>;
  /** Publishes raw JSON on the ingest channel, as `redis-cli PUBLISH` would. */
  publishRaw(event: Record<string, unknown>): Promise<void>;
  close(): Promise<void>;
}

export async function startEnvironment(env: Record<string, string> = {}): Promise<BrowserEnvironment> {
  const [redis, publicDir] = await Promise.all([startTestRedis(), buildClientOnce()]);
  const prefix = uniquePrefix();
  const client: RedisClient = createClient({ url: redis.url });
  client.on('error', () => undefined);
  await client.connect();
  const username = 'operator';
  await ensureTestUser(redis.url, prefix, username, 'viewer');
  const apps: Pulseboard[] = [];

  const environment: BrowserEnvironment = {
    redis,
    prefix,
    publicDir,
    client,
    publisher: createPublisher(client, { prefix }),
    apps,
    username,
    password: TEST_PASSWORD,
    async startApp(options = {}) {
      const config = loadConfig({
        PORT: String(options.port ?? 0),
        HOST: '127.0.0.1',
        REDIS_URL: redis.url,
        PULSEBOARD_PREFIX: prefix,
        PULSEBOARD_ADMIN_PASSWORD: 'not-used-in-browser-tests',
        SSE_RETRY_MS: '300',
        LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
        ...env,
        ...options.env,
      });
      const app = await startPulseboard(config, {
        log: createLogger(config.LOG_LEVEL),
        defaultMetrics: false,
        publicDir,
      });
      apps.push(app);
      return app;
    },
    async publishRaw(event) {
      await client.publish(redisNames(prefix).ingestChannel, JSON.stringify(event));
    },
    async close() {
      await Promise.allSettled(apps.map((app) => app.stop()));
      await client.quit().catch(() => undefined);
      await redis.close();
    },
  };
  return environment;
}
