import http from 'node:http';
import { expect } from 'chai';
import { EventSource } from 'eventsource';
import { errorResponseSchema, sessionResponseSchema } from '../../../shared/api.ts';
import {
  deleteSessionByHandle,
  readSessionsByHandle,
  SESSION_COOKIE,
  sessionHandle,
} from '../../../server/auth/sessions.ts';
import { redisNames, sessionNames } from '../../../shared/keys.ts';
import { TEST_PASSWORD } from '../../helpers/auth.ts';
import { sleep, until } from '../../helpers/sse-client.ts';
import { useTestBed } from '../../helpers/test-bed.ts';
import { cookieValue, loginRequest, setCookies } from './requests.ts';

describe('sessions', function () {
  this.timeout(30_000);
  const bed = useTestBed();

  describe('without a session', function () {
    it('answers 401 JSON on /events and /api/snapshot, and redirects / to /login', async function () {
      const app = await bed.startApp();
      for (const path of ['/events', '/api/snapshot', '/api/session', '/api/anything']) {
        const response = await fetch(`${app.url}${path}`);
        expect(response.status, path).to.equal(401);
        expect(response.headers.get('content-type'), path).to.match(/^application\/json/);
        expect(errorResponseSchema.parse(await response.json()).error.code, path).to.equal('unauthorized');
      }
      const page = await fetch(`${app.url}/`, { redirect: 'manual' });
      expect(page.status).to.equal(302);
      expect(page.headers.get('location')).to.equal('/login');
      const filtered = await fetch(`${app.url}/?filter=metric%3Aapi.*`, { redirect: 'manual' });
      expect(filtered.status).to.equal(302);
      expect(filtered.headers.get('location')).to.equal(
        `/login?next=${encodeURIComponent('/?filter=metric%3Aapi.*')}`,
      );
    });

    it('serves the login page, its assets and the health endpoints', async function () {
      const app = await bed.startApp();
      for (const path of ['/login', '/assets/app.css', '/livez', '/healthz', '/readyz']) {
        const response = await fetch(`${app.url}${path}`);
        expect(response.status, path).to.equal(200);
      }
    });

    it('lets /metrics through to its own bearer check and /api/publish to its token check', async function () {
      const app = await bed.startApp({ METRICS_TOKEN: 'metrics-token-0123456789' });
      const metrics = await fetch(`${app.url}/metrics`, {
        headers: { Authorization: 'Bearer metrics-token-0123456789' },
      });
      expect(metrics.status).to.equal(200);
      const publish = await fetch(`${app.url}/api/publish`, { method: 'POST' });
      expect(publish.status).to.equal(401);
      expect(publish.headers.get('www-authenticate')).to.match(/^Bearer/);
    });

    it('an EventSource gets 401 and stops (the page must send the user to /login)', async function () {
      const app = await bed.startApp();
      const opened = bed.openStream(`${app.url}/events`, { headers: {} });
      await until(() => opened.source.readyState === EventSource.CLOSED, 5000, 'the stream to fail');
      expect(opened.opens).to.equal(0);
    });
  });

  describe('login cookie', function () {
    it('is HttpOnly, SameSite=Lax, signed and not Secure over plain http', async function () {
      const app = await bed.startApp();
      await bed.login(app.url, { username: 'alice' });
      const response = await loginRequest(app.url, 'alice', TEST_PASSWORD);
      expect(response.status).to.equal(200);
      const body = sessionResponseSchema.parse(await response.json());
      expect(body.user).to.deep.equal({ name: 'alice', role: 'viewer' });
      const cookies = setCookies(response);
      const session = cookies.get(SESSION_COOKIE) ?? '';
      expect(session).to.match(/;\s*httponly/i);
      expect(session).to.match(/;\s*samesite=lax/i);
      expect(session).to.match(/;\s*path=\//i);
      expect(session).to.not.match(/;\s*secure/i);
      // Signed: koa's cookies add a .sig cookie with the HMAC of the value.
      expect(cookies.get(`${SESSION_COOKIE}.sig`)).to.match(/^pulseboard\.sid\.sig=[A-Za-z0-9_-]{20,};/);
    });

    it('is Secure when the request came over HTTPS through a trusted proxy', async function () {
      const app = await bed.startApp({ TRUST_PROXY: 'true' });
      await bed.login(app.url, { username: 'alice' });
      const host = new URL(app.url).host;
      const response = await loginRequest(app.url, 'alice', TEST_PASSWORD, {
        'X-Forwarded-Proto': 'https',
        Origin: `https://${host}`,
      });
      expect(response.status).to.equal(200);
      for (const [name, line] of setCookies(response)) expect(line, name).to.match(/;\s*secure/i);
    });

    it('is not Secure when X-Forwarded-Proto comes from an untrusted client', async function () {
      const app = await bed.startApp({ TRUST_PROXY: 'false' });
      await bed.login(app.url, { username: 'alice' });
      const response = await loginRequest(app.url, 'alice', TEST_PASSWORD, { 'X-Forwarded-Proto': 'https' });
      expect(response.status).to.equal(200);
      expect(setCookies(response).get(SESSION_COOKIE)).to.not.match(/;\s*secure/i);
    });

    it('gets a new session id at login, and the old id stops working (no fixation)', async function () {
      const app = await bed.startApp();
      const first = await bed.login(app.url, { username: 'alice' });
      const again = await loginRequest(app.url, 'alice', TEST_PASSWORD, first.headers);
      expect(again.status).to.equal(200);
      const before = cookieValue(first.headers.Cookie!, SESSION_COOKIE);
      const after = setCookies(again).get(SESSION_COOKIE)?.split(';')[0]?.split('=')[1];
      // 256 bits from the CSPRNG, base64url (docs/security.md): not koa-session's default UUID.
      expect(after)
        .to.match(/^[A-Za-z0-9_-]{43}$/)
        .and.not.equal(before);
      const old = await fetch(`${app.url}/api/session`, { headers: first.headers });
      expect(old.status).to.equal(401);
    });

    it('refuses a tampered cookie, and an unsigned one', async function () {
      const app = await bed.startApp();
      const session = await bed.login(app.url, { username: 'alice' });
      const cookie = session.headers.Cookie!;
      const id = cookieValue(cookie, SESSION_COOKIE)!;
      const flipped = id.slice(0, -1) + (id.endsWith('A') ? 'B' : 'A');
      const tampered = cookie.replace(`${SESSION_COOKIE}=${id}`, `${SESSION_COOKIE}=${flipped}`);
      const unsigned = `${SESSION_COOKIE}=${id}`;
      expect((await fetch(`${app.url}/api/session`, { headers: session.headers })).status).to.equal(200);
      expect((await fetch(`${app.url}/api/session`, { headers: { Cookie: tampered } })).status).to.equal(401);
      expect((await fetch(`${app.url}/api/session`, { headers: { Cookie: unsigned } })).status).to.equal(401);
    });

    it('keeps only a hash of the session id in Redis', async function () {
      const app = await bed.startApp();
      const session = await bed.login(app.url, { username: 'alice' });
      const id = cookieValue(session.headers.Cookie!, SESSION_COOKIE)!;
      const keys = await bed.client.keys(sessionNames(bed.prefix).sessionPattern);
      expect(keys).to.deep.equal([sessionNames(bed.prefix).session(sessionHandle(id))]);
      expect(keys[0]).to.not.include(id);
    });

    it('reads sessions by handle for the stream check: gone, expired and corrupt ones are absent', async function () {
      const app = await bed.startApp();
      const handles = await Promise.all(
        ['alice', 'bob', 'carol', 'dave'].map(async (username) => {
          const session = await bed.login(app.url, { username });
          return sessionHandle(cookieValue(session.headers.Cookie!, SESSION_COOKIE)!);
        }),
      );
      const [live, expired, corrupt, gone] = handles as [string, string, string, string];
      const names = redisNames(bed.prefix);
      const key = (handle: string) => sessionNames(bed.prefix).session(handle);
      const stored = JSON.parse((await bed.client.get(key(expired))) ?? 'null') as Record<string, unknown>;
      await bed.client.set(key(expired), JSON.stringify({ ...stored, _expire: Date.now() - 1 }));
      await bed.client.set(key(corrupt), '{not json');
      await deleteSessionByHandle(bed.client, names, gone);
      expect(await bed.client.exists(key(gone))).to.equal(0);

      const read = await readSessionsByHandle(bed.client, names, handles);
      expect([...read.keys()]).to.deep.equal([live]);
      expect(read.get(live)).to.include({ user: 'alice' });
    });
  });

  describe('across instances', function () {
    it('a session made on one instance works on another sharing Redis, and logout on the first closes a stream on the second within a second', async function () {
      const [first, second] = [await bed.startApp(), await bed.startApp()];
      const session = await bed.login(first!.url, { username: 'alice' });

      const onSecond = await fetch(`${second!.url}/api/session`, { headers: session.headers });
      expect(onSecond.status).to.equal(200);
      expect(sessionResponseSchema.parse(await onSecond.json()).user.name).to.equal('alice');

      const opened = bed.openStream(`${second!.url}/events`, { headers: session.headers });
      await opened.waitForOpen();
      expect(second!.hub.size).to.equal(1);

      const logout = await fetch(`${first!.url}/api/logout`, {
        method: 'POST',
        headers: session.csrfHeaders,
      });
      expect(logout.status).to.equal(204);
      const loggedOutAt = Date.now();
      await until(
        () => second!.hub.size === 0 && opened.errors > 0,
        1000,
        'the stream on the second instance to close',
      );
      expect(Date.now() - loggedOutAt).to.be.below(1000);
      // Its reconnect is refused: the session is gone everywhere.
      await until(
        () => opened.source.readyState === EventSource.CLOSED,
        10_000,
        'the reconnect to be refused',
      );
      expect((await fetch(`${second!.url}/api/session`, { headers: session.headers })).status).to.equal(401);
    });

    it('a logout published by a worker of the previous release (close-session naming the handle `sessionId`) still closes the stream', async function () {
      const app = await bed.startApp();
      const session = await bed.login(app.url, { username: 'alice' });
      const opened = bed.openStream(`${app.url}/events`, { headers: session.headers });
      await opened.waitForOpen();
      expect(app.hub.size).to.equal(1);
      const id = cookieValue(session.headers.Cookie ?? '', 'pulseboard.sid');
      if (id === undefined) throw new Error('no session cookie');
      await bed.client.publish(
        redisNames(bed.prefix).controlChannel,
        JSON.stringify({ type: 'close-session', sessionId: sessionHandle(id) }),
      );
      await until(() => app.hub.size === 0, 2000, 'the stream to close');
    });

    it('logout on one worker is final: a request still running on another cannot renew the session', async function () {
      const [first, second] = [await bed.startApp(), await bed.startApp()];
      const session = await bed.login(first!.url, { username: 'alice' });
      // A request carrying the cookie whose body is still on its way: the session is read when it
      // starts and koa-session saves it (rolling) when it ends, after the logout below.
      const body = JSON.stringify({ username: 'alice', password: 'not the password' });
      const inFlight = new Promise<number>((resolve, reject) => {
        const request = http.request(`${first!.url}/api/login`, {
          method: 'POST',
          agent: false,
          headers: {
            ...session.csrfHeaders,
            'Content-Type': 'application/json',
            'Content-Length': String(Buffer.byteLength(body)),
          },
        });
        request.on('response', (response) => {
          response.resume();
          response.on('end', () => resolve(response.statusCode ?? 0));
        });
        request.on('error', reject);
        request.write(body.slice(0, 5));
        setTimeout(() => request.end(body.slice(5)), 400);
      });
      await sleep(150);
      const logout = await fetch(`${second!.url}/api/logout`, {
        method: 'POST',
        headers: { ...session.csrfHeaders, Origin: new URL(second!.url).origin },
      });
      expect(logout.status).to.equal(204);
      expect(await inFlight).to.equal(401);
      for (const app of [first!, second!]) {
        const again = await fetch(`${app.url}/api/session`, { headers: session.headers });
        expect(again.status, app.url).to.equal(401);
      }
      expect(await bed.client.keys(sessionNames(bed.prefix).sessionPattern)).to.deep.equal([]);
    });

    it('signs with the first SESSION_KEYS key and still accepts cookies signed with a later one (rotation)', async function () {
      const oldKey = 'old-key-0123456789abcdef';
      const newKey = 'new-key-0123456789abcdef';
      const before = await bed.startApp({ SESSION_KEYS: oldKey });
      const session = await bed.login(before.url, { username: 'alice' });

      const rotated = await bed.startApp({ SESSION_KEYS: `${newKey},${oldKey}` });
      const response = await fetch(`${rotated.url}/api/session`, { headers: session.headers });
      expect(response.status).to.equal(200);
      // The cookie is re-signed with the new key on the way.
      const resigned = setCookies(response).get(`${SESSION_COOKIE}.sig`)?.split(';')[0];
      // keygrip's HMAC-SHA1 in base64url: 27 characters.
      expect(resigned)
        .to.match(/^pulseboard\.sid\.sig=[A-Za-z0-9_-]{27}$/)
        .and.not.equal(
          `${SESSION_COOKIE}.sig=${cookieValue(session.headers.Cookie!, `${SESSION_COOKIE}.sig`)}`,
        );

      const retired = await bed.startApp({ SESSION_KEYS: newKey });
      expect((await fetch(`${retired.url}/api/session`, { headers: session.headers })).status).to.equal(401);
    });
  });

  describe('open streams', function () {
    it('closes a stream whose session expired', async function () {
      const app = await bed.startApp({ SESSION_CHECK_MS: '200' });
      const session = await bed.login(app.url, { username: 'alice' });
      const opened = bed.openStream(`${app.url}/events`, { headers: session.headers });
      await opened.waitForOpen();
      // Expire it the way koa-session does: the stored _expire passes (Redis keeps the key 10 s longer).
      const key = sessionNames(bed.prefix).session(
        sessionHandle(cookieValue(session.headers.Cookie!, SESSION_COOKIE)!),
      );
      const stored = JSON.parse((await bed.client.get(key)) ?? 'null') as Record<string, unknown>;
      await bed.client.set(key, JSON.stringify({ ...stored, _expire: Date.now() - 1 }), {
        expiration: 'KEEPTTL',
      });
      await until(() => app.hub.size === 0, 2000, 'the expired session stream to close');
      expect((await fetch(`${app.url}/api/session`, { headers: session.headers })).status).to.equal(401);
    });

    it('closes a stream whose session vanished from Redis', async function () {
      const app = await bed.startApp({ SESSION_CHECK_MS: '200' });
      const session = await bed.login(app.url, { username: 'alice' });
      const opened = bed.openStream(`${app.url}/events`, { headers: session.headers });
      await opened.waitForOpen();
      await bed.client.del(await bed.client.keys(sessionNames(bed.prefix).sessionPattern));
      await until(() => app.hub.size === 0, 2000, 'the stream to close');
    });

    it('refuses more than MAX_STREAMS_PER_SESSION streams per session, not per user', async function () {
      const app = await bed.startApp({ MAX_STREAMS_PER_SESSION: '2' });
      const session = await bed.login(app.url, { username: 'alice' });
      const other = await bed.login(app.url, { username: 'alice' });
      for (let index = 0; index < 2; index += 1)
        await bed.openStream(`${app.url}/events`, { headers: session.headers }).waitForOpen();
      const third = await fetch(`${app.url}/events`, { headers: session.headers });
      expect(third.status).to.equal(429);
      expect(errorResponseSchema.parse(await third.json()).error.code).to.equal('too_many_streams');
      await bed.openStream(`${app.url}/events`, { headers: other.headers }).waitForOpen();
      expect(app.hub.size).to.equal(3);
    });

    it('keeps a long-lived stream working on a rolling session and sets the cookie before the stream starts', async function () {
      const app = await bed.startApp();
      const session = await bed.login(app.url, { username: 'alice' });
      // Last renewed two minutes ago, so this stream renews it (one renewed within the last minute is
      // left as it is: stream-round-trips.test.ts).
      const id = /pulseboard\.sid=([^;]+)/.exec(session.headers.Cookie ?? '')?.[1] ?? '';
      const key = sessionNames(bed.prefix).session(sessionHandle(id));
      const stored = JSON.parse((await bed.client.get(key)) ?? '{}') as { _expire: number };
      await bed.client.set(key, JSON.stringify({ ...stored, _expire: stored._expire - 120_000 }), {
        expiration: { type: 'PX', value: 3_600_000 },
      });
      const controller = new AbortController();
      const response = await fetch(`${app.url}/events`, {
        headers: session.headers,
        signal: controller.signal,
      });
      expect(response.status).to.equal(200);
      expect(response.headers.get('content-type')).to.match(/^text\/event-stream/);
      expect(setCookies(response).get(SESSION_COOKIE)).to.match(/;\s*httponly/i);
      const reader = response.body!.getReader();
      const { value } = await reader.read();
      expect(new TextDecoder().decode(value)).to.match(/^retry: \d+/);
      controller.abort();
      expect((await fetch(`${app.url}/api/session`, { headers: session.headers })).status).to.equal(200);
    });
  });

  describe('the session API', function () {
    it('GET /api/session answers the login body; logout answers 204 and clears the cookie', async function () {
      const app = await bed.startApp();
      const session = await bed.login(app.url, { username: 'root', role: 'admin' });
      const current = await fetch(`${app.url}/api/session`, { headers: session.headers });
      expect(current.status).to.equal(200);
      expect(current.headers.get('cache-control')).to.equal('no-store');
      const body = sessionResponseSchema.parse(await current.json());
      expect(body).to.deep.equal({
        user: { name: 'root', role: 'admin' },
        csrfToken: session.csrfHeaders['X-CSRF-Token'],
      });

      const logout = await fetch(`${app.url}/api/logout`, { method: 'POST', headers: session.csrfHeaders });
      expect(logout.status).to.equal(204);
      expect(setCookies(logout).get(SESSION_COOKIE)).to.match(/expires=Thu, 01 Jan 1970/i);
      expect((await fetch(`${app.url}/api/session`, { headers: session.headers })).status).to.equal(401);
      expect(await bed.client.keys(sessionNames(bed.prefix).sessionPattern)).to.deep.equal([]);
    });
  });
});
