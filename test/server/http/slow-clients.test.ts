import net from 'node:net';
import { expect } from 'chai';
import { createPublisher } from '../../../shared/publisher.ts';
import { useTestBed } from '../../helpers/test-bed.ts';
import { sleep } from '../../helpers/sse-client.ts';

interface RawSocket {
  socket: net.Socket;
  /** Everything the server sent so far. */
  received(): string;
  /** Resolves with the time (ms since `connect`) the server closed the socket. */
  closed: Promise<number>;
}

/** A plain TCP client from `localAddress` (any 127.x.y.z) to the app's port. */
async function connect(port: number, localAddress = '127.0.0.1'): Promise<RawSocket> {
  const socket = net.connect({ host: '127.0.0.1', port, localAddress });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => undefined);
  const started = performance.now();
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  const closed = new Promise<number>((resolve) =>
    socket.once('close', () => resolve(performance.now() - started)),
  );
  return { socket, received: () => text, closed };
}

const statusOf = (text: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);

describe('slow clients and connection caps', function () {
  this.timeout(30_000);
  const bed = useTestBed();
  const sockets: net.Socket[] = [];
  afterEach(function () {
    for (const socket of sockets.splice(0)) socket.destroy();
  });
  const track = (raw: RawSocket) => {
    sockets.push(raw.socket);
    return raw;
  };

  it('a client dribbling its headers is answered 408 and closed within HEADERS_TIMEOUT_MS + 1 s', async function () {
    const app = await bed.startApp({ HEADERS_TIMEOUT_MS: '1500' });
    const slow = track(await connect(app.port));
    slow.socket.write('GET /livez HTTP/1.1\r\nHost: x\r\n');
    const dribble = setInterval(() => slow.socket.write('X-Slow: 1\r\n'), 300);
    try {
      const closedAfter = await slow.closed;
      expect(statusOf(slow.received())).to.equal(408);
      expect(closedAfter).to.be.within(1400, 3000);
    } finally {
      clearInterval(dribble);
    }
    // Everyone else was served meanwhile and still is.
    expect((await fetch(`${app.url}/livez`)).status).to.equal(200);
  });

  it('a stream outlives REQUEST_TIMEOUT_MS: the timeout bounds receiving the request, not the response', async function () {
    const app = await bed.startApp({ HEADERS_TIMEOUT_MS: '1000', REQUEST_TIMEOUT_MS: '1000' });
    const session = await bed.login(app.url);
    const stream = bed.openStream(`${app.url}/events`, { headers: session.headers });
    await stream.waitForOpen();
    await sleep(3500); // past requestTimeout and several connection checks
    const publisher = createPublisher(bed.client, { prefix: bed.prefix });
    await publisher.publish({ type: 'status', service: 'api', state: 'ok' });
    await stream.waitFor((events) => events.length === 1);
    expect({ opens: stream.opens, errors: stream.errors }).to.deep.equal({ opens: 1, errors: 0 });
  });

  it('one address beyond MAX_CONNECTIONS_PER_IP gets 429 and a close; other addresses are served; it recovers', async function () {
    const app = await bed.startApp({ MAX_CONNECTIONS_PER_IP: '5' });
    const held = [];
    for (let i = 0; i < 5; i += 1) held.push(track(await connect(app.port, '127.0.0.2')));
    const refused = track(await connect(app.port, '127.0.0.2'));
    await refused.closed;
    expect(statusOf(refused.received())).to.equal(429);
    expect(refused.received()).to.match(/\r\nRetry-After: \d+\r\n/);
    expect(refused.received()).to.match(
      /\r\n\r\n\{"error":\{"code":"rate_limited","message":"too many connections from this address"\}\}$/,
    );
    // Another client is not affected.
    const other = track(await connect(app.port, '127.0.0.3'));
    other.socket.write('GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await other.closed;
    expect(statusOf(other.received())).to.equal(200);
    // When the flood ends, the address is served again.
    held[0]!.socket.destroy();
    await held[0]!.closed;
    await sleep(50);
    const again = track(await connect(app.port, '127.0.0.2'));
    again.socket.write('GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await again.closed;
    expect(statusOf(again.received())).to.equal(200);
  });

  it('beyond MAX_CONNECTIONS a worker answers 503 with Retry-After and closes; never runs the request', async function () {
    const app = await bed.startApp({ MAX_CONNECTIONS: '6', MAX_CONNECTIONS_PER_IP: '100' });
    for (let i = 0; i < 6; i += 1) track(await connect(app.port, `127.0.1.${i + 1}`));
    const refused = track(await connect(app.port, '127.0.2.1'));
    refused.socket.write('GET /livez HTTP/1.1\r\nHost: x\r\n\r\n');
    await refused.closed;
    expect(statusOf(refused.received())).to.equal(503);
    expect(refused.received()).to.match(/\r\nRetry-After: \d+\r\n/);
    // One answer only: the refused request never reached the app.
    expect(refused.received().match(/HTTP\/1\.1/g)).to.have.length(1);
  });
});
