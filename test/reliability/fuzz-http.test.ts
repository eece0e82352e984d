// Widen the net (issue 14): property-based fuzzing of every HTTP input, seeded and short here (FUZZ_RUNS
// for the long version). Every case must be a clear 4xx or a correct acceptance — never a 500, a crash or
// a hang — no invalid event may be sequenced, and the metric series count may only grow with the fixed
// (method, route, status) label set, never with what a client sent.
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { expect } from 'chai';
import fc from 'fast-check';
import { TokenStore } from '../../server/auth/tokens.ts';
import { parseTopics } from '../../server/sse/topics.ts';
import { envelopeSchema, parseRawEventInput, streamIdSchema } from '../../shared/events.ts';
import { parseCursor } from '../../shared/cursor.ts';
import { redisNames } from '../../shared/keys.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { login, type TestSession } from '../helpers/auth.ts';
import { useTestBed } from '../helpers/test-bed.ts';
import { eventBodyText, FUZZ_SEED, fuzzRuns, headerText } from './fuzz-arbitraries.ts';

const METRICS_TOKEN = 'fuzz-metrics-token-0123456789';
/** Statuses a hostile request may get: each a clear refusal (or 200 for a correct acceptance). */
const CLEAR_REFUSALS = new Set([400, 401, 403, 404, 405, 413, 415, 429]);

interface Answer {
  status: number;
  text: string;
}

/** The (method, route, status) label triples the requests of this suite can have created. */
const triples = new Set<string>();

async function send(
  app: TestApp,
  path: string,
  init: RequestInit & { method?: string } = {},
): Promise<Answer> {
  const response = await fetch(`${app.url}${path}`, { ...init, signal: AbortSignal.timeout(10_000) });
  // An accepted stream is ended at once: only its status matters here.
  const streaming = response.headers.get('content-type')?.startsWith('text/event-stream') ?? false;
  const text = streaming ? '' : await response.text();
  if (streaming) await response.body?.cancel();
  if (!(path.startsWith('/events') && response.status === 200)) {
    triples.add(`${init.method ?? 'GET'} ${new URL(path, app.url).pathname} ${response.status}`);
  }
  return { status: response.status, text };
}

/** Label sets of pulseboard_http_request_duration_seconds in the cluster scrape. */
async function httpSeries(app: TestApp): Promise<string[]> {
  const response = await fetch(`${app.url}/metrics`, {
    headers: { Authorization: `Bearer ${METRICS_TOKEN}` },
  });
  triples.add(`GET /metrics ${response.status}`);
  const text = await response.text();
  return text
    .split('\n')
    .filter((line) => line.startsWith('pulseboard_http_request_duration_seconds_count{'))
    .map((line) => line.slice(line.indexOf('{'), line.lastIndexOf('}') + 1));
}

/**
 * Encodings whose body does not decode (issue 14, item 5): `<header>:plain` sends the raw bytes under a
 * compressed Content-Encoding, `<header>:truncated` the compressed bytes without their last half.
 */
const UNDECODABLE = ['gzip:plain', 'deflate:plain', 'br:plain', 'gzip:truncated', 'br:truncated'];

/** The Content-Encoding header sent for a fuzzed encoding ('gzip:plain' sends 'gzip'). */
function encodingHeader(encoding: string): string {
  return encoding.split(':')[0] ?? '';
}

function encode(body: string, encoding: string): Blob | string {
  const bytes = Buffer.from(body, 'utf8');
  if (encoding.endsWith(':plain')) return new Blob([bytes]);
  if (encoding.endsWith(':truncated')) {
    const whole = encoding.startsWith('br') ? brotliCompressSync(bytes) : gzipSync(bytes);
    return new Blob([whole.subarray(0, Math.floor(whole.length / 2))]);
  }
  if (encoding === 'gzip') return new Blob([gzipSync(bytes)]);
  if (encoding === 'deflate') return new Blob([deflateSync(bytes)]);
  if (encoding === 'br') return new Blob([brotliCompressSync(bytes)]);
  return body;
}

