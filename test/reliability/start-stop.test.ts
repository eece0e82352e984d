// A worker that fails to start (port in use) leaves nothing behind, and a
// stopping worker lets requests in flight finish before it closes Redis.
import { once } from 'node:events';
import net from 'node:net';
import { expect } from 'chai';
import { UserStore } from '../../server/auth/users.ts';
import { metricsNames, redisNames, sessionNames } from '../../shared/keys.ts';
import { startTestApp } from '../helpers/app.ts';
import { sessionResponseSchema } from '../../shared/api.ts';
import { useTestBed } from '../helpers/test-bed.ts';
import { until } from '../helpers/sse-client.ts';

/** Names of the pulseboard connections Redis currently sees. */
async function pulseboardClients(client: {
  sendCommand(args: string[]): Promise<unknown>;
}): Promise<string[]> {
  const list = String(await client.sendCommand(['CLIENT', 'LIST']));
  return [...list.matchAll(/ name=(pulseboard:\S+)/g)].map((match) => match[1] ?? '');
}

describe('worker start and stop', function () {
  this.timeout(30_000);
  const bed = useTestBed();

  it('a start that fails (port in use) closes its Redis connections, timers and cluster registration', async function () {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as net.AddressInfo;
    const sockets = () => process.getActiveResourcesInfo().filter((kind) => kind === 'TCPSocketWrap').length;
    const socketsBefore = sockets();
    try {
      const failed = await startTestApp(bed.redis.url, { PULSEBOARD_PREFIX: bed.prefix, PORT: String(port) })
        .then((app) => bed.trackApp(app))
        .catch((error: unknown) => error);
      expect((failed as { code?: unknown }).code).to.equal('EADDRINUSE');
      await until(
        () => sockets() <= socketsBefore,
        2000,
        'the failed worker to close its Redis sockets',
      ).catch(() => undefined);
      expect(sockets(), 'sockets still open in this process').to.be.at.most(socketsBefore);
      expect(await pulseboardClients(bed.client)).to.deep.equal([]);
      const workers = await bed.client.zRange(metricsNames(bed.prefix).workers, 0, -1);
      expect(workers, 'registered as a live worker').to.deep.equal([]);
    } finally {
      blocker.close();
    }
  });

  it('a login in flight when stop begins completes: its session is saved before Redis closes', async function () {
    const app = await bed.startApp({ LOG_LEVEL: 'silent' });
    // A slower hash than the tests' usual one, so the login is surely in flight when stop() begins.
    const users = new UserStore(bed.client, redisNames(bed.prefix), { scrypt: { N: 2 ** 15, r: 8, p: 1 } });
    await users.add('alice', 'correct horse battery staple', 'viewer');
    const received = once(app.server, 'request');
    const pending = fetch(`${app.url}/api/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Origin: app.url },
      body: JSON.stringify({ username: 'alice', password: 'correct horse battery staple' }),
    });
    await received;
    const stopped = app.stop();
    const response = await pending;
    await stopped;
    expect(response.status).to.equal(200);
    sessionResponseSchema.parse(await response.json());
    const sessions = await bed.client.keys(sessionNames(bed.prefix).sessionPattern);
    expect(sessions).to.have.length(1);
  });
});
