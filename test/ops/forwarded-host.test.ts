// deploy/haproxy.cfg in front of two workers with TRUST_PROXY=true: a client's own X-Forwarded-Host
// never reaches the app, so it cannot make a foreign Origin look like ours (docs/security.md, "Hardening").
import { existsSync } from 'node:fs';
import { expect } from 'chai';
import { TEST_PASSWORD } from '../helpers/auth.ts';
import { useTestBed } from '../helpers/test-bed.ts';
import { HAPROXY_BIN, startHaproxy, type Balancer } from './haproxy.ts';

describe('HAProxy and X-Forwarded-Host', function () {
  this.timeout(60_000);
  const bed = useTestBed({ client: false });
  let balancer: Balancer | undefined;

  before(function () {
    if (!existsSync(HAPROXY_BIN)) {
      console.log(`      skipped: ${HAPROXY_BIN} is not installed (apt-get install haproxy)`);
      this.skip();
    }
  });
  afterEach(async function () {
    await balancer?.stop();
    balancer = undefined;
  });

  it('strips a client X-Forwarded-Host, even for an app that would believe one', async function () {
    // TRUST_FORWARDED_HOST=true: the app takes X-Forwarded-Host at its word, so only the balancer stands
    // between a client's header and the origin check here.
    const env = { TRUST_PROXY: 'true', TRUST_FORWARDED_HOST: 'true' };
    const [first, second] = [await bed.startApp(env), await bed.startApp(env)];
    balancer = await startHaproxy(`127.0.0.1:${first!.port}`, `127.0.0.1:${second!.port}`);
    const session = await bed.login(balancer.url);
    const login = (headers: Record<string, string>) =>
      fetch(`${balancer!.url}/api/login`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...headers },
        body: JSON.stringify({ username: session.username, password: TEST_PASSWORD }),
      });
    for (let attempt = 0; attempt < 4; attempt += 1) {
      // Both workers: a foreign origin that names itself in X-Forwarded-Host is refused…
      const forged = await login({ Origin: 'http://evil.example', 'X-Forwarded-Host': 'evil.example' });
      expect(forged.status, `attempt ${attempt}`).to.equal(403);
      expect(forged.headers.getSetCookie()).to.deep.equal([]);
      // …and our own origin still works with whatever X-Forwarded-Host the client sends.
      const own = await login({ Origin: new URL(balancer.url).origin, 'X-Forwarded-Host': 'evil.example' });
      expect(own.status, `attempt ${attempt}`).to.equal(200);
    }
  });
});
