// The stream fast path (docs/architecture.md, "Stream fast path"): a `GET /events` whose cookie is signed
// with the current key and whose session was renewed within the last minute is checked and opened without
// Koa; everything else goes through the Koa path. Pinned here: both paths answer the same headers, and
// what the fast path leaves to Koa (an older signing key, a forged signature, a voided session, a full
// quota) is answered as before, with nothing admitted twice.
import { expect } from 'chai';
import type { IncomingHttpHeaders } from 'node:http';
import { sessionHandle } from '../../../server/auth/sessions.ts';
import type { RedisClient } from '../../../server/redis.ts';
import { authNames, sessionNames } from '../../../shared/keys.ts';
import { withUsers } from '../../helpers/auth.ts';
import { until } from '../../helpers/sse-client.ts';
import { useTestBed } from '../../helpers/test-bed.ts';
import { openRawStream, type RawStream } from '../../helpers/raw-stream.ts';

function sessionIdOf(cookie: string): string {
  const id = /pulseboard\.sid=([^;]+)/.exec(cookie)?.[1];
  if (id === undefined) throw new Error(`no session id in ${cookie}`);
  return id;
}

/** As if the session had been renewed two minutes ago: its next stream is due for renewal (Koa path). */
async function ageSession(client: RedisClient, prefix: string, cookie: string): Promise<void> {
  const key = sessionNames(prefix).session(sessionHandle(sessionIdOf(cookie)));
  const stored = JSON.parse((await client.get(key)) ?? '{}') as { _expire: number };
  await client.set(key, JSON.stringify({ ...stored, _expire: stored._expire - 120_000 }), {
    XX: true,
    KEEPTTL: true,
  });
}

/** The headers that must match between two answers: all but the per-response ones. */
function comparable(headers: IncomingHttpHeaders): Record<string, unknown> {
  const { date: _date, 'set-cookie': _cookie, ...rest } = headers;
  return rest;
}

describe('stream fast path', function () {
  this.timeout(30_000);
  const bed = useTestBed();
  const streams: RawStream[] = [];
  afterEach(function () {
    for (const stream of streams.splice(0)) stream.close();
  });

  async function open(url: string, headers: Record<string, string>): Promise<RawStream> {
    const stream = await openRawStream(url, { headers }).opened;
    streams.push(stream);
    return stream;
  }

  function streamsOf(cookie: string): Promise<number> {
    return bed.client.zCard(authNames(bed.prefix).streams(sessionHandle(sessionIdOf(cookie))));
  }

  it('answers the same headers as the Koa path, with no cookie', async function () {
    const app = await bed.startApp();
    let contexts = 0;
    const createContext = app.koa.createContext.bind(app.koa);
    app.koa.createContext = (req, res) => {
      if (req.url?.startsWith('/events')) contexts += 1;
      return createContext(req, res);
    };
    const session = await bed.login(app.url);
    await ageSession(bed.client, bed.prefix, session.headers.Cookie ?? '');
    const viaKoa = await open(`${app.url}/events`, session.headers);
    await viaKoa.waitForText(/: pulseboard stream/);
    expect(contexts, 'the aged session went through Koa').to.equal(1);
    const fast = await open(`${app.url}/events`, session.headers);
    await fast.waitForText(/: pulseboard stream/);
    expect(contexts, 'the renewed session took the fast path').to.equal(1);
    expect((await viaKoa.response).headers['set-cookie'], 'the Koa path renewed the session').to.not.equal(
      undefined,
    );
    expect((await fast.response).headers['set-cookie']).to.equal(undefined);
    expect(comparable((await fast.response).headers)).to.deep.equal(
      comparable((await viaKoa.response).headers),
    );
    // Both paths leave the document-only headers off the stream (docs/security.md, "Security headers").
    expect((await fast.response).headers['x-content-type-options']).to.equal('nosniff');
    expect((await fast.response).headers['content-security-policy']).to.equal(undefined);
    expect((await fast.response).headers['x-frame-options']).to.equal(undefined);
    expect((await fast.response).headers['strict-transport-security']).to.equal(undefined);
    expect(await streamsOf(session.headers.Cookie ?? '')).to.equal(2);
  });

  it('sends HSTS on the fast path when a trusted proxy says the request came over HTTPS', async function () {
    const app = await bed.startApp({ TRUST_PROXY: 'true' });
    const session = await bed.login(app.url);
    const fast = await open(`${app.url}/events`, { ...session.headers, 'X-Forwarded-Proto': 'https' });
    await fast.waitForText(/: pulseboard stream/);
    expect((await fast.response).headers['strict-transport-security']).to.include('max-age=');
  });

  it('leaves a cookie signed with an older key to Koa, which re-signs it', async function () {
    const oldKey = 'old-signing-key-0123456789';
    const before = await bed.startApp({ SESSION_KEYS: oldKey });
    const session = await bed.login(before.url);
    const after = await bed.startApp({ SESSION_KEYS: `new-signing-key-0123456789,${oldKey}` });
    const stream = await open(`${after.url}/events`, session.headers);
    expect(await stream.status).to.equal(200);
    await stream.waitForText(/: pulseboard stream/);
    const cookies = (await stream.response).headers['set-cookie'] ?? [];
    expect(cookies.some((cookie) => cookie.startsWith('pulseboard.sid.sig='))).to.equal(true);
    expect(await streamsOf(session.headers.Cookie ?? '')).to.equal(1);
  });

  it('answers 401 to a forged signature, admitting nothing', async function () {
    const app = await bed.startApp();
    const session = await bed.login(app.url);
    const cookie = (session.headers.Cookie ?? '').replace(
      /pulseboard\.sid\.sig=[^;]+/,
      'pulseboard.sid.sig=AAAA',
    );
    const stream = await open(`${app.url}/events`, { Cookie: cookie });
    expect(await stream.status).to.equal(401);
    expect(await streamsOf(cookie)).to.equal(0);
  });

  it("answers 401 once the user's password changed, admitting nothing", async function () {
    const app = await bed.startApp();
    const session = await bed.login(app.url);
    await withUsers(bed.redis.url, bed.prefix, (users) =>
      users.setPassword(session.username, 'another long password'),
    );
    const stream = await open(`${app.url}/events`, session.headers);
    expect(await stream.status).to.equal(401);
    expect(await streamsOf(session.headers.Cookie ?? '')).to.equal(0);
  });

  it('answers 429 past MAX_STREAMS_PER_SESSION with one lease per open stream', async function () {
    const app = await bed.startApp({ MAX_STREAMS_PER_SESSION: '2' });
    const session = await bed.login(app.url);
    for (let index = 0; index < 2; index += 1) {
      const stream = await open(`${app.url}/events`, session.headers);
      await stream.waitForText(/: pulseboard stream/);
    }
    const refused = await open(`${app.url}/events`, session.headers);
    expect(await refused.status).to.equal(429);
    await refused.ended;
    expect(await streamsOf(session.headers.Cookie ?? '')).to.equal(2);
    for (const stream of streams.splice(0)) stream.close();
    let held = 2;
    const count = () => void streamsOf(session.headers.Cookie ?? '').then((value) => (held = value));
    await until(() => (count(), held === 0), 5000, 'the leases released');
  });
});
