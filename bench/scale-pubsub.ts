// Redis sharded pub/sub throughput per shard (docs/scaling.md, "Redis per-shard pub/sub throughput"), on a
// real 3+3 Redis Cluster started on loopback: SPUBLISH of envelope-sized messages to `channels` board
// channels of one shard, each channel subscribed by `subscribers` connections (in pulseboard: one per
// worker that has a stream of that board). Raw sockets on both sides, so the client is cheap and Redis is
// what is measured; Redis' own CPU time is read from /proc so the figures can be normalised per core on a
// loaded machine. Run: `npm run bench:pubsub` (SCALE_PUBSUB_SECONDS, SCALE_PUBSUB_SUBSCRIBERS=1,4,16,64).
import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import { createClient } from 'redis';
import { createPublisher } from '../shared/publisher.ts';
import { startTestRedis } from '../test/helpers/redis-server.ts';
import {
  keySlot,
  startTestCluster,
  type ClusterNode,
  type TestCluster,
} from '../test/helpers/redis-cluster.ts';

const SECONDS = Number(process.env.SCALE_PUBSUB_SECONDS ?? 4);
const SUBSCRIBER_COUNTS = (process.env.SCALE_PUBSUB_SUBSCRIBERS ?? '1,4,16,64').split(',').map(Number);
const CHANNELS = Number(process.env.SCALE_PUBSUB_CHANNELS ?? 12);
const PAYLOAD_BYTES = Number(process.env.SCALE_PUBSUB_PAYLOAD ?? 300);
/** Commands in flight per publisher connection. */
const WINDOW = 64;
const PUBLISHERS = 2;
const OUTPUT = process.env.SCALE_PUBSUB_OUTPUT ?? 'bench/results/scale-pubsub.json';

function command(...args: string[]): Buffer {
  const parts = [`*${args.length}\r\n`];
  for (const arg of args) parts.push(`$${Buffer.byteLength(arg)}\r\n${arg}\r\n`);
  return Buffer.from(parts.join(''));
}

/** Board channel names of one shard, all the same length (so a delivered frame has a known size). */
function channelsOn(ranges: Array<[number, number]>, count: number): string[] {
  const names: string[] = [];
  for (let index = 0; names.length < count; index += 1) {
    const name = `{bench:b${String(index).padStart(5, '0')}}:events`;
    const slot = keySlot(name);
    if (ranges.some(([first, last]) => slot >= first && slot <= last)) names.push(name);
  }
  return names;
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => resolve(socket));
    socket.once('error', reject);
    socket.setNoDelay(true);
  });
}

