// The bench publisher, a process of its own (forked by run-scenario.ts) so that publishing never shares
// an event loop with the server or the clients. It sends metric events at a fixed rate, each stamped with
// the wall-clock ms it was sent (`ts`) and numbered (`value` = 1, 2, 3…: clients find loss and
// duplicates by that number). `--ingest publisher` (default) sequences through the TypeScript publisher
// (shared/publisher.ts); `raw` sends `PUBLISH <prefix>:ingest <json>` for the workers to sequence.
import { createClient } from 'redis';
import { redisNames } from '../shared/keys.ts';
import { createPublisher } from '../shared/publisher.ts';

export interface PublisherOptions {
  redisUrl: string;
  prefix: string;
  ingest: 'publisher' | 'raw';
  rate: number;
  seconds: number;
  /** Events numbered 0 sent first at the same rate, so cold code and lazy setup are not measured. */
  warmupSeconds: number;
  /** Boards the events go to in turn (event n to boards[n % length]); empty: no board (`main`). */
  boards: readonly string[];
}

export interface PublisherReport {
  type: 'done';
  /** Measured events (numbered 1..published); warm-up events are not counted. */
  published: number;
  failed: number;
  firstError?: string;
  /** How far behind its schedule the publisher fell at worst (ms): above a few ms, the rate is not met. */
  maxBehindMs: number;
  /** When the first measured event was sent (wall-clock ms). */
  startedAt: number;
  endedAt: number;
}

const TICK_MS = 2;

async function main(options: PublisherOptions): Promise<void> {
  const redis = createClient({ url: options.redisUrl });
  await redis.connect();
  const publisher = createPublisher(redis, { prefix: options.prefix });
  const channel = redisNames(options.prefix).ingestChannel;
  const warmup = Math.round(options.rate * options.warmupSeconds);
  const total = warmup + Math.round(options.rate * options.seconds);
  let published = 0;
  let failed = 0;
  let firstError: string | undefined;
  let maxBehindMs = 0;
  const inFlight = new Set<Promise<unknown>>();
  let startedAt = Date.now();
  const started = performance.now();
  let lastProgress = 0;

  const send = (seq: number) => {
    const value = Math.max(0, seq - warmup);
    const board = options.boards.length > 0 ? options.boards[seq % options.boards.length] : undefined;
    const event = {
      type: 'metric',
      ...(board === undefined ? {} : { board }),
      name: 'bench.value',
      value,
      unit: 'n',
      ts: Date.now(),
    };
    const sending =
      options.ingest === 'raw' ? redis.publish(channel, JSON.stringify(event)) : publisher.publish(event);
    const tracked = sending.then(
      () => undefined,
      (error: unknown) => {
        failed += 1;
        firstError ??= String(error);
      },
    );
    inFlight.add(tracked);
    void tracked.finally(() => inFlight.delete(tracked));
  };

  // Sent in order on one connection (node-redis pipelines), each at its due time.
  while (published < total) {
    const elapsed = performance.now() - started;
    const due = Math.min(total, Math.floor((elapsed / 1000) * options.rate) + 1);
    if (due - published > 1)
      maxBehindMs = Math.max(maxBehindMs, ((due - published - 1) * 1000) / options.rate);
    while (published < due) {
      published += 1;
      if (published === warmup + 1) {
        startedAt = Date.now();
        process.send?.({ type: 'measuring' });
      }
      send(published);
    }
    if (performance.now() - lastProgress > 500) {
      lastProgress = performance.now();
      process.send?.({ type: 'progress', published: Math.max(0, published - warmup) });
    }
    await new Promise((resolve) => setTimeout(resolve, TICK_MS));
  }
  await Promise.all(inFlight);
  const report: PublisherReport = {
    type: 'done',
    published: published - warmup,
    failed,
    ...(firstError === undefined ? {} : { firstError }),
    maxBehindMs: Math.round(maxBehindMs),
    startedAt,
    endedAt: Date.now(),
  };
  await redis.quit();
  process.send?.(report);
  process.disconnect?.();
}

process.once('message', (options: PublisherOptions) => {
  main(options).catch((error: unknown) => {
    process.send?.({ type: 'error', error: String(error) });
    process.exitCode = 1;
    process.disconnect?.();
  });
});
process.on('disconnect', () => process.exit());
