// One worker's raw ingest against a real Redis: how it regains a position after its subscription was
// lost (docs/events.md, "Raw PUBLISH: exactly once"). The multi-worker and fault cases with real worker
// processes are in test/ops/ingest.test.ts and raw-ingest-cluster.test.ts.
import { expect } from 'chai';
import { boardKeys, redisNames } from '../../../shared/keys.ts';
import { createSequencer } from '../../../shared/publisher.ts';
import { BoardStore } from '../../../server/auth/boards.ts';
import type { IngestReport } from '../../../server/bus/ingest-report.ts';
import { RawIngest } from '../../../server/bus/raw-ingest.ts';
import { createLogger } from '../../../server/log.ts';
import { useTestBed } from '../../helpers/test-bed.ts';
import { sleep } from '../../helpers/sse-client.ts';

const quietReport: IngestReport = {
  ingested: () => undefined,
  rejected: () => undefined,
  lag: () => undefined,
  retry: () => undefined,
  claims: () => undefined,
  resync: () => undefined,
};

describe('raw ingest of one worker', function () {
  this.timeout(20_000);
  const bed = useTestBed();

  // node-redis' Cluster client re-opens the classic pub/sub connection by itself when its node leaves the
  // slot map (a killed primary); the old connection said 'reconnecting', the new one's 'ready' may never
  // reach the worker. This is what made the Cluster failover test lose every message now and then: both
  // workers stopped counting for good, so nobody claimed a position.
  it("claims positions again after 'reconnecting' even when no 'ready' follows", async function () {
    const board = 'raw';
    await new BoardStore(bed.client, redisNames(bed.prefix)).add(board, board);
    const redis = await bed.connect();
    const subscriber = await bed.connect();
    const raw = new RawIngest({
      redis,
      subscriber,
      sequencer: createSequencer(redis, { prefix: bed.prefix }),
      report: quietReport,
      log: createLogger('silent'),
      markerTimeoutMs: 300,
    });
    await raw.start();
    try {
      const first = raw.position?.marker;
      expect(first, 'a position after start').to.be.a('string');

      subscriber.emit('reconnecting');
      expect(raw.position, 'no position while the connection is away').to.equal(undefined);
      const deadline = Date.now() + 5000;
      while (raw.position === undefined && Date.now() < deadline) await sleep(50);
      expect(raw.position?.marker, 'a fresh marker').to.be.a('string').and.not.equal(first);

      const log = boardKeys(bed.prefix, board).log;
      await bed.client.publish(
        redisNames(bed.prefix).ingestChannel,
        JSON.stringify({ type: 'event', board, level: 'info', title: 'after the lost connection' }),
      );
      while ((await bed.client.xLen(log)) < 1 && Date.now() < deadline + 3000) await sleep(50);
      const entries = (await bed.client.xRange(log, '-', '+')) ?? [];
      expect(
        entries.map((entry) => (JSON.parse(entry.message.e ?? '{}') as { title?: string }).title),
      ).to.deep.equal(['after the lost connection']);
    } finally {
      await raw.stop();
    }
  });
});
