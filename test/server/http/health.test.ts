import { expect } from 'chai';
import { createPublisher } from '../../../shared/publisher.ts';
import type { TestApp } from '../../helpers/app.ts';
import { useTestBed } from '../../helpers/test-bed.ts';

interface HealthAnswer {
  status: number;
  body: { status?: string; checks?: Record<string, unknown> };
}

async function probe(url: string): Promise<HealthAnswer> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return { status: response.status, body: (await response.json()) as HealthAnswer['body'] };
}

/** Polls `url` every 50 ms until `accept` holds; resolves with the answer and how long it took. */
async function pollUntil(
  url: string,
  accept: (answer: HealthAnswer) => boolean,
  timeoutMs: number,
): Promise<{ answer: HealthAnswer; ms: number }> {
  const started = performance.now();
  for (;;) {
    const answer = await probe(url);
    if (accept(answer)) return { answer, ms: performance.now() - started };
    if (performance.now() - started > timeoutMs) {
      throw new Error(`${url} still answers ${answer.status} ${JSON.stringify(answer.body)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('health endpoints', function () {
  this.timeout(30_000);
  // One test stops Redis: a server of its own, also when REDIS_URL is set.
  const bed = useTestBed({ tolerateRedisErrors: true, redis: { own: true } });
  let app: TestApp | undefined;

  beforeEach(async function () {
    app = await bed.startApp();
  });

  it('answers 200 on /livez, /healthz and /readyz without a session while Redis is up', async function () {
    for (const path of ['/livez', '/healthz', '/readyz']) {
      const response = await fetch(`${app!.url}${path}`);
      expect(response.status, path).to.equal(200);
      expect(response.headers.get('cache-control'), path).to.equal('no-store');
      expect(response.headers.get('set-cookie'), path).to.equal(null);
    }
    const { body } = await probe(`${app!.url}/healthz`);
    expect(body).to.deep.equal({
      status: 'ok',
      checks: { redis: 'ok', subscriber: 'ok', draining: false },
    });
  });

  it('turns 503 naming the failing checks within 3 s of Redis stopping, and 200 with delivery resuming once it is back', async function () {
    const session = await bed.login(app!.url);
    const stream = bed.openStream(`${app!.url}/events`, { headers: session.headers });
    await stream.waitForOpen();

    await bed.redis.stop();
    let downMs: number;
    try {
      // Polled longer than the bound, so a late turn fails on the bound with its measured time.
      const down = await pollUntil(`${app!.url}/healthz`, (answer) => answer.status === 503, 10_000);
      downMs = down.ms;
      expect(down.ms).to.be.below(3000);
      expect(down.answer.body).to.deep.equal({
        status: 'unavailable',
        checks: { redis: 'fail', subscriber: 'fail', draining: false },
      });
      expect((await probe(`${app!.url}/readyz`)).status).to.equal(503);
      // Liveness is about the process only: restarting it would not bring Redis back.
      expect((await probe(`${app!.url}/livez`)).status).to.equal(200);
    } finally {
      await bed.redis.start();
    }

    const up = await pollUntil(`${app!.url}/healthz`, (answer) => answer.status === 200, 10_000);
    expect(up.answer.body.checks).to.include({ redis: 'ok', subscriber: 'ok' });

    // Redis came back empty (no persistence in tests): a new login and stream, plus the one left open.
    const again = await bed.login(app!.url);
    const fresh = bed.openStream(`${app!.url}/events`, { headers: again.headers });
    await fresh.waitForOpen();
    const [id] = await createPublisher(bed.client, { prefix: bed.prefix }).publish({
      type: 'status',
      service: 'redis',
      state: 'ok',
      message: 'back',
    });
    for (const open of [stream, fresh]) {
      await open.waitFor((events) => events.some((event) => event.id === id), 5000, `event ${id}`);
    }
    console.log(
      `      health: 503 ${Math.round(downMs)} ms after Redis stopped; 200 ${Math.round(up.ms)} ms after it started`,
    );
  });

  it('turns 503 with draining the moment a graceful stop begins', async function () {
    const stopping = app!.stop();
    expect(app!.health.report()).to.deep.equal({
      status: 'unavailable',
      checks: { redis: 'ok', subscriber: 'ok', draining: true },
    });
    await stopping;
  });
});
