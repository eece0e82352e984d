// docs/reliability.md: while Redis is unreachable, a request that needs it answers 503 with Retry-After
// within REDIS_REQUEST_TIMEOUT_MS instead of waiting in node-redis' offline queue; a blip shorter than
// that (the connection dropped and re-made) only delays requests.
import { expect } from 'chai';
import { errorResponseSchema } from '../../shared/api.ts';
import { useTestBed } from '../helpers/test-bed.ts';

async function expectUnavailable(url: string, headers: Record<string, string>): Promise<void> {
  const started = performance.now();
  const answers = await Promise.all(
    [
      fetch(`${url}/api/session`, { headers, signal: AbortSignal.timeout(8000) }),
      fetch(`${url}/api/snapshot`, { headers, signal: AbortSignal.timeout(8000) }),
      fetch(`${url}/api/login`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Origin: url },
        body: JSON.stringify({ username: 'alice', password: 'whatever it is' }),
        signal: AbortSignal.timeout(8000),
      }),
    ].map(async (pending) => {
      const response = await pending;
      return {
        status: response.status,
        retryAfter: response.headers.get('retry-after'),
        code: errorResponseSchema.parse(await response.json()).error.code,
        ms: performance.now() - started,
      };
    }),
  );
  for (const answer of answers) {
    expect(answer.status).to.equal(503);
    expect(answer.code).to.equal('redis_unavailable');
    expect(Number(answer.retryAfter)).to.be.greaterThan(0);
    // The deadline is 1 s per command still queued; well before the fetch gives up at 8 s.
    expect(answer.ms).to.be.below(4000);
  }
  // Health and liveness never wait for Redis.
  expect((await fetch(`${url}/livez`)).status).to.equal(200);
}

describe('requests while Redis is away', function () {
  this.timeout(30_000);
  const bed = useTestBed({ tolerateRedisErrors: true, redis: { own: true } });

  it('answers 503 with Retry-After within the deadline, for session and login requests', async function () {
    const app = await bed.startApp({ REDIS_REQUEST_TIMEOUT_MS: '1000' });
    const session = await bed.login(app.url, { username: 'alice' });
    await bed.redis.stop();
    try {
      await expectUnavailable(app.url, session.headers);
    } finally {
      await bed.redis.start();
    }
  });

  it('a 100 ms blip (the connection killed and re-made) turns no request into an error', async function () {
    const app = await bed.startApp({ REDIS_REQUEST_TIMEOUT_MS: '2000' });
    const session = await bed.login(app.url, { username: 'alice' });
    const statuses: number[] = [];
    let running = true;
    const load = (async () => {
      while (running) {
        const batch = await Promise.all(
          Array.from({ length: 5 }, () =>
            fetch(`${app.url}/api/session`, { headers: session.headers }).then((r) => r.status),
          ),
        );
        statuses.push(...batch);
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Kill the worker's command connection three times; node-redis reconnects within ~50 ms each time.
    for (let kill = 0; kill < 3; kill += 1) {
      await bed.client.sendCommand(['CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes']);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    running = false;
    await load;
    expect(statuses.length).to.be.greaterThan(20);
    expect(statuses.filter((status) => status !== 200)).to.deep.equal([]);
  });
});
