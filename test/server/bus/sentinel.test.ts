// pulseboard behind Sentinel (1 primary, 1 replica, 3 sentinels; redis-server processes started here):
// a worker serves streams through the sentinel client, `POST /api/publish` is acknowledged once the
// replica has the event, and answers 503 replication_timeout with Retry-After while the replica cannot
// acknowledge (SIGSTOP), then 200 again once it can.
import { expect } from 'chai';
import { redisNames } from '../../../shared/keys.ts';
import { TokenStore } from '../../../server/auth/tokens.ts';
import { loadConfig } from '../../../server/config.ts';
import { createLogger } from '../../../server/log.ts';
import { startPulseboard, type Pulseboard } from '../../../server/pulseboard.ts';
import { createConnection, type RedisClient } from '../../../server/redis/topology.ts';
import { uniquePrefix } from '../../helpers/app.ts';
import { startTestSentinels, type TestSentinels } from '../../helpers/redis-sentinel.ts';
import { openStream, type RecordedStream } from '../../helpers/sse-client.ts';

const ADMIN_PASSWORD = 'sentinel-admin-password';

describe('behind Redis Sentinel (1 primary + 1 replica, 3 sentinels)', function () {
  this.timeout(120_000);
  let sentinels: TestSentinels;
  let client: RedisClient;
  let app: Pulseboard | undefined;
  let stream: RecordedStream | undefined;

  before(async function () {
    sentinels = await startTestSentinels();
    client = createConnection(
      {
        REDIS_URL: 'redis://unused',
        REDIS_SENTINELS: sentinels.addresses.split(','),
        REDIS_SENTINEL_NAME: sentinels.name,
        REDIS_TLS: false,
      },
      { reconnectStrategy: () => 100, connectTimeout: 2000 },
    );
    client.on('error', () => undefined);
    await client.connect();
  });
  after(async function () {
    stream?.close();
    await app?.stop();
    await client?.quit().catch(() => undefined);
    await sentinels?.close();
  });

  it('acknowledges a publish once the replica has it, and answers 503 replication_timeout while it cannot', async function () {
    const prefix = uniquePrefix();
    const config = loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      REDIS_SENTINELS: sentinels.addresses,
      REDIS_SENTINEL_NAME: sentinels.name,
      PULSEBOARD_PREFIX: prefix,
      PULSEBOARD_ADMIN_PASSWORD: ADMIN_PASSWORD,
      REDIS_WAIT_TIMEOUT_MS: '300',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    });
    const started = await startPulseboard(config, {
      log: createLogger(config.LOG_LEVEL),
      defaultMetrics: false,
    });
    app = started;
    const { token } = await new TokenStore(client, redisNames(prefix)).create('sentinel-test');
    const login = await fetch(`${started.url}/api/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Origin: started.url },
      body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
    });
    expect(login.status).to.equal(200);
    const cookie = login.headers
      .getSetCookie()
      .map((line) => line.split(';')[0])
      .join('; ');
    stream = openStream(`${started.url}/events`, { headers: { Cookie: cookie } });
    await stream.waitForOpen();
    const publish = (value: number) =>
      fetch(`${started.url}/api/publish`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ type: 'metric', name: 'acked', value }),
      });

    const first = await publish(1);
    expect(first.status, await first.clone().text()).to.equal(200);
    await stream.waitFor((events) => events.length === 1, 5000, 'the first event');

    const primary = await sentinels.primary();
    const pid = sentinels.data.find((node) => node.port !== primary.port)?.pid;
    if (pid === undefined) throw new Error('no replica process');
    process.kill(pid, 'SIGSTOP');
    let refused: Response;
    try {
      refused = await publish(2);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    expect(refused.status).to.equal(503);
    expect(refused.headers.get('retry-after')).to.equal('2');
    const body = (await refused.json()) as { error?: { code?: string; message?: string } };
    expect(body.error?.code).to.equal('replication_timeout');
    expect(body.error?.message).to.match(/0 of 1 required Redis replica/);

    await new Promise((resolve) => setTimeout(resolve, 300));
    const third = await publish(3);
    expect(third.status, await third.clone().text()).to.equal(200);
    await stream.waitFor(
      (events) => events.some((event) => event.type === 'metric' && event.value === 3),
      5000,
      'the third event',
    );
  });
});
