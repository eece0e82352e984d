import { expect } from 'chai';
import { ensureTestUser, TEST_PASSWORD } from '../../helpers/auth.ts';
import { useTestBed } from '../../helpers/test-bed.ts';
import { loginFrom } from './requests.ts';

describe('login throttling per address', function () {
  this.timeout(30_000);
  const bed = useTestBed({ client: false });

  it('a successful login does not wipe the failures counted for its address', async function () {
    const app = await bed.startApp({ LOGIN_MAX_FAILURES_PER_IP: '3', LOGIN_MAX_FAILURES_PER_USER_IP: '100' });
    await ensureTestUser(bed.redis.url, bed.prefix, 'alice');
    const from = '127.0.0.5';
    expect((await loginFrom(from, app.url, 'bob', 'wrong password 1')).status).to.equal(401);
    expect((await loginFrom(from, app.url, 'carol', 'wrong password 2')).status).to.equal(401);
    expect((await loginFrom(from, app.url, 'alice', TEST_PASSWORD)).status).to.equal(200);
    expect((await loginFrom(from, app.url, 'dave', 'wrong password 3')).status).to.equal(401);
    // Three failures from this address in the window: a guesser who also knows one password is still
    // stopped, even with the right password for another account.
    const blocked = await loginFrom(from, app.url, 'erin', 'wrong password 4');
    expect(blocked.status).to.equal(429);
    expect(blocked.headers['retry-after']).to.match(/^\d+$/);
    expect((await loginFrom(from, app.url, 'alice', TEST_PASSWORD)).status).to.equal(429);
    // Another address is not affected.
    expect((await loginFrom('127.0.0.6', app.url, 'alice', TEST_PASSWORD)).status).to.equal(200);
  });
});
