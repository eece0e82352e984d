// Refusals are counted and logged (docs/operations.md, "Metrics" and "Logs"): sockets over the per-address
// and the worker's cap, and streams over the per-session quota, each raise
// pulseboard_connections_refused_total{reason} on /metrics by exactly the number refused; a refused
// stream request gets an access-log line (GET /events skips the request log otherwise).
import { expect } from 'chai';
import http from 'node:http';
import net, { type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { loadConfig } from '../../server/config.ts';
import { createLogger } from '../../server/log.ts';
import { startPulseboard } from '../../server/pulseboard.ts';
import { until } from '../helpers/sse-client.ts';
import { useTestBed } from '../helpers/test-bed.ts';
import { connectRaw, openRawStream, type RawStream } from './load-probes.ts';

/** GET from a chosen source address (fetch cannot pick one): status and body. */
function getFrom(url: string, localAddress: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { localAddress, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.once('error', reject);
  });
}

/** pulseboard_connections_refused_total by reason, read from /metrics over HTTP. */
async function refusedCounts(url: string, localAddress: string): Promise<Record<string, number>> {
  const { status, body } = await getFrom(`${url}/metrics`, localAddress);
  expect(status).to.equal(200);
  const counts: Record<string, number> = {};
  for (const line of body.split('\n')) {
    const match = /^pulseboard_connections_refused_total\{reason="([a-z_]+)"\} (\d+)$/.exec(line);
    if (match) counts[match[1]!] = Number(match[2]);
  }
  return counts;
}

/** Reads what a refused socket was answered, until the server closes it. */
function answerOf(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('error', () => undefined);
    socket.once('close', () => resolve(data));
  });
}

