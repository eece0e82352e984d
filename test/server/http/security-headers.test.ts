import { expect } from 'chai';
import { createClient } from 'redis';
import { errorResponseSchema } from '../../../shared/api.ts';
import { authNames } from '../../../shared/keys.ts';
import type { TestApp } from '../../helpers/app.ts';
import type { TestSession } from '../../helpers/auth.ts';
import { useTestBed } from '../../helpers/test-bed.ts';

/** The CSP as a map of directive -> sources. */
function parseCsp(header: string | null): Map<string, string[]> {
  return new Map(
    (header ?? '')
      .split(';')
      .map((part) => part.trim().split(/\s+/))
      .filter((words) => words[0])
      .map(([name, ...sources]) => [name!, sources]),
  );
}

function expectStrictHeaders(response: Response, what: string, https: boolean): void {
  const csp = parseCsp(response.headers.get('content-security-policy'));
  expect(csp.get('default-src'), what).to.deep.equal(["'self'"]);
  expect(csp.get('script-src'), what).to.deep.equal(["'self'"]);
  expect(csp.get('style-src'), what).to.deep.equal(["'self'"]);
  expect(csp.get('connect-src'), what).to.deep.equal(["'self'"]);
  expect(csp.get('frame-ancestors'), what).to.deep.equal(["'none'"]);
  expect(csp.get('object-src'), what).to.deep.equal(["'none'"]);
  expect(csp.has('upgrade-insecure-requests'), what).to.equal(false);
  for (const sources of csp.values()) {
    expect(sources, what).to.not.include("'unsafe-inline'");
    expect(sources, what).to.not.include("'unsafe-eval'");
  }
  expect(response.headers.get('x-content-type-options'), what).to.equal('nosniff');
  expect(response.headers.get('x-frame-options'), what).to.equal('DENY');
  expect(response.headers.get('referrer-policy'), what).to.equal('same-origin');
  const hsts = response.headers.get('strict-transport-security');
  if (https) expect(hsts, what).to.equal('max-age=31536000; includeSubDomains');
  else expect(hsts, what).to.equal(null);
}

/** The header names of a response, lower case, sorted (repeats once each). */
function headerNames(response: Response): string[] {
  const names = new Set<string>();
  response.headers.forEach((_value, name) => names.add(name));
  return [...names].sort();
}

