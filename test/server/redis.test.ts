// The request path's Redis deadline (server/redis.ts, docs/reliability.md "Redis outages"): a command still
// unwritten after REDIS_REQUEST_TIMEOUT_MS fails with a TimeoutError; the commands of a 100 ms window share
// one abort signal and one timer instead of node-redis' `AbortSignal.timeout` per command.
import { expect } from 'chai';
import { TimeoutError } from 'redis';
import { loadConfig } from '../../server/config.ts';
import { createLogger } from '../../server/log.ts';
import { createRedisClient, isRedisUnavailable, withRequestDeadline } from '../../server/redis.ts';
import type { RedisClient } from '../../server/redis.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';

describe('the request deadline on Redis commands', function () {
  this.timeout(30_000);
  let redis: TestRedis;
  let client: RedisClient;

  before(async function () {
    redis = await startTestRedis({ own: true });
  });
  after(async function () {
    await redis.close();
  });
  beforeEach(async function () {
    client = createRedisClient(loadConfig({ REDIS_URL: redis.url }), 'deadline-test', createLogger('silent'));
    await client.connect();
  });
  afterEach(function () {
    client.destroy();
  });

  it('answers commands written at once without a timer per command', async function () {
    const timed = withRequestDeadline(client, 500);
    const created = AbortSignal.timeout;
    let timers = 0;
    AbortSignal.timeout = (ms: number) => {
      timers += 1;
      return created.call(AbortSignal, ms);
    };
    try {
      await timed.set('deadline-test:key', 'value');
      const replies = await Promise.all(Array.from({ length: 200 }, () => timed.get('deadline-test:key')));
      expect(replies.every((reply) => reply === 'value')).to.equal(true);
    } finally {
      AbortSignal.timeout = created;
    }
    expect(timers).to.equal(0);
  });

  it('gives a duplicate that still answers once the window it was made in is over', async function () {
    const timed = withRequestDeadline(client, 200);
    await timed.set('deadline-test:key', 'value');
    const copy = timed.duplicate();
    copy.on('error', () => undefined);
    await copy.connect();
    try {
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(await copy.get('deadline-test:key')).to.equal('value');
      expect(await timed.get('deadline-test:key')).to.equal('value');
    } finally {
      copy.destroy();
    }
  });

  it('fails a command still waiting to be written after the deadline with a TimeoutError', async function () {
    const timed = withRequestDeadline(client, 500);
    await timed.set('deadline-test:key', 'value');
    await redis.stop();
    try {
      const started = performance.now();
      const error: unknown = await timed.get('deadline-test:key').then(
        () => undefined,
        (failure: unknown) => failure,
      );
      const ms = performance.now() - started;
      expect(error).to.be.instanceOf(TimeoutError);
      expect(isRedisUnavailable(error)).to.equal(true);
      // The deadline, plus at most the 100 ms window, plus scheduling.
      expect(ms).to.be.within(450, 1500);
    } finally {
      await redis.start();
    }
    // Once Redis is back the same connection serves again.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await timed.get('deadline-test:key')).to.equal(null);
  });
});
