// One corrupt session value in Redis must not stop the stream-expiry sweep of a worker,
// nor turn every request carrying that cookie into a 500.
import { expect } from 'chai';
import { SESSION_COOKIE, sessionHandle } from '../../server/auth/sessions.ts';
import { sessionNames } from '../../shared/keys.ts';
import { until } from '../helpers/sse-client.ts';
import { useTestBed } from '../helpers/test-bed.ts';
import { cookieValue } from '../server/auth/requests.ts';

describe('corrupt session values', function () {
  this.timeout(30_000);
  const bed = useTestBed();

  function keyOf(cookie: string): string {
    return sessionNames(bed.prefix).session(sessionHandle(cookieValue(cookie, SESSION_COOKIE)!));
  }

  it('a corrupt value does not stop the sweep: a destroyed session elsewhere still has its stream closed', async function () {
    const app = await bed.startApp({ SESSION_CHECK_MS: '150' });
    const corrupt = await bed.login(app.url, { username: 'alice' });
    const voided = await bed.login(app.url, { username: 'bob' });
    const corruptStream = bed.openStream(`${app.url}/events`, { headers: corrupt.headers });
    const voidedStream = bed.openStream(`${app.url}/events`, { headers: voided.headers });
    await Promise.all([corruptStream.waitForOpen(), voidedStream.waitForOpen()]);
    expect(app.hub.size).to.equal(2);

    await bed.client.set(keyOf(corrupt.headers.Cookie!), '{not json', { expiration: 'KEEPTTL' });
    await bed.client.del(keyOf(voided.headers.Cookie!));
    // Both sessions are gone as far as the worker can tell: both streams close within a few sweeps.
    await until(() => app.hub.size === 0, 3000, 'the sweep to close both streams');
  });

  it('a request carrying a session whose value is corrupt answers 401, not 500', async function () {
    const app = await bed.startApp();
    const session = await bed.login(app.url, { username: 'alice' });
    for (const garbage of ['{not json', '[1,2,3]', '"a string"', 'null']) {
      await bed.client.set(keyOf(session.headers.Cookie!), garbage, { expiration: 'KEEPTTL' });
      const response = await fetch(`${app.url}/api/session`, { headers: session.headers });
      expect(response.status, garbage).to.equal(401);
    }
  });
});