describe('security headers', function () {
  this.timeout(30_000);
  const bed = useTestBed({ client: false });

  /** One response of each kind: 200, 401, 404 and a real 500 (a corrupt user record in Redis). */
  async function responsesOfEveryKind(app: TestApp, extra: Record<string, string>) {
    const session: TestSession = await bed.login(app.url, { username: 'alice' });
    const headers = { ...session.headers, ...extra };
    const ok = await fetch(`${app.url}/api/session`, { headers });
    const page = await fetch(`${app.url}/login`, { headers: extra });
    const unauthorized = await fetch(`${app.url}/api/snapshot`, { headers: extra });
    const notFound = await fetch(`${app.url}/api/no-such-thing`, { headers });
    const client = createClient({ url: bed.redis.url });
    await client.connect();
    await client.hSet(authNames(bed.prefix).users, 'alice', '{corrupt');
    await client.quit();
    const failed = await fetch(`${app.url}/api/session`, { headers });
    return { ok, page, unauthorized, notFound, failed };
  }

  it('sends a strict CSP, nosniff and frame-ancestors on a 200, a 401, a 404 and a 500, and no HSTS over http', async function () {
    const app = await bed.startApp();
    const { ok, page, unauthorized, notFound, failed } = await responsesOfEveryKind(app, {});
    expect([ok.status, page.status, unauthorized.status, notFound.status, failed.status]).to.deep.equal([
      200, 200, 401, 404, 500,
    ]);
    expect(await failed.json()).to.deep.equal({
      error: { code: 'internal', message: 'internal server error' },
    });
    expect(errorResponseSchema.parse(await notFound.json()).error.code).to.equal('not_found');
    for (const [what, response] of Object.entries({ ok, page, unauthorized, notFound, failed })) {
      expectStrictHeaders(response, what, false);
    }
  });

  it('adds HSTS on every answer when the request came over HTTPS through a trusted proxy', async function () {
    const app = await bed.startApp({ TRUST_PROXY: 'true' });
    const { ok, page, unauthorized, notFound, failed } = await responsesOfEveryKind(app, {
      'X-Forwarded-Proto': 'https',
    });
    expect([ok.status, page.status, unauthorized.status, notFound.status, failed.status]).to.deep.equal([
      200, 200, 401, 404, 500,
    ]);
    for (const [what, response] of Object.entries({ ok, page, unauthorized, notFound, failed })) {
      expectStrictHeaders(response, what, true);
    }
  });

  it('does not trust X-Forwarded-Proto without TRUST_PROXY (no HSTS)', async function () {
    const app = await bed.startApp();
    const response = await fetch(`${app.url}/livez`, { headers: { 'X-Forwarded-Proto': 'https' } });
    expectStrictHeaders(response, 'livez', false);
  });

  /**
   * The event stream's 200 (docs/security.md, "Security headers"): nosniff, CORP, HSTS over HTTPS and the
   * SSE headers; nothing that acts only on a document (CSP, X-Frame-Options, Referrer-Policy, COOP, ...).
   */
  function streamHeaderNames(https: boolean): string[] {
    return [
      'cache-control',
      'connection',
      'content-type',
      'cross-origin-resource-policy',
      'date',
      ...(https ? ['strict-transport-security'] : []),
      'transfer-encoding',
      'x-accel-buffering',
      'x-content-type-options',
    ];
  }

  /** Headers that are no security header, on a stream or a HEAD of it. */
  const NOT_SECURITY_HEADERS = new Set([
    'cache-control',
    'connection',
    'content-type',
    'date',
    'set-cookie',
    'transfer-encoding',
    'vary',
    'x-accel-buffering',
    'x-request-id',
  ]);

  function expectStreamHeaders(response: Response, what: string, https: boolean): void {
    expect(headerNames(response), what).to.deep.equal(streamHeaderNames(https));
    expect(response.headers.get('content-type'), what).to.equal('text/event-stream; charset=utf-8');
    expect(response.headers.get('x-content-type-options'), what).to.equal('nosniff');
    expect(response.headers.get('cross-origin-resource-policy'), what).to.equal('same-origin');
    expect(response.headers.get('cache-control'), what).to.equal('no-cache, no-transform');
    const hsts = response.headers.get('strict-transport-security');
    expect(hsts, what).to.equal(https ? 'max-age=31536000; includeSubDomains' : null);
  }

  for (const https of [false, true]) {
    it(`sends the event stream only the headers that act on a stream${https ? ', with HSTS over HTTPS' : ''}, and its errors, pages and health endpoints the full set`, async function () {
      const app = await bed.startApp(https ? { TRUST_PROXY: 'true' } : {});
      const extra: Record<string, string> = https ? { 'X-Forwarded-Proto': 'https' } : {};
      const session = await bed.login(app.url);
      const headers = { ...session.headers, ...extra };
      const controller = new AbortController();
      const stream = await fetch(`${app.url}/events`, { headers, signal: controller.signal });
      expect(stream.status).to.equal(200);
      expectStreamHeaders(stream, 'events', https);
      controller.abort();
      const head = await fetch(`${app.url}/events`, { method: 'HEAD', headers });
      expect(head.status).to.equal(200);
      // Answered by Koa (request id, session cookie), with the stream's security headers.
      const headSecurity = headerNames(head).filter((name) => !NOT_SECURITY_HEADERS.has(name));
      expect(headSecurity.sort(), 'HEAD /events').to.deep.equal(
        streamHeaderNames(https).filter((name) => !NOT_SECURITY_HEADERS.has(name)),
      );
      const refused = await fetch(`${app.url}/events`, { headers: extra });
      expect(refused.status).to.equal(401);
      expectStrictHeaders(refused, 'events 401', https);
      const badQuery = await fetch(`${app.url}/events?boards=NOT%20A%20BOARD`, { headers });
      expect(badQuery.status).to.equal(400);
      expectStrictHeaders(badQuery, 'events 400', https);
      const page = await fetch(`${app.url}/`, { headers });
      expect(page.status).to.equal(200);
      expectStrictHeaders(page, 'page', https);
      const health = await fetch(`${app.url}/healthz`, { headers: extra });
      expectStrictHeaders(health, 'healthz', https);
    });
  }
});
