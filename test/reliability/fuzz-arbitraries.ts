// fast-check arbitraries for the hostile-input suites: valid events, events broken in one place, and
// plain garbage, plus the knobs (seed, runs) every fuzz suite shares.
import fc from 'fast-check';
import { EVENT_LEVELS, STATUS_STATES } from '../../shared/events.ts';

/** Seed of every fuzz property (FUZZ_SEED to replay a failure fast-check reported). */
export const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 20261201);
/** Cases per property: short in `npm test`, FUZZ_RUNS=20000 (npm run soak) for the long version. */
export function fuzzRuns(short: number): number {
  const fromEnv = Number(process.env.FUZZ_RUNS);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : short;
}

const name = fc.stringMatching(/^[A-Za-z0-9._:/-]{1,64}$/);
/** Timestamps within the last day: valid under any bound against the server's clock. */
const recentTs = fc.integer({ min: Date.now() - 86_400_000, max: Date.now() - 1000 });

export const validStatus = fc.record(
  {
    type: fc.constant('status'),
    service: name,
    state: fc.constantFrom(...STATUS_STATES),
    message: fc.string({ maxLength: 500 }),
    group: name,
    ttl: fc.integer({ min: 1, max: 31_536_000 }),
    ts: recentTs,
  },
  { requiredKeys: ['type', 'service', 'state'] },
);
const metricFields = {
  name,
  value: fc.double({ noNaN: true, noDefaultInfinity: true }),
  unit: fc.string({ minLength: 1, maxLength: 16 }),
  ts: recentTs,
};
export const validMetric = fc.record(
  { type: fc.constant('metric'), ...metricFields },
  { requiredKeys: ['type', 'name', 'value'] },
);
export const validBatch = fc.record({
  type: fc.constant('metrics'),
  points: fc.array(fc.record(metricFields, { requiredKeys: ['name', 'value'] }), {
    minLength: 1,
    maxLength: 20,
  }),
});
export const validLogEvent = fc.record(
  {
    type: fc.constant('event'),
    level: fc.constantFrom(...EVENT_LEVELS),
    title: fc.string({ minLength: 1, maxLength: 200 }),
    text: fc.string({ maxLength: 2000 }),
    service: name,
    ts: recentTs,
  },
  { requiredKeys: ['type', 'level', 'title'] },
);
export const validEvent = fc.oneof(validStatus, validMetric, validBatch, validLogEvent);

/** Hostile values for one field: wrong types, huge numbers, control and markup characters, prototypes. */
const hostileValue = fc.oneof(
  fc.constantFrom(
    null,
    true,
    -1,
    0,
    1e308,
    -1e308,
    Number.MAX_SAFE_INTEGER,
    Date.now() * 1000,
    '',
    '\r\n\0',
    'data: x\n\nevent: reset',
    '<script>alert(1)</script>',
    '__proto__',
    'constructor',
    '../../etc/passwd',
    'a'.repeat(70_000),
  ),
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.jsonValue(),
);

/** A valid event with one field replaced, removed or added. */
export const brokenEvent = fc
  .tuple(
    validEvent,
    fc.constantFrom(
      'type',
      'service',
      'state',
      'name',
      'value',
      'ts',
      'ttl',
      'title',
      'level',
      'points',
      '__proto__',
      'extra',
    ),
    hostileValue,
    fc.boolean(),
  )
  .map(([event, field, value, remove]) => {
    const copy: Record<string, unknown> = Object.fromEntries(
      Object.entries(event).filter(([key]) => !remove || key !== field),
    );
    if (!remove) {
      Object.defineProperty(copy, field, { value, enumerable: true, writable: true, configurable: true });
    }
    return copy;
  });

/** Request bodies as text: valid, broken, any JSON, any text (including lone surrogates and NULs). */
export const eventBodyText = fc.oneof(
  { arbitrary: validEvent.map((event) => JSON.stringify(event)), weight: 3 },
  { arbitrary: brokenEvent.map((event) => JSON.stringify(event)), weight: 3 },
  { arbitrary: fc.json(), weight: 1 },
  { arbitrary: fc.string({ unit: 'binary' }), weight: 1 },
  { arbitrary: fc.constantFrom('', '{', '[]', 'null', '{"type":"status"', '\u0000'), weight: 1 },
);

/** Header values a client can send (visible ASCII and spaces; fetch refuses CR, LF and NUL). */
export const headerText = fc.stringMatching(/^[\x20-\x7e]{0,200}$/);
