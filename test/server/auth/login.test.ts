import { Writable } from 'node:stream';
import { expect } from 'chai';
import { errorResponseSchema, sessionResponseSchema } from '../../../shared/api.ts';
import { redisNames } from '../../../shared/keys.ts';
import { UserStore } from '../../../server/auth/users.ts';
import { loadConfig } from '../../../server/config.ts';
import { createLogger } from '../../../server/log.ts';
import { startPulseboard } from '../../../server/pulseboard.ts';
import { ensureTestUser, TEST_PASSWORD } from '../../helpers/auth.ts';
import { useTestBed } from '../../helpers/test-bed.ts';
import { loginFrom, loginRequest } from './requests.ts';

describe('login', function () {
  this.timeout(60_000);
  const bed = useTestBed();

  it('answers 200 with the user, a CSRF token and a session cookie', async function () {
    const app = await bed.startApp();
    await ensureTestUser(bed.redis.url, bed.prefix, 'alice', 'admin');
    const response = await loginRequest(app.url, 'Alice', TEST_PASSWORD);
    expect(response.status).to.equal(200);
    expect(response.headers.get('cache-control')).to.equal('no-store');
    const body = sessionResponseSchema.parse(await response.json());
    expect(body.user).to.deep.equal({ name: 'alice', role: 'admin' });
    expect(body.csrfToken).to.have.length.above(30);
    expect(response.headers.getSetCookie().join('\n')).to.match(/^pulseboard\.sid=/m);
  });

  it('answers a wrong password and an unknown user alike, in similar time', async function () {
    const app = await bed.startApp({
      LOGIN_MAX_FAILURES_PER_IP: '100',
      LOGIN_MAX_FAILURES_PER_USER_IP: '100',
    });
    // A user hashed at the default cost, so both failures run one full-cost scrypt.
    await new UserStore(bed.client, redisNames(bed.prefix)).add('alice', TEST_PASSWORD, 'viewer');

    async function attempt(
      username: string,
    ): Promise<{ ms: number; status: number; body: string; cookies: string[] }> {
      const started = performance.now();
      const response = await loginRequest(app.url, username, 'not the password');
      const body = await response.text();
      return {
        ms: performance.now() - started,
        status: response.status,
        body,
        cookies: response.headers.getSetCookie(),
      };
    }
    const known: number[] = [];
    const unknown: number[] = [];
    for (let round = 0; round < 3; round += 1) {
      const wrongPassword = await attempt('alice');
      const noSuchUser = await attempt('mallory');
      expect(noSuchUser.status).to.equal(401);
      expect(noSuchUser.status).to.equal(wrongPassword.status);
      expect(noSuchUser.body).to.equal(wrongPassword.body);
      expect(noSuchUser.cookies).to.deep.equal([]);
      expect(wrongPassword.cookies).to.deep.equal([]);
      known.push(wrongPassword.ms);
      unknown.push(noSuchUser.ms);
    }
    expect(errorResponseSchema.parse(JSON.parse((await attempt('mallory')).body)).error).to.deep.equal({
      code: 'unauthorized',
      message: 'invalid username or password',
    });
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[1]!;
    // Both run a full scrypt (~0.3 s); without the dummy hash an unknown user would answer in ~1 ms.
    expect(median(unknown) / median(known)).to.be.within(0.5, 2);
  });

  it('throttles failures per username + IP with 429 and Retry-After, while another user from another IP still logs in', async function () {
    const app = await bed.startApp({
      LOGIN_MAX_FAILURES_PER_USER_IP: '3',
      LOGIN_MAX_FAILURES_PER_IP: '20',
      LOGIN_THROTTLE_WINDOW_MS: '60000',
    });
    await ensureTestUser(bed.redis.url, bed.prefix, 'alice');
    await ensureTestUser(bed.redis.url, bed.prefix, 'bob');
    for (let failure = 0; failure < 3; failure += 1) {
      expect((await loginFrom('127.0.0.1', app.url, 'alice', 'guess')).status).to.equal(401);
    }
    // Now even the right password is refused from there, until the window ends.
    const throttled = await loginFrom('127.0.0.1', app.url, 'alice', TEST_PASSWORD);
    expect(throttled.status).to.equal(429);
    expect(errorResponseSchema.parse(throttled.json()).error.code).to.equal('rate_limited');
    const retryAfter = Number(throttled.headers['retry-after']);
    expect(retryAfter).to.be.within(1, 60);

    expect((await loginFrom('127.0.0.2', app.url, 'bob', TEST_PASSWORD)).status).to.equal(200);
    // The same user from another address is not locked out by someone guessing elsewhere.
    expect((await loginFrom('127.0.0.3', app.url, 'alice', TEST_PASSWORD)).status).to.equal(200);
    // And bob, from the guesser's address, is unaffected by the per username + IP count.
    expect((await loginFrom('127.0.0.1', app.url, 'bob', TEST_PASSWORD)).status).to.equal(200);

    const logins = await app.metrics.logins.get();
    const byResult = Object.fromEntries(logins.values.map((value) => [value.labels.result, value.value]));
    expect(byResult).to.deep.equal({ failure: 3, throttled: 1, success: 3 });
  });

  it('throttles failures per IP across usernames', async function () {
    const app = await bed.startApp({
      LOGIN_MAX_FAILURES_PER_USER_IP: '10',
      LOGIN_MAX_FAILURES_PER_IP: '4',
      LOGIN_THROTTLE_WINDOW_MS: '60000',
    });
    await ensureTestUser(bed.redis.url, bed.prefix, 'alice');
    for (const name of ['u1', 'u2', 'u3', 'u4']) {
      expect((await loginFrom('127.0.0.4', app.url, name, 'guess')).status).to.equal(401);
    }
    const throttled = await loginFrom('127.0.0.4', app.url, 'alice', TEST_PASSWORD);
    expect(throttled.status).to.equal(429);
    expect(Number(throttled.headers['retry-after'])).to.be.within(1, 60);
    expect((await loginFrom('127.0.0.5', app.url, 'alice', TEST_PASSWORD)).status).to.equal(200);
  });

  it('behind a trusted proxy, throttles on the address the proxy saw, not on one the client made up', async function () {
    const app = await bed.startApp({ TRUST_PROXY: 'true', LOGIN_MAX_FAILURES_PER_IP: '3' });
    await ensureTestUser(bed.redis.url, bed.prefix, 'alice');
    // The proxy appends the address it saw (203.0.113.7) to whatever X-Forwarded-For the client sent.
    const from = (claimed: string, username: string, password: string) =>
      loginRequest(app.url, username, password, { 'X-Forwarded-For': `${claimed}, 203.0.113.7` });
    for (const claimed of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) {
      expect((await from(claimed, `user-${claimed}`, 'guess')).status).to.equal(401);
    }
    expect((await from('10.0.0.4', 'alice', TEST_PASSWORD)).status).to.equal(429);
    const elsewhere = await loginRequest(app.url, 'alice', TEST_PASSWORD, {
      'X-Forwarded-For': '198.51.100.9',
    });
    expect(elsewhere.status).to.equal(200);
  });

  it('never counts successful logins, however many come from one address', async function () {
    const app = await bed.startApp({ LOGIN_MAX_FAILURES_PER_USER_IP: '2', LOGIN_MAX_FAILURES_PER_IP: '2' });
    await ensureTestUser(bed.redis.url, bed.prefix, 'alice');
    const statuses: number[] = [];
    for (let index = 0; index < 10; index += 1) {
      statuses.push((await loginRequest(app.url, 'alice', TEST_PASSWORD)).status);
    }
    expect(statuses).to.deep.equal(Array.from({ length: 10 }, () => 200));
    // One failure, then a success clears the username + IP count: two more failures are still 401.
    expect((await loginRequest(app.url, 'alice', 'guess')).status).to.equal(401);
    expect((await loginRequest(app.url, 'alice', TEST_PASSWORD)).status).to.equal(200);
    expect((await loginRequest(app.url, 'alice', 'guess')).status).to.equal(401);
  });

  it('refuses a burst of parallel guesses beyond the limit (counted before the password is checked)', async function () {
    const app = await bed.startApp({ LOGIN_MAX_FAILURES_PER_USER_IP: '3', LOGIN_MAX_FAILURES_PER_IP: '50' });
    await ensureTestUser(bed.redis.url, bed.prefix, 'alice');
    const statuses = await Promise.all(
      Array.from({ length: 8 }, () => loginRequest(app.url, 'alice', 'guess').then((r) => r.status)),
    );
    expect(statuses.filter((status) => status === 401)).to.have.length(3);
    expect(statuses.filter((status) => status === 429)).to.have.length(5);
  });

  it('answers 400 naming the field for a malformed body', async function () {
    const app = await bed.startApp();
    const response = await fetch(`${app.url}/api/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Origin: new URL(app.url).origin },
      body: JSON.stringify({ username: 'alice' }),
    });
    expect(response.status).to.equal(400);
    expect(errorResponseSchema.parse(await response.json()).error.field).to.equal('password');
  });

  describe('first start', function () {
    it('creates admin from PULSEBOARD_ADMIN_PASSWORD when there are no users', async function () {
      const app = await bed.startApp({ PULSEBOARD_ADMIN_PASSWORD: 'first-admin-password' });
      const response = await loginRequest(app.url, 'admin', 'first-admin-password');
      expect(response.status).to.equal(200);
      expect(sessionResponseSchema.parse(await response.json()).user).to.deep.equal({
        name: 'admin',
        role: 'admin',
      });
    });

    it('prints a random password once, which logs in; later starts create nothing', async function () {
      const lines: string[] = [];
      const sink = new Writable({
        write(chunk: Buffer, _encoding, callback) {
          lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
          callback();
        },
      });
      const config = loadConfig({
        PORT: '0',
        HOST: '127.0.0.1',
        REDIS_URL: bed.redis.url,
        PULSEBOARD_PREFIX: bed.prefix,
      });
      const startWorker = async () => {
        const worker = await startPulseboard(config, {
          log: createLogger('info', sink),
          defaultMetrics: false,
        });
        return bed.trackApp(worker);
      };
      const [first] = await Promise.all([startWorker(), startWorker()]);
      const announced = lines
        .map((line) => JSON.parse(line) as { msg?: string; password?: unknown })
        .filter((entry) => typeof entry.password === 'string');
      expect(announced, 'one password line across both workers').to.have.length(1);
      const password = String(announced[0]!.password);
      expect(password).to.have.length.of.at.least(16);
      expect((await loginRequest(first.url, 'admin', password)).status).to.equal(200);

      await startWorker();
      expect(
        lines.map((line) => JSON.parse(line) as { password?: unknown }).filter((entry) => entry.password),
      ).to.have.length(1);
      expect(await new UserStore(bed.client, redisNames(bed.prefix)).list()).to.have.length(1);
    });

    it('creates nothing when a user exists', async function () {
      await ensureTestUser(bed.redis.url, bed.prefix, 'alice');
      await bed.startApp({ PULSEBOARD_ADMIN_PASSWORD: 'first-admin-password' });
      const names = (await new UserStore(bed.client, redisNames(bed.prefix)).list()).map((user) => user.name);
      expect(names).to.deep.equal(['alice']);
    });
  });
});
