import { expect } from 'chai';
import net from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { createPublisher } from '../../../shared/publisher.ts';
import { startTestApp, stopAll, type TestApp } from '../../helpers/app.ts';
import { login } from '../../helpers/auth.ts';
import { useTestBed } from '../../helpers/test-bed.ts';
import { openStream, until, type RecordedStream } from '../../helpers/sse-client.ts';
import type { SseConnection } from '../../../server/sse/connection.ts';

const LIMIT_BYTES = 64 * 1024;

/** A full GC, so heap figures compare live memory rather than garbage not yet collected. */
function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  const gc: unknown = vm.runInNewContext('gc');
  if (typeof gc === 'function') gc();
}

describe('slow SSE consumers', function () {
  this.timeout(60_000);
  const bed = useTestBed();
  let app: TestApp | undefined;
  let reader: RecordedStream | undefined;
  let stalled: net.Socket | undefined;

  afterEach(async function () {
    reader?.close();
    stalled?.destroy();
    await stopAll([app]);
  });

  it('closes a client that stops reading once its unsent bytes pass SSE_MAX_BUFFER_BYTES; memory stays bounded and other clients get everything', async function () {
    app = await startTestApp(bed.redis.url, {
      PULSEBOARD_PREFIX: bed.prefix,
      SSE_MAX_BUFFER_BYTES: String(LIMIT_BYTES),
    });
    const session = await login(app.url, { redisUrl: bed.redis.url, prefix: bed.prefix });
    reader = openStream(`${app.url}/events`, { headers: session.headers });
    await reader.waitForOpen();

    // A client that sends its request, then never reads a byte: kernel buffers fill, then ours would.
    const socket = net.connect(app.port, '127.0.0.1');
    stalled = socket;
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const headers = Object.entries(session.headers).map(([name, value]) => `${name}: ${value}\r\n`);
    socket.write(`GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers.join('')}\r\n`);
    socket.pause();
    await until(() => app!.hub.size === 2, 5000, 'both streams registered');
    const connections: SseConnection[] = [];
    app.hub.count((connection) => connections.push(connection) > 0);

    collectGarbage();
    const before = process.memoryUsage();
    // Control characters are escaped to 6 bytes each in JSON: every frame is ~12 KB on the wire.
    const text = '\u0001'.repeat(2000);
    const publisher = createPublisher(bed.client, { prefix: bed.prefix, historyMax: 100 });
    const ids: string[] = [];
    let maxPending = 0;
    for (let index = 0; index < 1700; index += 1) {
      ids.push(...(await publisher.publish({ type: 'event', level: 'info', title: `frame ${index}`, text })));
      for (const connection of connections)
        if (!connection.closed) maxPending = Math.max(maxPending, connection.pendingBytes);
    }
    // ~20 MB went out: far beyond the kernel's socket buffers and 300 times the limit.
    await reader.waitFor(
      (events) => events.length === ids.length,
      30_000,
      'every event on the reading client',
    );
    collectGarbage();
    const after = process.memoryUsage();

    const stalledConnection = connections.find((connection) => connection.closeReason === 'slow');
    expect(stalledConnection, 'the stalled connection was closed as slow').to.not.equal(undefined);
    // The stalled bed.client, once it reads again, finds its connection ended by the server.
    let socketClosed = false;
    socket.once('close', () => (socketClosed = true));
    socket.resume();
    await until(() => socketClosed, 5000, 'the stalled socket to be closed by the server');
    expect(app.hub.size).to.equal(1);
    expect((await app.metrics.slowConsumerCloses.get()).values[0]?.value).to.equal(1);
    // Never more queued than the limit plus the frame that would have crossed it.
    expect(maxPending).to.be.at.most(LIMIT_BYTES + 13_000);
    expect(after.heapUsed - before.heapUsed).to.be.below(16 * 1024 * 1024);
    expect(reader.events.map((event) => event.id)).to.deep.equal(ids);
    expect(reader.opens).to.equal(1);
  });
});
