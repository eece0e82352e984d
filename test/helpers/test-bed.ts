// The common fixture of the server suites: one Redis (and client) per describe block, a fresh key prefix
// per test, and apps and streams that are always closed after each test. Call useTestBed() in a describe
// block; its properties are filled in by the mocha hooks it registers, so read them only inside tests
// and hooks. Whatever the bed starts is known to its cleanup before it starts: a hook or test that fails
// half-way (Redis up, the client not; one app of two started) leaves no server behind.
import { createClient, type RedisClientOptions } from 'redis';
import type { RedisClient } from '../../server/redis.ts';
import { startTestApp, stopAll, uniquePrefix, type TestApp } from './app.ts';
import { login, type LoginOptions, type TestSession } from './auth.ts';
import { startTestRedis, type TestRedis, type TestRedisOptions } from './redis-server.ts';
import { openStream, type RecordedStream, type StreamOptions } from './sse-client.ts';

export interface TestBedOptions {
  /** Connect a node-redis client for the tests (default true). */
  client?: boolean;
  /** Swallow the client's connection errors, for tests that stop Redis on purpose. */
  tolerateRedisErrors?: boolean;
  /** Options of the test's redis-server (e.g. appendonly). */
  redis?: TestRedisOptions;
}

export interface TestBed {
  readonly redis: TestRedis;
  readonly client: RedisClient;
  /** A fresh PULSEBOARD_PREFIX for the current test. */
  readonly prefix: string;
  /** Apps started or tracked in the current test. */
  readonly apps: readonly TestApp[];
  /** Streams opened or tracked in the current test. */
  readonly streams: readonly RecordedStream[];
  /** Starts an app on the current prefix (plus `env`), stopped after the test. */
  startApp(env?: Record<string, string>): Promise<TestApp>;
  /** Stops an app started some other way after the test. */
  trackApp<T extends TestApp>(app: T): T;
  /** Logs in at `baseUrl` (see auth.ts) as a user of the current prefix. */
  login(baseUrl: string, options?: Omit<LoginOptions, 'redisUrl' | 'prefix'>): Promise<TestSession>;
  /** Closes a stream after the test. */
  track(stream: RecordedStream): RecordedStream;
  /** Opens a stream that is closed after the test. */
  openStream(url: string, options?: StreamOptions): RecordedStream;
  /** One more client of the bed's Redis (its errors swallowed), closed after the suite, before the server. */
  connect(options?: Omit<RedisClientOptions, 'url'>): Promise<RedisClient>;
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`useTestBed: ${what} is only set inside tests and hooks`);
  return value;
}

export function useTestBed(options: TestBedOptions = {}): TestBed {
  let redis: TestRedis | undefined;
  let client: RedisClient | undefined;
  let prefix: string | undefined;
  let apps: TestApp[] = [];
  /** Apps still starting: the cleanup waits for them, then stops the ones that came up. */
  let starting: Promise<unknown>[] = [];
  let streams: RecordedStream[] = [];
  const extraClients: RedisClient[] = [];

  before(async function () {
    redis = await startTestRedis(options.redis);
    if (options.client === false) return;
    client = createClient({ url: redis.url });
    if (options.tolerateRedisErrors) client.on('error', () => undefined);
    await client.connect();
  });
  after(async function () {
    const clients = client ? [client, ...extraClients] : extraClients;
    await Promise.allSettled(
      clients.map(async (each) => {
        try {
          if (each.isOpen) await each.quit();
        } catch {
          each.destroy();
        }
      }),
    );
    await redis?.close();
  });
  beforeEach(function () {
    prefix = uniquePrefix();
  });
  afterEach(async function () {
    for (const stream of streams) stream.close();
    streams = [];
    await Promise.allSettled(starting);
    starting = [];
    await stopAll(apps);
    apps = [];
  });

  const bed: TestBed = {
    get redis() {
      return required(redis, 'redis');
    },
    get client() {
      if (options.client === false) throw new Error('useTestBed: created with { client: false }');
      return required(client, 'client');
    },
    get prefix() {
      return required(prefix, 'prefix');
    },
    get apps() {
      return apps;
    },
    get streams() {
      return streams;
    },
    async startApp(env = {}) {
      const started = startTestApp(bed.redis.url, { PULSEBOARD_PREFIX: bed.prefix, ...env });
      // An app that fails to start is the caller's error to see; the cleanup only needs the ones that run.
      starting.push(
        started.then(
          (app) => apps.push(app),
          () => undefined,
        ),
      );
      return started;
    },
    trackApp(app) {
      apps.push(app);
      return app;
    },
    login(baseUrl, loginOptions = {}) {
      return login(baseUrl, { ...loginOptions, redisUrl: bed.redis.url, prefix: bed.prefix });
    },
    track(stream) {
      streams.push(stream);
      return stream;
    },
    openStream(url, streamOptions) {
      return bed.track(openStream(url, streamOptions));
    },
    async connect(clientOptions = {}) {
      const extra: RedisClient = createClient({ ...clientOptions, url: bed.redis.url });
      extra.on('error', () => undefined);
      extraClients.push(extra);
      await extra.connect();
      return extra;
    },
  };
  return bed;
}
