// Opening a logged-in stream costs one Redis round trip (docs/architecture.md, "Stream fast path"): one
// script reads the session and the user's record and admits the stream under MAX_STREAMS_PER_SESSION.
// The rolling save is skipped when the session was renewed within the last minute (docs/security.md,
// "Sessions"); when it was not, the fast path leaves the request to the Koa path, which reads the session,
// runs the user+quota script and saves. Counted with MONITOR on the test's own redis-server, never timed.
import { expect } from 'chai';
import { connect } from 'node:net';
import { sessionHandle } from '../../../server/auth/sessions.ts';
import { sessionNames } from '../../../shared/keys.ts';
import { until } from '../../helpers/sse-client.ts';
import { useTestBed, type TestBed } from '../../helpers/test-bed.ts';
import { openRawStream, type RawStream } from '../../helpers/raw-stream.ts';

/**
 * The commands (name and arguments) clients sent Redis that mention `marker`, while `work` ran: MONITOR
 * on a raw socket (its lines are `+<time> [<db> <client>] "CMD" "arg" …`).
 */
async function commandsDuring(url: string, marker: string, work: () => Promise<void>): Promise<string[][]> {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port) });
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (text += chunk));
  try {
    socket.write('MONITOR\r\n');
    await until(() => text.startsWith('+OK\r\n'), 5000, 'MONITOR to start');
    await work();
    // Lines reach the monitor after their command ran; a marked ECHO closes the window.
    const end = `end-${marker}`;
    await bed0().client.sendCommand(['ECHO', end]);
    await until(() => text.includes(end), 5000, 'the monitor to see the end mark');
  } finally {
    socket.destroy();
  }
  return (
    text
      .split('\r\n')
      .filter((line) => line.includes(marker) && !line.includes(`end-${marker}`))
      // Commands a script runs are listed as from `lua`; they are no round trip of their own.
      .filter((line) => !/\[\d+ lua\]/.test(line))
      .map((line) => [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((match) => match[1] ?? ''))
  );
}

/** The session key of a `pulseboard.sid=<id>; pulseboard.sid.sig=…` Cookie header. */
function sessionKeyOf(prefix: string, cookie: string): string {
  const id = /pulseboard\.sid=([^;]+)/.exec(cookie)?.[1];
  if (id === undefined) throw new Error(`no session id in ${cookie}`);
  return sessionNames(prefix).session(sessionHandle(id));
}

let currentBed: TestBed | undefined;
const bed0 = (): TestBed => {
  if (currentBed === undefined) throw new Error('no test bed');
  return currentBed;
};

describe('stream setup round trips', function () {
  this.timeout(30_000);
  const bed = useTestBed();
  currentBed = bed;
  const streams: RawStream[] = [];
  afterEach(function () {
    for (const stream of streams.splice(0)) stream.close();
  });

  /** Opens a stream and returns the Set-Cookie headers it answered. */
  async function open(url: string, headers: Record<string, string>): Promise<string[]> {
    const stream = await openRawStream(url, { headers }).opened;
    streams.push(stream);
    await stream.waitForText(/: pulseboard stream/);
    return (await stream.response).headers['set-cookie'] ?? [];
  }

  it('a stream of a session renewed a moment ago runs one session+user+quota script, nothing else', async function () {
    const app = await bed.startApp({ MAX_STREAMS_PER_SESSION: '4' });
    const session = await bed.login(app.url);
    // The first stream of a worker loads the script and starts following the board.
    await open(`${app.url}/events`, session.headers);
    const key = sessionKeyOf(bed.prefix, session.headers.Cookie ?? '');
    const ttlBefore = await bed.client.pTTL(key);

    let cookies: string[] = [];
    const commands = await commandsDuring(bed.redis.url, bed.prefix, async () => {
      cookies = await open(`${app.url}/events`, session.headers);
    });
    expect(
      commands.map((args) => args[0]?.toUpperCase()),
      JSON.stringify(commands),
    ).to.deep.equal(['EVALSHA']);
    // Nor a new cookie: the browser's keeps the expiry the login gave it, like the key.
    expect(cookies).to.deep.equal([]);
    // The script read the session and the user's record and admitted the stream into the session's set.
    expect(commands[0]).to.include(key);
    expect(commands[0]).to.include(`{${bed.prefix}}:users`);
    expect(await bed.client.zCard(`{${bed.prefix}}:streams:${key.split(':session:')[1] ?? ''}`)).to.equal(2);
    // No rolling save: the key keeps the expiry the login gave it.
    expect(await bed.client.pTTL(key)).to.be.at.most(ttlBefore);
  });

  it('a stream of a session renewed more than a minute ago renews it (SET XX with a full TTL)', async function () {
    const app = await bed.startApp({ MAX_STREAMS_PER_SESSION: '4' });
    const session = await bed.login(app.url);
    await open(`${app.url}/events`, session.headers);
    const key = sessionKeyOf(bed.prefix, session.headers.Cookie ?? '');
    // As if the last request had been two minutes ago.
    const stored = JSON.parse((await bed.client.get(key)) ?? '{}') as { _expire: number; _maxAge: number };
    const aged = { ...stored, _expire: stored._expire - 120_000 };
    await bed.client.set(key, JSON.stringify(aged), {
      expiration: { type: 'PX', value: aged._maxAge - 110_000 },
    });

    let cookies: string[] = [];
    const commands = await commandsDuring(bed.redis.url, bed.prefix, async () => {
      cookies = await open(`${app.url}/events`, session.headers);
    });
    expect(
      commands.map((args) => args[0]?.toUpperCase()),
      JSON.stringify(commands),
    ).to.deep.equal(['EVALSHA', 'GET', 'EVALSHA', 'SET']);
    expect(cookies.some((cookie) => cookie.startsWith('pulseboard.sid='))).to.equal(true);
    expect(commands[3]).to.include('XX');
    // The fast path's script left it (nothing written); the Koa path admitted it: two streams in the set.
    expect(await bed.client.zCard(`{${bed.prefix}}:streams:${key.split(':session:')[1] ?? ''}`)).to.equal(2);
    const renewed = JSON.parse((await bed.client.get(key)) ?? '{}') as { _expire: number };
    expect(renewed._expire).to.be.greaterThan(aged._expire + 60_000);
    expect(await bed.client.pTTL(key)).to.be.greaterThan(aged._maxAge - 60_000);
  });

  it('a request that is not a stream still renews a session renewed a moment ago', async function () {
    const app = await bed.startApp();
    const session = await bed.login(app.url);
    const commands = await commandsDuring(bed.redis.url, bed.prefix, async () => {
      const response = await fetch(`${app.url}/api/session`, { headers: session.headers });
      expect(response.status).to.equal(200);
      await response.arrayBuffer();
    });
    expect(commands.map((args) => args[0]?.toUpperCase())).to.include('SET');
  });
});
