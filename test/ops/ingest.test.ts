// Exactly-once ingest with real worker processes and real faults (docs/events.md, "Raw PUBLISH: exactly
// once" and "Durable input"): repeats are kept, a paused worker doubles nothing, a killed consumer's
// entries are taken over, entries added while no worker runs are sequenced when one starts.
import { spawnSync } from 'node:child_process';
import { expect } from 'chai';
import { sleep } from '../helpers/sse-client.ts';
import { useTestBed } from '../helpers/test-bed.ts';
import {
  logEvents,
  repeated,
  startWorkers,
  stopWorkers,
  waitUntil,
  type WorkerProcess,
} from './ingest-workers.ts';
import { ROOT } from './pm2-cluster.ts';
import { redisNames } from '../../shared/keys.ts';

const METRICS_TOKEN = 'ingest-test-metrics-token';

describe('ingest exactly once, with real worker processes', function () {
  this.timeout(120_000);
  const bed = useTestBed();
  let workers: WorkerProcess[] = [];
  afterEach(async function () {
    if (this.currentTest?.state === 'failed')
      for (const worker of workers) console.log(worker.output().slice(-3000));
    await stopWorkers(workers);
    workers = [];
  });

  const logLength = () => bed.client.xLen(redisNames(bed.prefix).log);
  const stream = () => redisNames(bed.prefix).ingestStream;

  /** Waits for `count` events, then a while longer, so a late duplicate would be seen. */
  async function settle(count: number, timeoutMs = 20_000): Promise<void> {
    await waitUntil(async () => (await logLength()) >= count, timeoutMs, `${count} events in the log`);
    await sleep(1000);
  }

  it('sequences 10 byte-identical raw messages published 200 ms apart as 10 events (2 workers)', async function () {
    workers = await startWorkers(2, bed.redis.url, bed.prefix);
    const heartbeat = JSON.stringify({ type: 'status', service: 'heartbeat-svc', state: 'ok', ttl: 3 });
    for (let index = 0; index < 10; index += 1) {
      expect(await bed.client.publish(redisNames(bed.prefix).ingestChannel, heartbeat)).to.equal(2);
      await sleep(200);
    }
    await settle(10);
    const events = await logEvents(bed.client, bed.prefix);
    expect(events).to.have.length(10);
    expect(events.every(({ event }) => event.service === 'heartbeat-svc')).to.equal(true);
  });

  for (const count of [2, 4]) {
    it(`sequences 50 distinct raw messages exactly once while 1 of ${count} workers is paused for 5 s`, async function () {
      workers = await startWorkers(count, bed.redis.url, bed.prefix);
      const paused = workers[0]!;
      paused.child.kill('SIGSTOP');
      const started = Date.now();
      for (let index = 0; index < 50; index += 1) {
        await bed.client.publish(
          redisNames(bed.prefix).ingestChannel,
          JSON.stringify({ type: 'event', level: 'info', title: `message ${index}` }),
        );
        await sleep(80);
      }
      await sleep(Math.max(0, 5000 - (Date.now() - started)));
      paused.child.kill('SIGCONT');
      // The paused worker now reads all 50 and tries to sequence them: every position is already taken.
      await settle(50);
      await sleep(2000);
      const titles = (await logEvents(bed.client, bed.prefix)).map(({ event }) => String(event.title));
      expect(repeated(titles), 'sequenced twice').to.deep.equal([]);
      expect(titles).to.have.length(50);
      expect(new Set(titles)).to.deep.equal(new Set(Array.from({ length: 50 }, (_, i) => `message ${i}`)));
      // The paused worker is alive and claims positions again: the next message is sequenced once.
      await bed.client.publish(
        redisNames(bed.prefix).ingestChannel,
        JSON.stringify({ type: 'event', level: 'info', title: 'after' }),
      );
      await settle(51);
      expect(await logLength()).to.equal(51);
      expect(paused.child.exitCode).to.equal(null);
    });
  }

  it('takes over the pending durable entries of a SIGKILLed worker: each sequenced once, by another worker', async function () {
    workers = await startWorkers(2, bed.redis.url, bed.prefix, { INGEST_CLAIM_IDLE_MS: '1000' });
    // Both paused: their XREADGROUP BLOCKs stay registered in Redis, so the first one gets the entries
    // (added in one transaction) into its pending list without being able to sequence them.
    for (const worker of workers) worker.child.kill('SIGSTOP');
    const multi = bed.client.multi();
    for (let index = 0; index < 50; index += 1)
      multi.xAdd(stream(), '*', { event: JSON.stringify({ type: 'metric', name: 'durable', value: index }) });
    await multi.exec();
    await sleep(100);
    const pending = (await bed.client.sendCommand(['XPENDING', stream(), 'pulseboard'])) as [
      number,
      string,
      string,
      [string, string][] | null,
    ];
    const holders = pending[3] ?? [];
    expect(holders, 'one consumer holds the entries').to.have.length(1);
    expect(Number(holders[0]![1])).to.equal(50);
    const victim = workers.find((worker) => holders[0]![0].includes(`:${worker.pid}:`))!;
    expect(victim, 'the holding consumer is one of the workers').to.not.equal(undefined);
    victim.child.kill('SIGKILL');
    await victim.exited;
    for (const worker of workers) if (worker !== victim) worker.child.kill('SIGCONT');

    await settle(50);
    const values = (await logEvents(bed.client, bed.prefix)).map(({ event }) => String(event.value));
    expect(repeated(values), 'sequenced twice').to.deep.equal([]);
    expect(values).to.have.length(50);
    expect(await bed.client.xLen(stream()), 'backlog').to.equal(0);
    const summary = (await bed.client.sendCommand(['XPENDING', stream(), 'pulseboard'])) as [number];
    expect(Number(summary[0]), 'still pending').to.equal(0);
  });

  it('sequences 100 entries added while no worker ran, once each, when the workers start', async function () {
    for (let index = 0; index < 100; index += 1)
      await bed.client.xAdd(stream(), '*', {
        event: JSON.stringify({ type: 'event', level: 'info', title: `offline ${index}` }),
      });
    workers = await startWorkers(2, bed.redis.url, bed.prefix);
    await settle(100);
    const titles = (await logEvents(bed.client, bed.prefix)).map(({ event }) => String(event.title));
    expect(repeated(titles), 'sequenced twice').to.deep.equal([]);
    expect(titles).to.deep.equal(Array.from({ length: 100 }, (_, i) => `offline ${i}`));
    expect(await bed.client.xLen(stream())).to.equal(0);
  });

  it('`pulseboard publish --durable` adds an entry, prints its id, and a worker sequences it', async function () {
    const env = { ...process.env, REDIS_URL: bed.redis.url, PULSEBOARD_PREFIX: bed.prefix };
    const published = spawnSync(
      process.execPath,
      ['bin/pulseboard.js', 'publish', 'status', 'api', 'down', '--durable'],
      { cwd: ROOT, env, encoding: 'utf8', timeout: 30_000 },
    );
    expect(published.status, published.stderr).to.equal(0);
    const entryId = published.stdout.trim();
    expect(entryId).to.match(/^\d+-\d+$/);
    expect(await bed.client.xLen(stream())).to.equal(1);
    const future = spawnSync(
      process.execPath,
      ['bin/pulseboard.js', 'publish', 'metric', 'm', '1', '--ts', String(Date.now() * 1000), '--durable'],
      { cwd: ROOT, env, encoding: 'utf8', timeout: 30_000 },
    );
    expect(future.status).to.equal(2);
    expect(future.stderr).to.match(/ts: must be epoch milliseconds/);
    workers = await startWorkers(1, bed.redis.url, bed.prefix);
    await settle(1);
    const [only] = await logEvents(bed.client, bed.prefix);
    expect(only?.event).to.include({ type: 'status', service: 'api', state: 'down' });
    expect(await bed.client.xLen(stream())).to.equal(0);
  });

  /** The installation's totals from one worker's /metrics . */
  async function clusterMetric(line: string): Promise<number | undefined> {
    const response = await fetch(`${workers[0]!.url}/metrics`, {
      headers: { Authorization: `Bearer ${METRICS_TOKEN}` },
    });
    const text = await response.text();
    const found = text.split('\n').find((candidate) => candidate.startsWith(`${line} `));
    return found === undefined ? undefined : Number(found.slice(line.length + 1));
  }

  it('counts, acknowledges and skips invalid durable entries (bad JSON, wrong field, future ts)', async function () {
    workers = await startWorkers(2, bed.redis.url, bed.prefix, { METRICS_TOKEN });
    await bed.client.xAdd(stream(), '*', { event: '{not json' });
    await bed.client.xAdd(stream(), '*', {
      payload: JSON.stringify({ type: 'metric', name: 'm', value: 1 }),
    });
    await bed.client.xAdd(stream(), '*', {
      event: JSON.stringify({ type: 'metric', name: 'm', value: 1, ts: Date.now() * 1000 }),
    });
    await bed.client.xAdd(stream(), '*', { event: JSON.stringify({ type: 'metric', name: 'm', value: 2 }) });
    await settle(1);
    expect(await logLength()).to.equal(1);
    await waitUntil(async () => (await bed.client.xLen(stream())) === 0, 5000, 'an empty backlog');
    const summary = (await bed.client.sendCommand(['XPENDING', stream(), 'pulseboard'])) as [number];
    expect(Number(summary[0])).to.equal(0);
    // Counted once for the installation, whichever worker handled each entry.
    const rejected = (reason: string) =>
      clusterMetric(`pulseboard_events_rejected_total{reason="${reason}",source="durable"}`);
    await waitUntil(async () => (await rejected('invalid')) === 2, 5000, 'the rejections in /metrics');
    expect(await rejected('bad_json')).to.equal(1);
    expect(await clusterMetric('pulseboard_events_ingested_total{type="metric",source="durable"}')).to.equal(
      1,
    );
    expect(await clusterMetric('pulseboard_ingest_backlog')).to.equal(0);
  });
});
