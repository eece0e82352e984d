import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { useTestBed } from '../../helpers/test-bed.ts';

const METRICS_TOKEN = 'metrics-token-0123456789';

/** The series (sample lines) of the HTTP duration histogram in a cluster scrape. */
async function httpSeries(baseUrl: string): Promise<string[]> {
  const response = await fetch(`${baseUrl}/metrics`, {
    headers: { Authorization: `Bearer ${METRICS_TOKEN}` },
  });
  expect(response.status).to.equal(200);
  const text = await response.text();
  return text.split('\n').filter((line) => line.startsWith('pulseboard_http_request_duration_seconds'));
}

describe('request log', function () {
  this.timeout(30_000);
  const bed = useTestBed();

  it('anonymous requests to random paths and methods create no metric series', async function () {
    const app = await bed.startApp({ METRICS_TOKEN });
    // One of each kind first, so every label the fixed set allows for them exists.
    await fetch(`${app.url}/no-such-path-warmup`);
    await fetch(`${app.url}/assets/warmup.js`);
    await fetch(`${app.url}/no-such-path-warmup`, { method: 'SEARCH' });
    await httpSeries(app.url);
    const before = await httpSeries(app.url);
    for (let i = 0; i < 100; i += 1) {
      const path = `/${randomBytes(6).toString('hex')}/${i}`;
      const response = await fetch(`${app.url}${path}`);
      expect(response.status, path).to.equal(401);
      await fetch(`${app.url}/assets/${randomBytes(6).toString('hex')}.js`);
    }
    for (const method of ['PROPFIND', 'MKCOL', 'LOCK', 'PURGE', 'REPORT', 'SUBSCRIBE']) {
      await fetch(`${app.url}/${method.toLowerCase()}`, { method });
    }
    const after = await httpSeries(app.url);
    // The same series, only their counts moved; no label carries a requested path.
    const labels = (lines: string[]) => new Set(lines.map((line) => line.replace(/\}.*$/, '}')));
    expect([...labels(after)]).to.have.members([...labels(before)]);
    expect(after.join('\n')).to.not.match(/route="\/[0-9a-f]{12}/);
    expect(after.join('\n')).to.match(/route="unmatched"/);
  });

  it('labels the board routes by their pattern: /api/boards, and /b/* for every board view', async function () {
    const app = await bed.startApp({ METRICS_TOKEN });
    const session = await bed.login(app.url);
    expect((await fetch(`${app.url}/api/boards`, { headers: session.headers })).status).to.equal(200);
    for (const board of ['main', 'payments', 'edge-2'])
      await fetch(`${app.url}/b/${board}`, { headers: session.headers, redirect: 'manual' });
    const series = (await httpSeries(app.url)).join('\n');
    expect(series).to.match(/method="GET",route="\/api\/boards",status="200"/);
    expect(series).to.match(/route="\/b\/\*"/);
    expect(series).to.not.match(/route="\/b\/(main|payments|edge-2)"/);
  });
});