describe('fuzzing every HTTP input', function () {
  this.timeout(180_000);
  const bed = useTestBed();
  // Nested, so this block's after hook (stopping the app) runs before the bed's (stopping Redis).
  describe('one worker under hostile input', function () {
    let app: TestApp;
    let session: TestSession;
    let token: string;
    /** Ids the server answered for accepted publishes. */
    let acceptedIds: string[];

    before(async function () {
      // One app for the whole suite (the bed stops apps after each test, so it is started here by hand).
      const prefix = `pbfuzz-${FUZZ_SEED}-${Date.now()}`;
      app = await startTestApp(bed.redis.url, {
        PULSEBOARD_PREFIX: prefix,
        METRICS_TOKEN,
        HISTORY_MAX: '1000000',
        MAX_STREAMS_PER_SESSION: '100000',
        LOGIN_MAX_FAILURES_PER_IP: '1000000',
        LOGIN_MAX_FAILURES_PER_USER_IP: '1000000',
      });
      session = await login(app.url, { redisUrl: bed.redis.url, prefix, username: 'fuzzer' });
      triples.add('POST /api/login 200');
      token = (await new TokenStore(bed.client, redisNames(prefix)).create('fuzz')).token;
      acceptedIds = [];
    });
    after(async function () {
      await app?.stop();
    });

    it('GET /events: Last-Event-ID, ?since= and ?topics=', async function () {
      const resumeValue = fc.oneof(
        fc.constant(undefined),
        fc.stringMatching(/^\d{1,22}-\d{1,22}$/),
        fc.constantFrom('0-0', '18446744073709551615-18446744073709551615', '99999999999999999999-0', '-1-0'),
        headerText,
      );
      await fc.assert(
        fc.asyncProperty(
          resumeValue,
          resumeValue,
          fc.option(headerText, { nil: undefined }),
          async (header, since, topics) => {
            const query = new URLSearchParams();
            if (since !== undefined) query.set('since', since);
            if (topics !== undefined) query.set('topics', topics);
            const headers: Record<string, string> = { ...session.headers };
            if (header !== undefined) headers['Last-Event-ID'] = header;
            const answer = await send(app, `/events?${query}`, { headers });
            const resume = (header?.trim() || since?.trim()) ?? '';
            let topicsOk = true;
            try {
              parseTopics(topics);
            } catch {
              topicsOk = false;
            }
            // A resume cursor (docs/events.md, "Resume"): `<board>:<id>` pairs, or a bare id (main's).
            const resumeOk = resume === '' || parseCursor(resume).ok;
            if (!resumeOk || !topicsOk)
              expect(answer.status, `${answer.status} ${answer.text}`).to.equal(400);
            // A syntactically valid id out of Redis' 64-bit range may be refused (400) or accepted.
            else expect([200, 400]).to.include(answer.status);
          },
        ),
        { seed: FUZZ_SEED, numRuns: fuzzRuns(500) },
      );
    });

    it('POST /api/publish: bodies, content types and encodings', async function () {
      await fc.assert(
        fc.asyncProperty(
          eventBodyText,
          fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', '', 'x/y'),
          fc.constantFrom('', 'identity', 'gzip', 'deflate', 'br', 'compress', 'x-unknown', ...UNDECODABLE),
          async (body, contentType, encoding) => {
            const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
            if (contentType) headers['Content-Type'] = contentType;
            if (encoding) headers['Content-Encoding'] = encodingHeader(encoding);
            const answer = await send(app, '/api/publish', {
              method: 'POST',
              headers,
              body: encode(body, encoding),
            });
            const local = parseRawEventInput(body);
            const cleanRequest =
              contentType.startsWith('application/json') &&
              ['', 'identity', 'gzip', 'deflate', 'br'].includes(encoding);
            if (answer.status === 200) {
              expect(local.ok, `accepted an invalid body: ${body.slice(0, 200)}`).to.equal(true);
              expect(cleanRequest).to.equal(true);
              const { ids } = JSON.parse(answer.text) as { ids: string[] };
              for (const id of ids) expect(streamIdSchema.safeParse(id).success).to.equal(true);
              acceptedIds.push(...ids);
            } else {
              expect(CLEAR_REFUSALS.has(answer.status), `${answer.status} ${answer.text}`).to.equal(true);
              // A valid event in a clean request must not be refused.
              if (cleanRequest && local.ok)
                expect.fail(`refused a valid event: ${answer.status} ${answer.text}`);
            }
          },
        ),
        { seed: FUZZ_SEED, numRuns: fuzzRuns(1000) },
      );
    });

    it('POST /api/login: bodies and content types', async function () {
      await fc.assert(
        fc.asyncProperty(
          // Bodies that pass validation cost a full scrypt each (unknown users too, by design): keep them rare.
          fc.oneof(
            {
              arbitrary: fc
                .record({ username: fc.string({ minLength: 1 }), password: fc.string({ minLength: 1 }) })
                .map((body) => JSON.stringify(body)),
              weight: 1,
            },
            {
              arbitrary: fc
                .record({ username: fc.jsonValue(), password: fc.jsonValue() })
                .map((body) => JSON.stringify(body)),
              weight: 8,
            },
            { arbitrary: fc.json(), weight: 8 },
            { arbitrary: fc.string({ unit: 'binary' }), weight: 8 },
          ),
          fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', ''),
          async (body, contentType) => {
            const headers: Record<string, string> = { Origin: app.url };
            if (contentType) headers['Content-Type'] = contentType;
            const answer = await send(app, '/api/login', { method: 'POST', headers, body });
            // No generated body carries the fuzzer's password: never a session.
            expect(CLEAR_REFUSALS.has(answer.status), `${answer.status} ${answer.text}`).to.equal(true);
          },
        ),
        { seed: FUZZ_SEED, numRuns: fuzzRuns(300) },
      );
    });

    it('undecodable bodies on /api/login and /api/publish, with and without credentials: 400/415', async function () {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('/api/login', '/api/publish'),
          fc.boolean(),
          fc.json(),
          fc.constantFrom(...UNDECODABLE),
          async (path, withCredentials, body, encoding) => {
            const headers: Record<string, string> = {
              'Content-Type': 'application/json',
              'Content-Encoding': encodingHeader(encoding),
              Origin: app.url,
            };
            if (withCredentials && path === '/api/publish') headers.Authorization = `Bearer ${token}`;
            if (withCredentials && path === '/api/login') Object.assign(headers, session.csrfHeaders);
            const answer = await send(app, path, { method: 'POST', headers, body: encode(body, encoding) });
            // Without credentials a publish may be refused before its body is read (401); never a 500.
            const allowed = path === '/api/publish' && !withCredentials ? [400, 401, 415] : [400, 415];
            expect(allowed, `${path} ${encoding}: ${answer.status} ${answer.text}`).to.include(answer.status);
          },
        ),
        { seed: FUZZ_SEED, numRuns: fuzzRuns(200) },
      );
    });

    it('cookies and headers on session, snapshot and logout requests', async function () {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('/api/session', '/api/snapshot', '/api/logout'),
          headerText,
          fc.dictionary(
            fc.constantFrom(
              'X-Forwarded-For',
              'X-Forwarded-Host',
              'X-Forwarded-Proto',
              'Origin',
              'X-CSRF-Token',
              'X-Request-Id',
              'Accept-Encoding',
            ),
            headerText,
          ),
          async (path, cookie, extra) => {
            const method = path === '/api/logout' ? 'POST' : 'GET';
            const answer = await send(app, path, { method, headers: { ...extra, Cookie: cookie } });
            // A made-up cookie is never a session.
            expect(CLEAR_REFUSALS.has(answer.status), `${answer.status} ${answer.text}`).to.equal(true);
          },
        ),
        { seed: FUZZ_SEED, numRuns: fuzzRuns(500) },
      );
    });

    it('sequenced only valid events, every accepted one exactly once, and created no series from input', async function () {
      // Black-box: read the log back the way a browser does, from the start.
      const stream = bed.openStream(`${app.url}/events?since=0-0`, { headers: session.headers });
      await stream.waitFor((events) => events.length >= acceptedIds.length, 30_000, 'the replay of the log');
      await new Promise((resolve) => setTimeout(resolve, 200));
      stream.close();
      for (const event of stream.events) expect(envelopeSchema.safeParse(event).success).to.equal(true);
      expect(stream.events.map((event) => event.id)).to.deep.equal(acceptedIds);
      expect(acceptedIds.length, 'the fuzz accepted some events').to.be.greaterThan(0);

      const series = await httpSeries(app);
      const scraped = new Set(series);
      expect(
        scraped.size,
        `series ${[...scraped].join(' ')} vs requests ${[...triples].join(' | ')}`,
      ).to.be.at.most(triples.size);
      // And the health of the worker after all of it.
      expect((await fetch(`${app.url}/healthz`)).status).to.equal(200);
    });
  });
});
