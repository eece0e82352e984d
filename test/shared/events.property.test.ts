// Property-based tests of the event contract: whatever the schema accepts can neither break an SSE frame
// nor change on its way publish -> Redis -> worker -> SSE -> EventSource -> schema.
import { expect } from 'chai';
import fc from 'fast-check';
import { createClient } from 'redis';
import {
  MAX_BATCH_POINTS,
  EVENT_LEVELS,
  compareStreamIds,
  STATUS_STATES,
  parseEnvelope,
  parseEventInput,
  toSingleEvents,
  type Envelope,
  type EventInput,
} from '../../shared/events.ts';
import { createPublisher } from '../../shared/publisher.ts';
import { encodeEvent } from '../../server/sse/frame.ts';
import { startTestApp, stopAll, uniquePrefix, type TestApp } from '../helpers/app.ts';
import { login } from '../helpers/auth.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { openStream, type RecordedStream } from '../helpers/sse-client.ts';

// Characters that matter to SSE (CR, LF, NUL), to JSON (quote, backslash), to JavaScript (U+2028/9,
// lone surrogates, BOM), plus any code point at all.
const trickyUnit = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '\r',
      '\n',
      '\r\n',
      '\0',
      '\u2028',
      '\u2029',
      '"',
      '\\',
      '\uD800',
      '\uDFFF',
      '\uFEFF',
      ':',
    ),
  },
  { weight: 5, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
);

/** Any text of at most `max` UTF-16 code units (the unit zod's `.max()` counts). */
const text = (min: number, max: number) =>
  fc
    .string({ unit: trickyUnit, minLength: min, maxLength: Math.min(max, 40) })
    .chain((short) =>
      fc.oneof(
        { weight: 9, arbitrary: fc.constant(short) },
        // Now and then right at the limit.
        { weight: 1, arbitrary: fc.constant(short.padEnd(max, '\u00e9\r\n')) },
      ),
    )
    .map((value) => value.slice(0, max))
    .filter((value) => value.length >= min);

const name = fc.stringMatching(/^[A-Za-z0-9._:/-]{1,64}$/);
const ts = fc.bigInt({ min: 0n, max: 8_640_000_000_000_000n }).map(Number);
const value = fc.double({ noNaN: true, noDefaultInfinity: true });

const status = fc.record(
  {
    type: fc.constant('status' as const),
    service: name,
    state: fc.constantFrom(...STATUS_STATES),
    message: text(0, 500),
    group: name,
    ttl: fc.integer({ min: 1, max: 31_536_000 }),
    ts,
  },
  { requiredKeys: ['type', 'service', 'state'] },
);
const pointFields = { name, value, unit: text(1, 16), ts };
const metric = fc.record(
  { type: fc.constant('metric' as const), ...pointFields },
  { requiredKeys: ['type', 'name', 'value'] },
);
const metrics = fc.record({
  type: fc.constant('metrics' as const),
  points: fc.array(fc.record(pointFields, { requiredKeys: ['name', 'value'] }), {
    minLength: 1,
    maxLength: 4,
  }),
});
const logEvent = fc.record(
  {
    type: fc.constant('event' as const),
    level: fc.constantFrom(...EVENT_LEVELS),
    title: text(1, 200),
    text: text(0, 2000),
    service: name,
    ts,
  },
  { requiredKeys: ['type', 'level', 'title'] },
);
const anyInput: fc.Arbitrary<EventInput> = fc.oneof(status, metric, metrics, logEvent);
/** Moves every `ts` into the past, which the sequencing script accepts (docs/events.md, "Timestamps"). */
function pastTs(input: EventInput): EventInput {
  const now = Date.now();
  const past = (value: number | undefined) => (value === undefined ? undefined : value % now);
  if (input.type === 'metrics')
    return { ...input, points: input.points.map((point) => ({ ...point, ts: past(point.ts) })) };
  return { ...input, ts: past(input.ts) };
}
const streamId = fc
  .tuple(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }))
  .map(([ms, seq]) => `${ms}-${seq}`);

/** What a client must see for one published event: the input, its id, and `ts` (given or sequencing time). */
function expectedEnvelope(
  event: ReturnType<typeof toSingleEvents>[number],
  id: string,
  tsValue: number,
): Envelope {
  const expected = { ...event, board: event.board ?? 'main', id, ts: event.ts ?? tsValue };
  // JSON has no -0: it travels as 0 (docs/events.md).
  if (expected.type === 'metric' && Object.is(expected.value, -0)) expected.value = 0;
  return expected;
}

