// Successful logins are limited per account (LOGIN_MAX_SESSIONS_PER_USER per window,
// from any address), so one account cannot mint unlimited sessions.
import { expect } from 'chai';
import { SESSION_COOKIE } from '../../server/auth/sessions.ts';
import { errorResponseSchema } from '../../shared/api.ts';
import { ensureTestUser, TEST_PASSWORD } from '../helpers/auth.ts';
import { useTestBed } from '../helpers/test-bed.ts';
import { loginFrom } from '../server/auth/requests.ts';
import { sessionNames } from '../../shared/keys.ts';

describe('successful logins per account', function () {
  this.timeout(30_000);
  const bed = useTestBed();

  it('refuses the login beyond LOGIN_MAX_SESSIONS_PER_USER with 429, Retry-After and no session, from any address', async function () {
    const app = await bed.startApp({ LOGIN_MAX_SESSIONS_PER_USER: '3' });
    await ensureTestUser(bed.redis.url, bed.prefix, 'alice');
    await ensureTestUser(bed.redis.url, bed.prefix, 'bob');
    const statuses: number[] = [];
    // Different client addresses: the limit is per account, not per address.
    for (const address of ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']) {
      statuses.push((await loginFrom(address, app.url, 'alice', TEST_PASSWORD)).status);
    }
    expect(statuses).to.deep.equal([200, 200, 200, 429]);

    const refused = await loginFrom('127.0.0.6', app.url, 'alice', TEST_PASSWORD);
    expect(refused.status).to.equal(429);
    expect(Number(refused.headers['retry-after'])).to.be.within(1, 15 * 60);
    expect(errorResponseSchema.parse(refused.json()).error.code).to.equal('rate_limited');
    const cookies = refused.headers['set-cookie'] ?? [];
    expect(cookies.filter((line) => line.startsWith(`${SESSION_COOKIE}=`) && !/=;/.test(line))).to.deep.equal(
      [],
    );
    const sessions = await bed.client.keys(sessionNames(bed.prefix).sessionPattern);
    expect(sessions).to.have.length(3);

    // Another account from the same address is not affected; a wrong password still answers 401.
    expect((await loginFrom('127.0.0.2', app.url, 'bob', TEST_PASSWORD)).status).to.equal(200);
    expect((await loginFrom('127.0.0.7', app.url, 'alice', 'wrong password')).status).to.equal(401);
  });

  it('frees the account again when the window ends', async function () {
    const app = await bed.startApp({ LOGIN_MAX_SESSIONS_PER_USER: '1', LOGIN_THROTTLE_WINDOW_MS: '1000' });
    await ensureTestUser(bed.redis.url, bed.prefix, 'alice');
    expect((await loginFrom('127.0.0.2', app.url, 'alice', TEST_PASSWORD)).status).to.equal(200);
    expect((await loginFrom('127.0.0.2', app.url, 'alice', TEST_PASSWORD)).status).to.equal(429);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await loginFrom('127.0.0.2', app.url, 'alice', TEST_PASSWORD)).status).to.equal(200);
  });
});
