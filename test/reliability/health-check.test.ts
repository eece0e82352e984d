// Issue 14, item 15: the background health check has an in-flight guard: while Redis is slow, checks
// share the PING in flight instead of stacking one per interval.
import { expect } from 'chai';
import { createClient } from 'redis';
import { Health } from '../../server/http/health.ts';
import { createMetrics } from '../../server/metrics/worker-metrics.ts';
import type { RedisClient } from '../../server/redis.ts';
import { useTestBed } from '../helpers/test-bed.ts';

async function pingCalls(client: RedisClient): Promise<number> {
  const info = await client.info('commandstats');
  return Number(/cmdstat_ping:calls=(\d+)/.exec(info)?.[1] ?? 0);
}

describe('health check', function () {
  this.timeout(20_000);
  const bed = useTestBed();

  it('sends one PING while Redis is slow, however often it is asked, and reports the outcome to all', async function () {
    const checked: RedisClient = createClient({ url: bed.redis.url });
    const blocker: RedisClient = createClient({ url: bed.redis.url });
    await Promise.all([checked.connect(), blocker.connect()]);
    try {
      const health = new Health({
        redis: checked,
        subscriberLive: () => true,
        metrics: createMetrics({ defaults: false }),
        timeoutMs: 300,
      });
      const before = await pingCalls(bed.client);
      // Redis answers nothing for 800 ms (DEBUG SLEEP is disabled in Redis 7 by default).
      await blocker.sendCommand(['CLIENT', 'PAUSE', '800', 'ALL']);
      const checks = Array.from({ length: 10 }, () => health.check());
      await Promise.all(checks);
      expect(health.report().checks.redis, 'a PING slower than timeoutMs fails the check').to.equal('fail');
      await new Promise((resolve) => setTimeout(resolve, 800));
      // The one PING of the checks above (answered late), plus the one this helper sends: none stacked.
      expect((await pingCalls(bed.client)) - before).to.equal(1);
      await health.check();
      expect(health.report().checks.redis).to.equal('ok');
    } finally {
      await Promise.all([checked.quit(), blocker.quit()]);
    }
  });
});
