// Roles (docs/security.md): today the one role-bound HTTP action is publishing, and it takes a publisher
// API token, never a session — not even an admin's. Viewer and admin sessions read the same things; user
// and token management is the CLI's (direct Redis access). docs/reliability.md, "Roles".
import { expect } from 'chai';
import { TokenStore } from '../../server/auth/tokens.ts';
import { errorResponseSchema } from '../../shared/api.ts';
import { redisNames } from '../../shared/keys.ts';
import { useTestBed } from '../helpers/test-bed.ts';

describe('roles over HTTP', function () {
  this.timeout(30_000);
  const bed = useTestBed();

  it('POST /api/publish refuses viewer and admin sessions (with CSRF) and answers a publisher token', async function () {
    const app = await bed.startApp();
    const event = JSON.stringify({ type: 'status', service: 'api', state: 'ok' });
    for (const role of ['viewer', 'admin'] as const) {
      const session = await bed.login(app.url, { username: `a-${role}`, role });
      const response = await fetch(`${app.url}/api/publish`, {
        method: 'POST',
        headers: { ...session.csrfHeaders, 'Content-Type': 'application/json' },
        body: event,
      });
      expect(response.status, role).to.equal(401);
      expect(errorResponseSchema.parse(await response.json()).error.code, role).to.equal('unauthorized');
    }
    const { token } = await new TokenStore(bed.client, redisNames(bed.prefix)).create('ci');
    const published = await fetch(`${app.url}/api/publish`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: event,
    });
    expect(published.status).to.equal(200);
  });

  it('a viewer and an admin session get the same answers on every HTTP route', async function () {
    const app = await bed.startApp();
    const viewer = await bed.login(app.url, { username: 'vera', role: 'viewer' });
    const admin = await bed.login(app.url, { username: 'adam', role: 'admin' });
    for (const path of ['/api/session', '/api/snapshot', '/']) {
      const [asViewer, asAdmin] = await Promise.all(
        [viewer, admin].map((session) =>
          fetch(`${app.url}${path}`, { headers: session.headers, redirect: 'manual' }),
        ),
      );
      expect(asViewer!.status, path).to.equal(asAdmin!.status);
    }
    const session = await fetch(`${app.url}/api/session`, { headers: admin.headers });
    expect(((await session.json()) as { user: { role: string } }).user.role).to.equal('admin');
  });
});
