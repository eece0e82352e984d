// MAX_STREAMS_PER_SESSION is counted across every worker of the installation (Redis),
// and the streams of a worker that died without closing them stop counting when their lease runs out.
import http from 'node:http';
import { Socket } from 'node:net';
import { expect } from 'chai';
import { StreamQuota } from '../../server/auth/stream-quota.ts';
import { createLogger } from '../../server/log.ts';
import { errorResponseSchema } from '../../shared/api.ts';
import { redisNames } from '../../shared/keys.ts';
import { until } from '../helpers/sse-client.ts';
import { useTestBed } from '../helpers/test-bed.ts';

/** A real, unsent response object: admit() only needs its 'close' event. */
function response(): http.ServerResponse {
  return new http.ServerResponse(new http.IncomingMessage(new Socket()));
}

function isTooMany(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'too_many_streams';
}

describe('stream quota across workers', function () {
  this.timeout(30_000);
  const bed = useTestBed();

  it('refuses a session its third stream when two are open on two other workers, and admits again after one closes', async function () {
    const env = { MAX_STREAMS_PER_SESSION: '2' };
    const [first, second, third] = [
      await bed.startApp(env),
      await bed.startApp(env),
      await bed.startApp(env),
    ];
    const session = await bed.login(first.url, { username: 'alice' });
    const a = bed.openStream(`${first.url}/events`, { headers: session.headers });
    const b = bed.openStream(`${second.url}/events`, { headers: session.headers });
    await Promise.all([a.waitForOpen(), b.waitForOpen()]);

    const refused = await fetch(`${third.url}/events`, { headers: session.headers });
    expect(refused.status).to.equal(429);
    expect(errorResponseSchema.parse(await refused.json()).error.code).to.equal('too_many_streams');
    expect(third.hub.size).to.equal(0);

    // Another session of the same user has its own count.
    const other = await bed.login(first.url, { username: 'alice' });
    await bed.openStream(`${third.url}/events`, { headers: other.headers }).waitForOpen();

    a.close();
    await until(() => first.hub.size === 0, 3000, 'the first stream to end on its worker');
    // The release is one ZREM after the close; allow it a moment.
    let admitted: Response | undefined;
    for (let attempt = 0; attempt < 30 && admitted?.status !== 200; attempt += 1) {
      const controller = new AbortController();
      admitted = await fetch(`${third.url}/events`, { headers: session.headers, signal: controller.signal });
      if (admitted.status === 200) controller.abort();
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(admitted?.status).to.equal(200);
  });

  it('a worker that stops renewing (killed) frees its slots when the lease runs out; a live one keeps them', async function () {
    const names = redisNames(bed.prefix);
    const log = createLogger('silent');
    const options = { redis: bed.client, names, limit: 2, log, leaseMs: 600 };
    const killed = new StreamQuota(options);
    const alive = new StreamQuota(options);
    const elsewhere = new StreamQuota(options);
    alive.start();
    try {
      await killed.admit('session-a', response());
      await killed.admit('session-a', response());
      await alive.admit('session-b', response());
      await alive.admit('session-b', response());
      const refusedA = await elsewhere.admit('session-a', response()).catch((error: unknown) => error);
      expect(isTooMany(refusedA)).to.equal(true);
      // `killed` never renews (as after SIGKILL); `alive` renews every 200 ms.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await elsewhere.admit('session-a', response());
      const refusedB = await elsewhere.admit('session-b', response()).catch((error: unknown) => error);
      expect(isTooMany(refusedB), 'the live worker still holds both leases').to.equal(true);
    } finally {
      alive.stop();
    }
  });

  it('releases the slot when the response closes', async function () {
    const quota = new StreamQuota({
      redis: bed.client,
      names: redisNames(bed.prefix),
      limit: 1,
      log: createLogger('silent'),
    });
    const held = response();
    await quota.admit('session-a', held);
    expect(isTooMany(await quota.admit('session-a', response()).catch((error: unknown) => error))).to.equal(
      true,
    );
    held.emit('close');
    await until(() => quota.size === 0, 1000, 'the local release');
    await new Promise((resolve) => setTimeout(resolve, 50));
    await quota.admit('session-a', response());
  });

  it('a worker that stops releases every lease at once, even before its responses report their close', async function () {
    const options = {
      redis: bed.client,
      names: redisNames(bed.prefix),
      limit: 2,
      log: createLogger('silent'),
    };
    const stopping = new StreamQuota(options);
    const elsewhere = new StreamQuota(options);
    // Two open streams whose 'close' has not come round yet (a reload's worker ending its streams).
    await stopping.admit('session-a', response());
    await stopping.admit('session-a', response());
    const refused = await elsewhere.admit('session-a', response()).catch((error: unknown) => error);
    expect(isTooMany(refused)).to.equal(true);
    await stopping.releaseAll();
    expect(stopping.size).to.equal(0);
    // Their clients reconnect to another worker at once, and are let in.
    await elsewhere.admit('session-a', response());
    await elsewhere.admit('session-a', response());
  });
});
