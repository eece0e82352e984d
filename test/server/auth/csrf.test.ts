import { expect } from 'chai';
import { errorResponseSchema } from '../../../shared/api.ts';
import { redisNames } from '../../../shared/keys.ts';
import { TokenStore } from '../../../server/auth/tokens.ts';
import type { TestApp } from '../../helpers/app.ts';
import { ensureTestUser, TEST_PASSWORD, withUsers, type TestSession } from '../../helpers/auth.ts';
import { useTestBed } from '../../helpers/test-bed.ts';
import { loginRequest, setCookies } from './requests.ts';

describe('CSRF protection', function () {
  this.timeout(30_000);
  const bed = useTestBed({ client: false });

  async function logout(app: TestApp, headers: Record<string, string>): Promise<Response> {
    return fetch(`${app.url}/api/logout`, { method: 'POST', headers });
  }

  async function expectForbidden(response: Response): Promise<void> {
    expect(response.status).to.equal(403);
    expect(errorResponseSchema.parse(await response.json()).error.code).to.equal('forbidden');
  }

  async function stillLoggedIn(app: TestApp, session: TestSession): Promise<boolean> {
    return (await fetch(`${app.url}/api/session`, { headers: session.headers })).status === 200;
  }

  it('refuses a state-changing request without the CSRF token, or with a wrong one', async function () {
    const app = await bed.startApp();
    const session = await bed.login(app.url);
    const { 'X-CSRF-Token': token, ...withoutToken } = session.csrfHeaders;
    await expectForbidden(await logout(app, withoutToken));
    await expectForbidden(await logout(app, { ...withoutToken, 'X-CSRF-Token': `${token}x` }));
    await expectForbidden(
      await logout(app, {
        ...withoutToken,
        'X-CSRF-Token': token!.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')),
      }),
    );
    expect(await stillLoggedIn(app, session)).to.equal(true);
  });

  it('refuses a foreign Origin even with the right token', async function () {
    const app = await bed.startApp();
    const session = await bed.login(app.url);
    await expectForbidden(await logout(app, { ...session.csrfHeaders, Origin: 'http://evil.example' }));
    // Same host, other scheme or port: another origin too.
    const { port } = new URL(app.url);
    await expectForbidden(await logout(app, { ...session.csrfHeaders, Origin: `https://127.0.0.1:${port}` }));
    await expectForbidden(
      await logout(app, { ...session.csrfHeaders, Origin: `http://127.0.0.1:${Number(port) + 1}` }),
    );
    await expectForbidden(await logout(app, { ...session.csrfHeaders, Origin: 'null' }));
    expect(await stillLoggedIn(app, session)).to.equal(true);
  });

  it('uses Sec-Fetch-Site when there is no Origin, and refuses a request that names neither', async function () {
    const app = await bed.startApp();
    const session = await bed.login(app.url);
    const { Origin: _origin, ...noOrigin } = session.csrfHeaders;
    await expectForbidden(await logout(app, noOrigin));
    await expectForbidden(await logout(app, { ...noOrigin, 'Sec-Fetch-Site': 'cross-site' }));
    await expectForbidden(await logout(app, { ...noOrigin, 'Sec-Fetch-Site': 'same-site' }));
    await expectForbidden(await logout(app, { ...session.csrfHeaders, 'Sec-Fetch-Site': 'cross-site' }));
    expect(await stillLoggedIn(app, session)).to.equal(true);
    expect((await logout(app, { ...noOrigin, 'Sec-Fetch-Site': 'same-origin' })).status).to.equal(204);
    expect(await stillLoggedIn(app, session)).to.equal(false);
  });

  it('checks the origin of a login (no session yet) and sets no cookie when refusing it', async function () {
    const app = await bed.startApp();
    await ensureTestUser(bed.redis.url, bed.prefix, 'alice');
    const foreign = await loginRequest(app.url, 'alice', TEST_PASSWORD, { Origin: 'http://evil.example' });
    await expectForbidden(foreign);
    expect(setCookies(foreign).size).to.equal(0);
    const anonymous = await fetch(`${app.url}/api/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'alice', password: TEST_PASSWORD }),
    });
    await expectForbidden(anonymous);
    const fetchMetadata = await fetch(`${app.url}/api/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Sec-Fetch-Site': 'same-origin' },
      body: JSON.stringify({ username: 'alice', password: TEST_PASSWORD }),
    });
    expect(fetchMetadata.status).to.equal(200);
  });

  it('lets a logged-in user log in again without the old token (login needs no session)', async function () {
    const app = await bed.startApp();
    const session = await bed.login(app.url, { username: 'alice' });
    const again = await loginRequest(app.url, 'alice', TEST_PASSWORD, session.headers);
    expect(again.status).to.equal(200);
  });

  it('behind a trusted HTTPS proxy, expects the https origin', async function () {
    const app = await bed.startApp({ TRUST_PROXY: 'true' });
    const session = await bed.login(app.url);
    const host = new URL(app.url).host;
    const overHttps = { ...session.csrfHeaders, 'X-Forwarded-Proto': 'https' };
    await expectForbidden(await logout(app, overHttps)); // Origin says http://, the proxy says https
    expect((await logout(app, { ...overHttps, Origin: `https://${host}` })).status).to.equal(204);
  });

  it('behind a trusted proxy, ignores X-Forwarded-Host unless TRUST_FORWARDED_HOST is set', async function () {
    const app = await bed.startApp({ TRUST_PROXY: 'true' });
    const session = await bed.login(app.url);
    const forged = {
      ...session.csrfHeaders,
      'X-Forwarded-Host': 'evil.example',
      Origin: 'http://evil.example',
    };
    await expectForbidden(await logout(app, forged));
    await expectForbidden(
      await loginRequest(app.url, session.username, TEST_PASSWORD, {
        'X-Forwarded-Host': 'evil.example',
        Origin: 'http://evil.example',
      }),
    );
    // The page's own origin still works, whatever X-Forwarded-Host says.
    const own = { ...session.csrfHeaders, 'X-Forwarded-Host': 'evil.example' };
    expect(await stillLoggedIn(app, session)).to.equal(true);
    expect((await logout(app, own)).status).to.equal(204);

    // A proxy that rewrites the host and says so: opt in.
    const rewriting = await bed.startApp({ TRUST_PROXY: 'true', TRUST_FORWARDED_HOST: 'true' });
    const behind = await bed.login(rewriting.url);
    const viaProxy = {
      ...behind.csrfHeaders,
      'X-Forwarded-Host': 'dash.example',
      Origin: 'http://dash.example',
    };
    expect((await logout(rewriting, viaProxy)).status).to.equal(204);
  });

  it('does not apply to /api/publish, which takes a bearer token and ignores cookies', async function () {
    const app = await bed.startApp();
    const { token } = await withUsers(bed.redis.url, bed.prefix, (_users, client) =>
      new TokenStore(client, redisNames(bed.prefix)).create('ci'),
    );
    const response = await fetch(`${app.url}/api/publish`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${token}`,
        'Content-Type': 'application/json',
        Origin: 'http://evil.example',
      },
      body: JSON.stringify({ type: 'status', service: 'api', state: 'ok' }),
    });
    expect(response.status).to.equal(200);
  });
});
