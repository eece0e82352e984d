// The dashboard's pages by path: the board overview at `/`, one board page for every `/b/<board>` (so a
// deep link or a reload works), and the login redirect that keeps where the user was going.
import { expect } from 'chai';
import { useTestBed } from '../../helpers/test-bed.ts';

describe('dashboard pages', function () {
  this.timeout(30_000);
  const bed = useTestBed();

  it('without a session, a board page redirects to the login page and returns there afterwards', async function () {
    const app = await bed.startApp();
    for (const path of ['/b/payments', '/b/main?filter=api*']) {
      const response = await fetch(`${app.url}${path}`, { redirect: 'manual' });
      expect(response.status, path).to.equal(302);
      expect(response.headers.get('location'), path).to.equal(`/login?next=${encodeURIComponent(path)}`);
    }
  });

  it('serves the overview at / and the board page at /b/<board>, whatever the board', async function () {
    const app = await bed.startApp();
    const session = await bed.login(app.url);
    const overview = await fetch(`${app.url}/`, { headers: session.headers });
    expect(overview.status).to.equal(200);
    expect(overview.headers.get('cache-control')).to.equal('no-cache');
    expect(await overview.text()).to.include('/assets/overview.js');
    // The page is the same for every board: access is the API's business, asked by the page.
    for (const board of ['main', 'payments', 'no-such-board', 'a'.repeat(64)]) {
      const page = await fetch(`${app.url}/b/${board}`, { headers: session.headers });
      expect(page.status, board).to.equal(200);
      expect(page.headers.get('content-type'), board).to.match(/^text\/html/);
      expect(await page.text(), board).to.include('/assets/app.js');
    }
  });

  it('answers 404 for a path that is not a board name', async function () {
    const app = await bed.startApp();
    const session = await bed.login(app.url);
    for (const path of ['/b/', '/b/Payments', '/b/pay_ments', `/b/${'a'.repeat(65)}`, '/b/main/x', '/b']) {
      const response = await fetch(`${app.url}${path}`, { headers: session.headers });
      expect(response.status, path).to.equal(404);
    }
  });
});