async function cpuSeconds(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function redisPid(port: number): Promise<number> {
  const socket = await connect(port);
  socket.write(command('INFO', 'server'));
  const text = await new Promise<string>((resolve) => {
    let data = '';
    socket.on('data', (chunk) => {
      data += chunk.toString();
      if (data.includes('process_id:') && data.endsWith('\r\n\r\n')) resolve(data);
    });
  });
  socket.destroy();
  return Number(/process_id:(\d+)/.exec(text)![1]);
}

interface Result {
  shards: number;
  channels: number;
  subscribersPerChannel: number;
  payloadBytes: number;
  seconds: number;
  published: number;
  delivered: number;
  expectedDeliveries: number;
  publishedPerSecond: number;
  deliveredPerSecond: number;
  /** CPU of each shard's primary during the run, in cores (1 = one core busy all the time). */
  redisCores: number[];
  /** Deliveries per second per fully busy Redis core: the per-shard ceiling on an idle core. */
  deliveriesPerCoreSecond: number;
  publishesPerCoreSecond: number;
}

async function measure(
  shards: Array<{ node: ClusterNode; ranges: Array<[number, number]> }>,
  subscribersPerChannel: number,
): Promise<Result> {
  const sockets: net.Socket[] = [];
  let deliveredBytes = 0;
  let counting = false;
  const payload = 'x'.repeat(PAYLOAD_BYTES);
  const plan = shards.map((shard) => ({ ...shard, channels: channelsOn(shard.ranges, CHANNELS) }));
  // One frame size for all: same channel length, same payload.
  const sample = plan[0]!.channels[0]!;
  const frameBytes = Buffer.byteLength(
    `>3\r\n$8\r\nsmessage\r\n$${sample.length}\r\n${sample}\r\n$${PAYLOAD_BYTES}\r\n${payload}\r\n`,
  );
  try {
    for (const shard of plan) {
      for (let index = 0; index < subscribersPerChannel; index += 1) {
        const socket = await connect(shard.node.port);
        sockets.push(socket);
        socket.on('data', (chunk: Buffer) => {
          if (counting) deliveredBytes += chunk.length;
        });
        for (const channel of shard.channels) socket.write(command('SSUBSCRIBE', channel));
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    const pids = await Promise.all(plan.map((shard) => redisPid(shard.node.port)));
    const cpuBefore = await Promise.all(pids.map(cpuSeconds));
    counting = true;
    let published = 0;
    let stop = false;
    const publishers: Array<Promise<void>> = [];
    for (const shard of plan) {
      const commands = shard.channels.map((channel) => command('SPUBLISH', channel, payload));
      for (let index = 0; index < PUBLISHERS; index += 1) {
        const socket = await connect(shard.node.port);
        sockets.push(socket);
        publishers.push(
          new Promise<void>((resolve) => {
            let inFlight = 0;
            let next = index;
            const fill = () => {
              if (stop) {
                if (inFlight === 0) resolve();
                return;
              }
              const batch: Buffer[] = [];
              while (inFlight < WINDOW) {
                batch.push(commands[next++ % commands.length]!);
                inFlight += 1;
              }
              if (batch.length > 0) socket.write(Buffer.concat(batch));
            };
            socket.on('data', (chunk: Buffer) => {
              let replies = 0;
              for (const byte of chunk) if (byte === 10) replies += 1;
              inFlight -= replies;
              published += replies;
              fill();
            });
            fill();
          }),
        );
      }
    }
    const started = performance.now();
    await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
    stop = true;
    await Promise.all(publishers);
    const cpuAfter = await Promise.all(pids.map(cpuSeconds));
    const elapsed = (performance.now() - started) / 1000;
    const expectedDeliveries = published * subscribersPerChannel;
    // Let the last deliveries drain.
    const drainUntil = Date.now() + 5000;
    while (deliveredBytes / frameBytes < expectedDeliveries && Date.now() < drainUntil) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const delivered = Math.round(deliveredBytes / frameBytes);
    const redisCores = cpuAfter.map((after, index) => (after - cpuBefore[index]!) / elapsed);
    const busy = redisCores.reduce((sum, cores) => sum + cores, 0);
    return {
      shards: plan.length,
      channels: CHANNELS,
      subscribersPerChannel,
      payloadBytes: PAYLOAD_BYTES,
      seconds: Number(elapsed.toFixed(2)),
      published,
      delivered,
      expectedDeliveries,
      publishedPerSecond: Math.round(published / elapsed),
      deliveredPerSecond: Math.round(delivered / elapsed),
      redisCores: redisCores.map((cores) => Number(cores.toFixed(2))),
      deliveriesPerCoreSecond: Math.round(delivered / elapsed / busy),
      publishesPerCoreSecond: Math.round(published / elapsed / busy),
    };
  } finally {
    for (const socket of sockets) socket.destroy();
  }
}

/**
 * Redis CPU per publish and per delivery (µs), by least squares over the single-shard runs:
 * cpuSeconds = a·published + b·delivered. The capacity plan (docs/scaling.md) is built on these.
 */
function fitCost(runs: Result[]): { microsPerPublish: number; microsPerDelivery: number } | undefined {
  if (runs.length < 2) return undefined;
  let pp = 0;
  let pd = 0;
  let dd = 0;
  let pc = 0;
  let dc = 0;
  for (const run of runs) {
    const cpu = run.redisCores[0]! * run.seconds;
    pp += run.published * run.published;
    pd += run.published * run.delivered;
    dd += run.delivered * run.delivered;
    pc += run.published * cpu;
    dc += run.delivered * cpu;
  }
  const det = pp * dd - pd * pd;
  if (det === 0) return undefined;
  const a = (pc * dd - dc * pd) / det;
  const b = (pp * dc - pd * pc) / det;
  return { microsPerPublish: Number((a * 1e6).toFixed(3)), microsPerDelivery: Number((b * 1e6).toFixed(3)) };
}

/**
 * Redis CPU per sequenced event: the TypeScript publisher (shared/publisher.ts: the sequencing script, one
 * call per event, node-redis pipelining up to `WINDOW` in flight) against a standalone redis-server, no
 * subscriber. What a board's shard spends on each event before fan-out.
 */
async function measureSequencing(): Promise<{
  events: number;
  seconds: number;
  redisCores: number;
  microsPerEvent: number;
}> {
  const server = await startTestRedis({ own: true });
  const redis = createClient({ url: server.url });
  try {
    await redis.connect();
    const publisher = createPublisher(redis, { prefix: 'bench-seq' });
    const pid = await redisPid(server.port);
    let events = 0;
    let stop = false;
    const lane = async () => {
      while (!stop) {
        await publisher.publish({ type: 'metric', name: `bench.${events % 50}`, value: events, unit: 'n' });
        events += 1;
      }
    };
    const cpuBefore = await cpuSeconds(pid);
    const started = performance.now();
    const lanes = Array.from({ length: WINDOW }, lane);
    await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
    stop = true;
    await Promise.all(lanes);
    const seconds = (performance.now() - started) / 1000;
    const cpu = (await cpuSeconds(pid)) - cpuBefore;
    return {
      events,
      seconds: Number(seconds.toFixed(2)),
      redisCores: Number((cpu / seconds).toFixed(2)),
      microsPerEvent: Number(((cpu / events) * 1e6).toFixed(1)),
    };
  } finally {
    await redis.quit().catch(() => redis.destroy());
    await server.close();
  }
}

async function main(): Promise<void> {
  let cluster: TestCluster | undefined;
  const results: Result[] = [];
  try {
    cluster = await startTestCluster();
    const primaries = await cluster.primaries();
    for (const subscribers of SUBSCRIBER_COUNTS) {
      const result = await measure(primaries.slice(0, 1), subscribers);
      results.push(result);
      console.log(JSON.stringify(result));
    }
    // All three shards at once (they share this machine's cores, so this shows the box, not a shard).
    const all = await measure(primaries, SUBSCRIBER_COUNTS[1] ?? 4);
    results.push(all);
    console.log(JSON.stringify(all));
  } finally {
    await cluster?.close();
  }
  const sequencing = await measureSequencing();
  console.log(`sequencing: ${JSON.stringify(sequencing)}`);
  const report = {
    date: new Date().toISOString(),
    sequencing,
    cost: fitCost(results.filter((result) => result.shards === 1)),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, loadavg: os.loadavg() },
    redis: 'redis-server 7.0 cluster mode, 3 primaries + 3 replicas, SPUBLISH, raw-socket RESP2 subscribers',
    results,
  };
  await writeFile(OUTPUT, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`cost: ${JSON.stringify(report.cost)}`);
  console.log(
    `wrote ${OUTPUT}; load average ${os
      .loadavg()
      .map((load) => load.toFixed(1))
      .join(' ')}`,
  );
}

await main();
