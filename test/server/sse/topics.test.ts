import { expect } from 'chai';
import { errorResponseSchema } from '../../../shared/api.ts';
import { createPublisher } from '../../../shared/publisher.ts';
import { ValidationError } from '../../../server/http/errors.ts';
import { parseTopics } from '../../../server/sse/topics.ts';
import { globMatches } from '../../../shared/topics.ts';
import type { TestApp } from '../../helpers/app.ts';
import type { TestSession } from '../../helpers/auth.ts';
import { sleep } from '../../helpers/sse-client.ts';
import { useTestBed } from '../../helpers/test-bed.ts';

describe('topic filters', function () {
  describe('parseTopics', function () {
    it('matches kinds, exact names and * wildcards anywhere in the name', function () {
      const filter = parseTopics('metric:api.*,status,event:error,metric:*.p99');
      expect(filter.matches('metric:api.latency')).to.equal(true);
      expect(filter.matches('metric:api.')).to.equal(true);
      expect(filter.matches('metric:web.p99')).to.equal(true);
      expect(filter.matches('status:anything')).to.equal(true);
      expect(filter.matches('event:error')).to.equal(true);
      expect(filter.matches('event:warn')).to.equal(false);
      expect(filter.matches('metric:apix.latency')).to.equal(false);
      expect(filter.matches('metric:web.latency')).to.equal(false);
    });

    it('treats . and other name characters literally', function () {
      const filter = parseTopics('metric:a.b');
      expect(filter.matches('metric:a.b')).to.equal(true);
      expect(filter.matches('metric:aXb')).to.equal(false);
      expect(parseTopics('*:api').matches('status:api')).to.equal(true);
      expect(parseTopics('*:api').matches('status:api2')).to.equal(false);
    });

    it('means everything when empty, "*", or only commas', function () {
      for (const value of [undefined, '', '*', ' , ,', ['status', '*']]) {
        const filter = parseTopics(value);
        expect(filter.key).to.equal('*');
        expect(filter.matches('metric:x')).to.equal(true);
      }
    });

    it('gives filters that match the same topics the same key', function () {
      expect(parseTopics('status:*,metric:a**').key).to.equal(parseTopics(['metric:a*', 'status']).key);
    });

    it('rejects bad patterns with a ValidationError naming the field', function () {
      for (const bad of [
        'bogus',
        'metric:',
        'metric:a b',
        'status:<script>',
        'event:"x"',
        'metric:' + 'a'.repeat(65),
      ]) {
        expect(() => parseTopics(bad), bad)
          .to.throw(ValidationError)
          .with.property('field', 'topics');
      }
      const tooMany = Array.from({ length: 51 }, (_, index) => `metric:m${index}`).join(',');
      expect(() => parseTopics(tooMany)).to.throw(ValidationError);
    });

    it('matches hostile many-star patterns in linear time (no regex backtracking)', function () {
      const glob = `metric:${'*a'.repeat(28)}*b`;
      const filter = parseTopics(glob);
      const started = process.hrtime.bigint();
      for (let round = 0; round < 100; round += 1) filter.matches(`metric:${'a'.repeat(64)}`);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      expect(filter.matches(`metric:${'a'.repeat(63)}b`)).to.equal(true);
      expect(ms).to.be.below(200);
    });

    it('globMatches agrees with a regex on ordinary patterns', function () {
      const cases: [string, string, boolean][] = [
        ['a*', 'a', true],
        ['a*c', 'abc', true],
        ['a*c', 'abd', false],
        ['*', '', true],
        ['', '', true],
        ['', 'a', false],
        ['a*b*c', 'aXbYc', true],
        ['a*b*c', 'aXcYb', false],
        ['*x*', 'abxcd', true],
      ];
      for (const [glob, text, expected] of cases)
        expect(globMatches(glob, text), `${glob} ~ ${text}`).to.equal(expected);
    });
  });

  describe('on the stream', function () {
    const bed = useTestBed();
    let app: TestApp | undefined;
    let session: TestSession;

    beforeEach(async function () {
      app = await bed.startApp();
      session = await bed.login(app.url);
    });

    const inputs = [
      { type: 'metric', name: 'api.latency', value: 1 },
      { type: 'metric', name: 'web.latency', value: 2 },
      { type: 'metric', name: 'api.errors', value: 3 },
      { type: 'status', service: 'api', state: 'ok' },
      { type: 'event', level: 'error', title: 'boom' },
      { type: 'event', level: 'info', title: 'fyi' },
      { type: 'metric', name: 'apiary', value: 4 },
    ];

    it('sends a client subscribed to metric:api.* only those metrics, live and on resume', async function () {
      const publisher = createPublisher(bed.client, { prefix: bed.prefix });
      const open = (query: string, headers: Record<string, string> = {}) => {
        const stream = bed.openStream(`${app!.url}/events${query}`, {
          headers: { ...session.headers, ...headers },
        });
        return stream;
      };
      const apiMetrics = open('?topics=metric:api.*');
      const errorsAndStatus = open('?topics=event:error,status:*');
      const everything = open('');
      await Promise.all(bed.streams.map((stream) => stream.waitForOpen()));
      const [firstId] = await publisher.publish({ type: 'status', service: 'warmup', state: 'ok' });
      for (const input of inputs) await publisher.publish(input);
      await everything.waitFor((events) => events.length === inputs.length + 1);
      const resumed = open('?topics=metric:api.*', { 'Last-Event-ID': firstId! });
      await resumed.waitFor((events) => events.length === 2);
      await sleep(200);

      expect(apiMetrics.events.map((event) => event.type === 'metric' && event.name)).to.deep.equal([
        'api.latency',
        'api.errors',
      ]);
      expect(resumed.events).to.deep.equal(apiMetrics.events);
      expect(errorsAndStatus.events.map((event) => event.type)).to.deep.equal(['status', 'status', 'event']);
      expect(errorsAndStatus.events[2]).to.include({ level: 'error' });
    });

    it('answers 400 with a JSON error naming topics for a bad pattern', async function () {
      const response = await fetch(`${app!.url}/events?topics=metrics:api.*`, { headers: session.headers });
      expect(response.status).to.equal(400);
      expect(response.headers.get('content-type')).to.match(/^application\/json/);
      const body = errorResponseSchema.parse(await response.json());
      expect(body.error).to.include({ code: 'invalid_input', field: 'topics' });
      expect(body.error.message).to.include('metrics:api.*');
    });
  });
});
