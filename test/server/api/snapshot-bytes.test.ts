import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import { expect } from 'chai';
import { snapshotSchema } from '../../../shared/api.ts';
import { createPublisher } from '../../../shared/publisher.ts';
import type { TestApp } from '../../helpers/app.ts';
import type { TestSession } from '../../helpers/auth.ts';
import { useTestBed } from '../../helpers/test-bed.ts';
import { sleep } from '../../helpers/sse-client.ts';

/** GET /api/snapshot with gzip accepted; the raw (still compressed) bytes, not decoded here. */
function rawSnapshot(app: TestApp, session: TestSession): Promise<{ encoding: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const request = http.get(
      `${app.url}/api/snapshot`,
      { headers: { ...session.headers, 'Accept-Encoding': 'gzip' }, agent: false },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ encoding: String(response.headers['content-encoding']), body: Buffer.concat(chunks) }),
        );
        response.on('error', reject);
      },
    );
    request.on('error', reject);
  });
}

/** CPU time (user + system, ms) this process spends in `work`; the app runs in this process. */
async function cpuMs(work: () => Promise<unknown>): Promise<number> {
  const before = process.cpuUsage();
  await work();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

describe('GET /api/snapshot bytes', function () {
  this.timeout(60_000);
  const bed = useTestBed();

  it('a metric called __proto__ or constructor is in the snapshot like any other', async function () {
    const app = await bed.startApp();
    const session = await bed.login(app.url);
    const publisher = createPublisher(bed.client, { prefix: bed.prefix });
    for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'api.latency']) {
      await publisher.publish({ type: 'metric', name, value: name.length });
    }
    const response = await fetch(`${app.url}/api/snapshot`, { headers: session.headers });
    const snapshot = snapshotSchema.parse(await response.json());
    const names = snapshot.metrics.map((series) => series.name).sort();
    expect(names).to.deep.equal(['__proto__', 'api.latency', 'constructor', 'hasOwnProperty', 'toString']);
    const proto = snapshot.metrics.find((series) => series.name === '__proto__');
    expect(proto?.points.map((point) => point.value)).to.deep.equal([9]);
  });

  it('is serialized and compressed once per read, not once per request', async function () {
    const app = await bed.startApp({ METRIC_HISTORY_MAX: '100' });
    const session = await bed.login(app.url);
    const publisher = createPublisher(bed.client, { prefix: bed.prefix });
    // 200 series x 100 points: a snapshot of a few MB, as a busy installation has.
    for (let batch = 0; batch < 20; batch += 1) {
      const points = Array.from({ length: 1000 }, (_, index) => ({
        name: `host-${String(index % 200).padStart(3, '0')}.cpu.user`,
        value: batch * 1000 + index,
        unit: 'percent',
      }));
      await publisher.publish({ type: 'metrics', points });
    }
    const first = await rawSnapshot(app, session);
    expect(first.encoding).to.equal('gzip');
    const json = gunzipSync(first.body);
    expect(json.length).to.be.above(2_000_000);
    expect(snapshotSchema.parse(JSON.parse(json.toString('utf8'))).metrics).to.have.length(200);

    await sleep(300); // past the 250 ms reuse: the next read goes to Redis again
    const one = await cpuMs(() => rawSnapshot(app, session));
    await sleep(300);
    const twenty = await cpuMs(() =>
      Promise.all(Array.from({ length: 20 }, () => rawSnapshot(app, session))),
    );
    console.log(`      cpu: 1 request ${one.toFixed(0)} ms, 20 concurrent ${twenty.toFixed(0)} ms`);
    // Twenty requests served by one read cost about one read, not twenty serializations.
    expect(twenty).to.be.below(one * 3);
  });
});