describe('refused connections and streams: counted and logged', function () {
  this.timeout(30_000);
  const bed = useTestBed();
  const sockets: Socket[] = [];
  const streams: RawStream[] = [];
  afterEach(function () {
    for (const socket of sockets.splice(0)) socket.destroy();
    for (const stream of streams.splice(0)) stream.close();
  });

  it('counts sockets refused by MAX_CONNECTIONS_PER_IP (per_ip) and MAX_CONNECTIONS (global) on /metrics', async function () {
    const app = await bed.startApp({ MAX_CONNECTIONS_PER_IP: '5', MAX_CONNECTIONS: '9' });
    /** Waits until the worker holds exactly `count` sockets (refused ones close within moments). */
    const holding = async (count: number) => {
      let open = -1;
      for (let attempt = 0; attempt < 100 && open !== count; attempt += 1) {
        open = await new Promise<number>((resolve, reject) =>
          app.server.getConnections((error, value) => (error ? reject(error) : resolve(value))),
        );
        if (open !== count) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(open, 'sockets the worker holds').to.equal(count);
    };
    expect(await refusedCounts(app.url, '127.0.0.3')).to.deep.equal({});
    await holding(0);

    // 12 sockets from 127.0.0.1: 5 held, 7 answered 429 and closed.
    const flood = await Promise.all(Array.from({ length: 12 }, () => connectRaw(app.port, '127.0.0.1')));
    sockets.push(...flood);
    const answers: string[] = [];
    for (const socket of flood) void answerOf(socket).then((answer) => answers.push(answer));
    await until(() => answers.length === 7, 5000, '7 refusals');
    for (const answer of answers) expect(answer).to.match(/^HTTP\/1\.1 429 .*"rate_limited"/s);
    await holding(5);
    expect(await refusedCounts(app.url, '127.0.0.3')).to.deep.equal({ per_ip: 7 });

    // 4 more from 127.0.0.2 fill the worker (9); the next 3, from any address, get 503.
    const others = await Promise.all(Array.from({ length: 4 }, () => connectRaw(app.port, '127.0.0.2')));
    sockets.push(...others);
    await holding(9);
    const over = await Promise.all(Array.from({ length: 3 }, () => connectRaw(app.port, '127.0.0.4')));
    sockets.push(...over);
    for (const answer of await Promise.all(over.map(answerOf))) {
      expect(answer).to.match(/^HTTP\/1\.1 503 .*"unavailable"/s);
    }
    // Free one slot so the scrape itself gets in.
    others[0]!.destroy();
    await holding(8);
    expect(await refusedCounts(app.url, '127.0.0.3')).to.deep.equal({ per_ip: 7, global: 3 });
  });

  it('past 50 answered refusals a second, sheds a flooding address at accept, unanswered, and counts every one', async function () {
    const app = await bed.startApp({ MAX_CONNECTIONS_PER_IP: '5' });
    // Sockets Node made a net.Socket for (a shed connection never gets one).
    let socketsMade = 0;
    app.server.on('connection', () => (socketsMade += 1));
    const started = performance.now();
    // 400 sockets from 127.0.0.1 at once; a socket shed at accept may be reset before it sees 'connect'.
    const outcomes = await Promise.all(
      Array.from(
        { length: 400 },
        () =>
          new Promise<{ socket: Socket; answer: Promise<string> }>((resolve) => {
            const socket = net.connect({ port: app.port, host: '127.0.0.1', localAddress: '127.0.0.1' });
            sockets.push(socket);
            const answer = answerOf(socket);
            socket.once('connect', () => resolve({ socket, answer }));
            socket.once('error', () => resolve({ socket, answer }));
          }),
      ),
    );
    const closed: string[] = [];
    for (const { answer } of outcomes) void answer.then((text) => closed.push(text));
    await until(() => closed.length === 395, 10_000, '395 refusals');
    const seconds = Math.ceil((performance.now() - started) / 1000);
    const answered = closed.filter((text) => /^HTTP\/1\.1 429 .*"rate_limited"/s.test(text)).length;
    const unanswered = closed.filter((text) => text === '').length;
    console.log(
      `      400 sockets, cap 5: 5 held, ${answered} answered 429, ${unanswered} closed unanswered in ` +
        `${seconds} s; ${socketsMade} became a net.Socket`,
    );
    // Every refusal is one or the other; at least the first 50 were answered, at most 50 per second.
    expect(answered + unanswered).to.equal(395);
    expect(answered).to.be.within(50, 50 * (seconds + 1));
    expect(unanswered).to.be.above(0);
    // Shed at accept, on the raw handle: most of the flood never became a socket in the worker.
    expect(socketsMade).to.be.below(400 - 100);
    expect(await refusedCounts(app.url, '127.0.0.3')).to.deep.equal({ per_ip: 395 });
  });

  it('counts and access-logs streams refused by MAX_STREAMS_PER_SESSION (streams_per_session)', async function () {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    const config = loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      REDIS_URL: bed.redis.url,
      PULSEBOARD_PREFIX: bed.prefix,
      LOG_LEVEL: 'info',
      MAX_STREAMS_PER_SESSION: '2',
    });
    const app = bed.trackApp(
      await startPulseboard(config, { log: createLogger('info', sink), defaultMetrics: false }),
    );
    const { headers } = await bed.login(app.url);
    for (let index = 0; index < 2; index += 1) {
      const stream = openRawStream(`${app.url}/events`, headers, '127.0.0.2');
      streams.push(stream);
      expect(await stream.status).to.equal(200);
    }
    const refused = Array.from({ length: 3 }, () => openRawStream(`${app.url}/events`, headers, '127.0.0.2'));
    streams.push(...refused);
    expect(await Promise.all(refused.map((stream) => stream.status))).to.deep.equal([429, 429, 429]);
    // A stream without a session is refused too (401): logged, but not a capacity refusal.
    const anonymous = openRawStream(`${app.url}/events?topics=status`, {}, '127.0.0.2');
    streams.push(anonymous);
    expect(await anonymous.status).to.equal(401);

    expect(await refusedCounts(app.url, '127.0.0.3')).to.deep.equal({ streams_per_session: 3 });
    const logged = lines
      .map((line) => JSON.parse(line) as { msg?: string; status?: number; code?: string; url?: string })
      .filter((record) => record.msg === 'stream refused');
    expect(logged.map((record) => [record.status, record.code, record.url])).to.deep.equal([
      [429, 'too_many_streams', '/events'],
      [429, 'too_many_streams', '/events'],
      [429, 'too_many_streams', '/events'],
      [401, 'unauthorized', '/events?topics=status'],
    ]);
    // The accepted streams are not in the access log (their setup stays as light as before).
    const accepted = lines.filter(
      (line) => line.includes('"url":"/events"') && line.includes('"status":200'),
    );
    expect(accepted).to.deep.equal([]);
  });
});
