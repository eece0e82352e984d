// Fuzzing (docs/reliability.md, "Tests"): raw PUBLISH payloads on the ingest channel, black-box (the ingest internals
// are being rewritten): valid payloads are sequenced exactly once each, nothing invalid is sequenced,
// the worker stays healthy, and the metric series count does not grow with what was sent.
import { expect } from 'chai';
import fc from 'fast-check';
import { parseRawEventInput, toSingleEvents } from '../../shared/events.ts';
import { redisNames } from '../../shared/keys.ts';
import { useTestBed } from '../helpers/test-bed.ts';
import { eventBodyText, FUZZ_SEED, fuzzRuns } from './fuzz-arbitraries.ts';

const METRICS_TOKEN = 'fuzz-metrics-token-0123456789';
/** A timestamp outside this window may be refused by a server that bounds ts against its clock. */
const SURELY_VALID_TS_MS = 86_400_000;

function timestampsOf(value: unknown): unknown[] {
  if (typeof value !== 'object' || value === null) return [];
  const record = value as { ts?: unknown; points?: unknown };
  const own = 'ts' in record ? [record.ts] : [];
  const points = Array.isArray(record.points) ? record.points.flatMap(timestampsOf) : [];
  return [...own, ...points];
}

/** The series (name and labels) of pulseboard's own metrics in a scrape. */
async function seriesOf(url: string): Promise<Set<string>> {
  const text = await (
    await fetch(`${url}/metrics`, { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } })
  ).text();
  return new Set(
    text
      .split('\n')
      .filter((line) => line.startsWith('pulseboard_'))
      .map((line) => line.slice(0, line.lastIndexOf(' '))),
  );
}

describe('fuzzing raw ingest payloads', function () {
  this.timeout(120_000);
  const bed = useTestBed();

  it('sequences each valid payload once and nothing else, and stays healthy', async function () {
    const app = await bed.startApp({ METRICS_TOKEN, HISTORY_MAX: '1000000' });
    const session = await bed.login(app.url, { username: 'fuzzer' });
    const channel = redisNames(bed.prefix).ingestChannel;
    const stream = bed.openStream(`${app.url}/events?since=0-0`, { headers: session.headers });
    await stream.waitForOpen();
    // Warm every label the ingest path can use (one accepted event of each type, one rejection).
    for (const warm of [
      '{"type":"status","service":"warm","state":"ok"}',
      '{"type":"metric","name":"warm","value":1}',
      '{"type":"event","level":"info","title":"warm"}',
      'not json',
      '{"type":"nope"}',
      '{"type":"status"}',
      'x'.repeat(70_000),
    ]) {
      await bed.client.publish(channel, warm);
    }
    const warmEvents = 3;
    await stream.waitFor((events) => events.length >= warmEvents, 10_000, 'the warm-up events');
    await seriesOf(app.url); // the scrape's own request series appear from the second scrape on
    const seriesBefore = await seriesOf(app.url);

    const payloads = fc.sample(
      fc.uniqueArray(eventBodyText, { minLength: fuzzRuns(2000), maxLength: fuzzRuns(2000) }),
      { seed: FUZZ_SEED, numRuns: 1 },
    )[0]!;
    let surely = 0;
    let maybe = 0;
    for (const payload of payloads) {
      const parsed = parseRawEventInput(payload);
      if (!parsed.ok) continue;
      const count = toSingleEvents(parsed.value).length;
      const now = Date.now();
      const risky = timestampsOf(JSON.parse(payload)).some(
        (ts) => typeof ts === 'number' && (ts < now - SURELY_VALID_TS_MS || ts > now),
      );
      if (risky) maybe += count;
      else surely += count;
    }
    for (const payload of payloads) await bed.client.publish(channel, payload);

    await stream.waitFor((events) => events.length >= warmEvents + surely, 60_000, 'the sequenced payloads');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const sequenced = stream.events.length - warmEvents;
    expect(sequenced).to.be.within(surely, surely + maybe);
    // Every event the stream delivered passed the envelope schema (the helper parses each one), ids rise.
    const ids = stream.events.map((event) => event.id);
    expect(new Set(ids).size, 'no event twice').to.equal(ids.length);
    expect(surely, 'the fuzz sent valid payloads').to.be.greaterThan(0);

    const seriesAfter = await seriesOf(app.url);
    const created = [...seriesAfter].filter((series) => !seriesBefore.has(series));
    expect(created, 'metric series created by payloads').to.deep.equal([]);
    expect((await fetch(`${app.url}/healthz`)).status).to.equal(200);
  });
});
