// A real installation for browser tests: a private redis-server, the client bundled into a private
// folder (built once per test run, from the current sources), pulseboard workers serving it, a Redis
// client to publish with, and a user to log in as. A browser suite starts it with Chromium through
// `startEnvironmentAndBrowser`, which leaves nothing running when either fails to start.
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Browser } from 'playwright-core';
import { createClient } from 'redis';
import { redisNames } from '../../../shared/keys.ts';
import { createPublisher, type Publisher } from '../../../shared/publisher.ts';
import { loadConfig, type Config } from '../../../server/config.ts';
import { createLogger } from '../../../server/log.ts';
import { startPulseboard, type Pulseboard } from '../../../server/pulseboard.ts';
import type { RedisClient } from '../../../server/redis.ts';
import { ensureTestUser, TEST_PASSWORD } from '../../helpers/auth.ts';
import { uniquePrefix } from '../../helpers/app.ts';
import { startTestRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { launchChromium } from './chromium.ts';

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

/** A worker's configuration; throws (ConfigError) on a variable the server would refuse. */
function workerConfig(redisUrl: string, prefix: string, env: Record<string, string>, port = 0): Config {
  return loadConfig({
    PORT: String(port),
    HOST: '127.0.0.1',
    REDIS_URL: redisUrl,
    PULSEBOARD_PREFIX: prefix,
    PULSEBOARD_ADMIN_PASSWORD: 'not-used-in-browser-tests',
    SSE_RETRY_MS: '300',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...env,
  });
}

/** `env`: variables for every worker it starts, checked before anything starts. */
export async function startEnvironment(env: Record<string, string> = {}): Promise<BrowserEnvironment> {
  workerConfig('redis://127.0.0.1:6379', 'unused', env);
  const [redisStart, built] = await Promise.allSettled([startTestRedis(), buildClientOnce()]);
  if (redisStart.status === 'rejected') throw redisStart.reason;
  const redis = redisStart.value;
  // From here on, a failure stops what already runs before it is reported.
  const client: RedisClient = createClient({ url: redis.url });
  client.on('error', () => undefined);
  try {
    if (built.status === 'rejected') throw built.reason;
    await client.connect();
    const prefix = uniquePrefix();
    const username = 'operator';
    await ensureTestUser(redis.url, prefix, username, 'viewer');
    return environmentOn(redis, built.value, client, prefix, username, env);
  } catch (error) {
    if (client.isOpen) await client.quit().catch(() => undefined);
    await redis.close();
    throw error;
  }
}

function environmentOn(
  redis: TestRedis,
  publicDir: string,
  client: RedisClient,
  prefix: string,
  username: string,
  env: Record<string, string>,
): BrowserEnvironment {
  const apps: Pulseboard[] = [];
  return {
    redis,
    prefix,
    publicDir,
    client,
    publisher: createPublisher(client, { prefix }),
    apps,
    username,
    password: TEST_PASSWORD,
    async startApp(options = {}) {
      const config = workerConfig(redis.url, prefix, { ...env, ...options.env }, options.port);
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
}

export interface EnvironmentAndBrowser {
  env: BrowserEnvironment;
  browser: Browser;
}

/** What `startEnvironmentAndBrowser` starts (a test of the helper swaps in starters of its own). */
export interface Starters {
  environment(env: Record<string, string>): Promise<BrowserEnvironment>;
  browser(): Promise<Browser>;
}

const STARTERS: Starters = { environment: startEnvironment, browser: launchChromium };

/**
 * A browser suite's `before all`: the environment and Chromium, started side by side. When either fails,
 * the other is stopped once it has started, then the first failure is thrown: a suite whose start fails
 * leaves no redis-server, worker or browser running for the rest of the run (docs/design.md, "Tests").
 * The suite's `after` closes both (`await browser?.close(); await env?.close();`).
 */
export async function startEnvironmentAndBrowser(
  env: Record<string, string> = {},
  starters: Starters = STARTERS,
): Promise<EnvironmentAndBrowser> {
  const [environment, browser] = await Promise.allSettled([starters.environment(env), starters.browser()]);
  if (environment.status === 'fulfilled' && browser.status === 'fulfilled')
    return { env: environment.value, browser: browser.value };
  await Promise.allSettled([
    environment.status === 'fulfilled' ? environment.value.close() : undefined,
    browser.status === 'fulfilled' ? browser.value.close() : undefined,
  ]);
  throw environment.status === 'rejected' ? environment.reason : (browser as PromiseRejectedResult).reason;
}
