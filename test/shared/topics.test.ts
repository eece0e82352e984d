// One table for topic patterns (docs/events.md, "Topics"), run against the shared parser and both of its
// users: the server's `?topics=` filter and the browser's SharedWorker matcher must agree on every row.
import { expect } from 'chai';
import { compileTopics as compileInBrowser } from '../../client/state/topics.ts';
import { ValidationError } from '../../server/http/errors.ts';
import { parseTopics } from '../../server/sse/topics.ts';
import { compileTopics, EVENT_KINDS, MAX_TOPICS, type TopicMatcher } from '../../shared/topics.ts';

const MATCHERS: [string, (patterns: string[]) => TopicMatcher][] = [
  [
    'shared',
    (patterns) => {
      const result = compileTopics(patterns);
      if (!result.ok) throw new Error(result.message);
      return result.matcher;
    },
  ],
  ['server', (patterns) => parseTopics(patterns.join(','))],
  ['browser', (patterns) => compileInBrowser(patterns)],
];

// [patterns, topic, matches]
const TABLE: [string[], string, boolean][] = [
  [[], 'status:api', true],
  [['*'], 'metric:x', true],
  [['*:*'], 'event:info', true],
  // A bare kind is every topic of that kind, in the browser as on the server.
  [['status'], 'status:api', true],
  [['status'], 'status', false],
  [['status'], 'metric:api', false],
  [['status:*'], 'status:api', true],
  [['metric'], 'metric:api.latency', true],
  [['event'], 'event:error', true],
  [['status:api'], 'status:api', true],
  [['status:api'], 'status:api2', false],
  [['status:api'], 'metric:api', false],
  // `*` is any run of characters, including none; everything else is literal (a dot is a dot).
  [['metric:api.*'], 'metric:api.latency', true],
  [['metric:api.*'], 'metric:api.', true],
  [['metric:api.*'], 'metric:apiary', false],
  [['metric:a.b'], 'metric:aXb', false],
  [['metric:*.p99'], 'metric:web.p99', true],
  [['metric:*.p99'], 'metric:web.p50', false],
  [['metric:a**b'], 'metric:ab', true],
  [['*:api'], 'status:api', true],
  [['*:api'], 'metric:api', true],
  [['*:api'], 'status:api2', false],
  [['status:db:*'], 'status:db:primary', true],
  [['metric:api.*', 'event:error'], 'event:error', true],
  [['metric:api.*', 'event:error'], 'event:warn', false],
  [['metric:api.*', 'event:error'], 'status:api', false],
];

describe('topic patterns: one parser and matcher for server and browser', function () {
  for (const [name, compile] of MATCHERS) {
    describe(name, function () {
      for (const [patterns, topic, expected] of TABLE) {
        it(`${JSON.stringify(patterns)} ${expected ? 'matches' : 'does not match'} ${topic}`, function () {
          expect(compile(patterns).matches(topic)).to.equal(expected);
        });
      }

      it('gives patterns that match the same topics the same key', function () {
        expect(compile(['status', 'metric:a**']).key).to.equal(compile(['metric:a*', 'status:*']).key);
        expect(compile(['*:*']).key).to.equal('*');
      });
    });
  }

  const BAD = [
    'bogus',
    'metric:',
    'metric:a b',
    'status:<script>',
    'event:"x"',
    `metric:${'a'.repeat(65)}`,
    ':x',
  ];
  for (const pattern of BAD) {
    it(`refuses ${JSON.stringify(pattern.slice(0, 20))} everywhere, naming it`, function () {
      const result = compileTopics([pattern]);
      expect(result.ok).to.equal(false);
      expect(!result.ok && result.pattern).to.equal(pattern);
      expect(() => parseTopics(pattern))
        .to.throw(ValidationError, pattern.slice(0, 20))
        .with.property('field', 'topics');
      expect(() => compileInBrowser([pattern])).to.throw(TypeError);
    });
  }

  it(`refuses more than ${MAX_TOPICS} patterns`, function () {
    const many = Array.from({ length: MAX_TOPICS + 1 }, (_, index) => `metric:m${index}`);
    expect(compileTopics(many).ok).to.equal(false);
    expect(compileTopics(many.slice(1)).ok).to.equal(true);
  });

  it('lists every kind of envelope, as the SSE event names', function () {
    expect([...EVENT_KINDS].sort()).to.deep.equal(['event', 'metric', 'status']);
  });
});