describe('event schema properties', function () {
  it('orders stream ids by their numeric value, leading zeros included', function () {
    const part = fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.bigInt({ min: 0n, max: 20n }));
    const id = fc
      .tuple(part, part, fc.nat({ max: 3 }), fc.nat({ max: 3 }))
      .map(([ms, seq, msZeros, seqZeros]) => ({
        text: `${'0'.repeat(msZeros)}${ms}-${'0'.repeat(seqZeros)}${seq}`,
        ms,
        seq,
      }));
    fc.assert(
      fc.property(id, id, (a, b) => {
        const expected =
          a.ms !== b.ms ? (a.ms < b.ms ? -1 : 1) : a.seq !== b.seq ? (a.seq < b.seq ? -1 : 1) : 0;
        expect(compareStreamIds(a.text, b.text)).to.equal(expected);
      }),
      { numRuns: 2000 },
    );
  });

  it('accepts every input generated from its limits', function () {
    fc.assert(
      fc.property(anyInput, (input) => {
        const parsed = parseEventInput(input);
        expect(parsed.ok, JSON.stringify(parsed)).to.equal(true);
      }),
      { numRuns: 500 },
    );
  });

  it('encodes every accepted event as exactly one id, one event and one data line: no field can inject CR, LF or NUL', function () {
    fc.assert(
      fc.property(anyInput, streamId, ts, (input, id, sequencedTs) => {
        for (const event of toSingleEvents(input)) {
          // The hub's path: envelope text from Redis -> parseEnvelope -> encodeEvent.
          const parsed = parseEnvelope(JSON.stringify({ ...event, id, ts: event.ts ?? sequencedTs }));
          expect(parsed.ok).to.equal(true);
          if (!parsed.ok) return;
          const frame = encodeEvent(parsed.value, id).toString('utf8');
          expect(frame).to.not.match(/[\r\0]/);
          const match = /^id: ([^\n]*)\nevent: ([^\n]*)\ndata: ([^\n]*)\n\n$/.exec(frame);
          expect(match, frame).to.not.equal(null);
          expect(match![1]).to.equal(id);
          expect(match![2]).to.equal(event.type);
          expect(JSON.parse(match![3]!)).to.deep.equal(expectedEnvelope(event, id, sequencedTs));
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('rejects inputs just past each limit, naming the field', function () {
    const cases: [unknown, string][] = [
      [{ type: 'status', service: 'a'.repeat(65), state: 'ok' }, 'service'],
      [{ type: 'status', service: 'a b', state: 'ok' }, 'service'],
      [{ type: 'status', service: 'api', state: 'ok', message: 'm'.repeat(501) }, 'message'],
      [{ type: 'status', service: 'api', state: 'ok', ttl: 0 }, 'ttl'],
      [{ type: 'status', service: 'api', state: 'ok', extra: 1 }, 'extra'],
      [{ type: 'metric', name: 'm', value: Number.POSITIVE_INFINITY }, 'value'],
      [{ type: 'metric', name: 'm', value: 1, unit: 'u'.repeat(17) }, 'unit'],
      [{ type: 'metric', name: 'm', value: 1, ts: -1 }, 'ts'],
      [{ type: 'metric', name: 'm', value: 1, ts: 1.5 }, 'ts'],
      [{ type: 'event', level: 'info', title: '' }, 'title'],
      [{ type: 'event', level: 'info', title: 't', text: 'x'.repeat(2001) }, 'text'],
      [{ type: 'event', level: 'fatal', title: 't' }, 'level'],
      [{ type: 'metrics', points: [] }, 'points'],
      [
        {
          type: 'metrics',
          points: [
            { name: 'm', value: 1 },
            { name: 'm', value: 'x' },
          ],
        },
        'points.1.value',
      ],
      [{ type: 'nope' }, 'type'],
    ];
    for (const [input, field] of cases) {
      const parsed = parseEventInput(input);
      expect(parsed.ok, JSON.stringify(input)).to.equal(false);
      if (!parsed.ok) expect(parsed.field, JSON.stringify(input)).to.equal(field);
    }
    const batch = (size: number) => ({
      type: 'metrics',
      points: Array.from({ length: size }, (_, index) => ({ name: 'm', value: index })),
    });
    expect(parseEventInput(batch(MAX_BATCH_POINTS)).ok).to.equal(true);
    expect(parseEventInput(batch(MAX_BATCH_POINTS + 1)).ok).to.equal(false);
  });

  describe('round trip through Redis, a worker and EventSource', function () {
    this.timeout(60_000);
    let redis: TestRedis;
    let client: ReturnType<typeof createClient>;
    let app: TestApp | undefined;
    let stream: RecordedStream | undefined;
    let prefix: string;

    before(async function () {
      redis = await startTestRedis();
      client = createClient({ url: redis.url });
      await client.connect();
      prefix = uniquePrefix();
      app = await startTestApp(redis.url, { PULSEBOARD_PREFIX: prefix });
      const session = await login(app.url, { redisUrl: redis.url, prefix });
      stream = openStream(`${app.url}/events`, { headers: session.headers });
      await stream.waitForOpen();
    });
    after(async function () {
      stream?.close();
      await stopAll([app]);
      await client.quit();
      await redis.close();
    });

    it('delivers every accepted input unchanged (plus id and ts)', async function () {
      const publisher = createPublisher(client, { prefix });
      await fc.assert(
        fc.asyncProperty(anyInput.map(pastTs), async (input) => {
          const before = Date.now();
          const ids = await publisher.publish(input);
          const recorded = stream!;
          await recorded.waitFor(
            (events) => events.length > 0 && events.at(-1)!.id === ids.at(-1),
            5000,
            'the published events',
          );
          const received = recorded.events.slice(-ids.length);
          const singles = toSingleEvents(input);
          expect(received.map((event) => event.id)).to.deep.equal(ids);
          for (const [index, event] of singles.entries()) {
            const got = received[index]!;
            if (event.ts === undefined) expect(got.ts).to.be.within(before - 5000, Date.now() + 5000);
            expect(got).to.deep.equal(expectedEnvelope(event, ids[index]!, got.ts));
          }
        }),
        { numRuns: 150 },
      );
    });
  });
});
