// Where connection setup's time goes (docs/performance.md, "Setup time is CPU"): starts one system as the
// bench does, opens and closes 200 streams, then opens <streams>, <concurrency> at a time, <rounds> times,
// and prints per round the machine's busy time and every process's CPU per open, and the p50/p90/max of
// each open's connect, first byte and headers. PROBE_TIMING_DIR: each open's port and times, to join with
// a worker's; PROBE_CPU_PROF: the workers' CPU profiles (with the round's monotonic window to cut them).
//   npx tsx bench/probe-setup.ts pulseboard 2000 256 3
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';

/** CPU ticks (utime+stime) of every process, by pid, with its command line. */
function cpuSnapshot(): Map<number, { ticks: number; name: string }> {
  const result = new Map<number, { ticks: number; name: string }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(fields[11]) + Number(fields[12]);
      const name = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ').slice(0, 90);
      result.set(Number(entry), { ticks, name });
    } catch {
      // gone
    }
  }
  return result;
}
/** Open sockets of a process (its streams, plus a few of its own: Redis, IPC, the listener). */
function socketCount(pid: number): number {
  let count = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) count += 1;
    } catch {
      // closed meanwhile
    }
  }
  return count;
}
function machineTicks(): { busy: number; total: number; softirq: number; system: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  const total = line.reduce((a, b) => a + b, 0);
  const idle = line[3]! + line[4]!;
  return { busy: total - idle, total, softirq: line[6]!, system: line[2]! };
}
function cpuReport(
  before: ReturnType<typeof cpuSnapshot>,
  after: ReturnType<typeof cpuSnapshot>,
  m0: ReturnType<typeof machineTicks>,
  m1: ReturnType<typeof machineTicks>,
  opens: number,
): string {
  const rows: string[] = [];
  for (const [pid, now] of after) {
    const delta = now.ticks - (before.get(pid)?.ticks ?? 0);
    if (delta >= 3)
      rows.push(
        `    ${String(delta * 10).padStart(6)} ms  ${((delta * 10000) / opens).toFixed(0).padStart(5)} µs/open  ${pid} ${now.name}`,
      );
  }
  rows.sort().reverse();
  return `  machine busy ${(m1.busy - m0.busy) * 10} ms of ${(m1.total - m0.total) * 10} (softirq ${(m1.softirq - m0.softirq) * 10}, system ${(m1.system - m0.system) * 10}); total ${(((m1.busy - m0.busy) * 10000) / opens).toFixed(0)} µs/open\n${rows.slice(0, 8).join('\n')}\n`;
}
import { installCleanup } from './processes.ts';
import { startBenchRedis } from './redis.ts';
import { startSystem, type RunningSystem, type SystemName } from './systems.ts';

const system = (process.argv[2] ?? 'pulseboard') as SystemName;
const streams = Number(process.argv[3] ?? 2000);
const concurrency = Number(process.argv[4] ?? 256);
const rounds = Number(process.argv[5] ?? 1);

interface OpenTiming {
  connect: number;
  firstByte: number;
  headers: number;
  /** Time from the headers to the first body bytes (-1: came with the headers). */
  bodyAfter: number;
  port: number;
  startedAt: number;
}

function openOne(
  running: RunningSystem,
  cookie: string | undefined,
  sockets: net.Socket[],
): Promise<OpenTiming> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const timing: OpenTiming = {
      connect: 0,
      firstByte: 0,
      headers: 0,
      bodyAfter: -2,
      port: 0,
      startedAt: performance.timeOrigin + started,
    };
    const socket = net.connect({ host: running.host, port: running.port });
    sockets.push(socket);
    socket.setNoDelay(true);
    let text = '';
    let headersAt = 0;
    socket.on('connect', () => {
      timing.connect = performance.now() - started;
      timing.port = socket.localPort ?? 0;
      const lines = [
        'GET /events HTTP/1.1',
        `Host: ${running.host}:${running.port}`,
        'Accept: text/event-stream',
      ];
      if (cookie) lines.push(`Cookie: ${cookie}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      const now = performance.now();
      if (timing.firstByte === 0) timing.firstByte = now - started;
      if (headersAt !== 0) {
        if (timing.bodyAfter === -2) {
          timing.bodyAfter = now - headersAt;
          resolve(timing);
        }
        return;
      }
      text += chunk.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end === -1) return;
      headersAt = now;
      timing.headers = now - started;
      if (!text.startsWith('HTTP/1.1 200')) reject(new Error(text.split('\r\n')[0]));
      if (text.length > end + 4) {
        timing.bodyAfter = -1;
        resolve(timing);
      }
    });
    socket.on('error', reject);
  });
}

async function openMany(running: RunningSystem, count: number, sockets: net.Socket[]) {
  const timings: OpenTiming[] = [];
  let next = 0;
  const started = performance.now();
  const lane = async () => {
    while (next < count) {
      const index = next;
      next += 1;
      const cookie = running.cookies.length > 0 ? running.cookies[index % running.cookies.length] : undefined;
      timings.push(await openOne(running, cookie, sockets));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return { totalMs: performance.now() - started, timings };
}

const quantile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
};
const summary = (values: number[]) =>
  `p50 ${quantile(values, 0.5).toFixed(1)} p90 ${quantile(values, 0.9).toFixed(1)} max ${quantile(values, 1).toFixed(1)}`;

installCleanup();
const redis = await startBenchRedis();
const running = await startSystem(system, {
  redisUrl: redis.url,
  prefix: `probe${Date.now().toString(36)}`,
  workers: 2,
  streams,
  boards: [],
  ceilingSession: 'own',
  ...(process.env.PROBE_CPU_PROF ? { cpuProfileDir: process.env.PROBE_CPU_PROF } : {}),
});
process.stderr.write(`${system} up on ${running.port}, pids ${(await running.workerPids()).join(',')}\n`);
try {
  const warm: net.Socket[] = [];
  await openMany(running, 200, warm);
  for (const socket of warm) socket.destroy();
  await new Promise((resolve) => setTimeout(resolve, 2000));
  if (process.env.PROBE_PAUSE) {
    process.stderr.write(`paused ${process.env.PROBE_PAUSE} ms (attach now)\n`);
    await new Promise((resolve) => setTimeout(resolve, Number(process.env.PROBE_PAUSE)));
  }
  for (let round = 0; round < rounds; round += 1) {
    const sockets: net.Socket[] = [];
    const cpu0 = cpuSnapshot();
    const m0 = machineTicks();
    const monoStart = process.hrtime.bigint() / 1000n;
    const { totalMs, timings } = await openMany(running, streams, sockets);
    const m1 = machineTicks();
    process.stdout.write(`  monotonic µs window ${monoStart} ${process.hrtime.bigint() / 1000n}\n`);
    const cpu1 = cpuSnapshot();
    process.stdout.write(cpuReport(cpu0, cpu1, m0, m1, streams));
    process.stdout.write(
      `  sockets per worker: ${(await running.workerPids()).map(socketCount).join(' / ')}\n`,
    );
    const withHeaders = timings.filter((t) => t.bodyAfter === -1).length;
    process.stdout.write(
      `${system} round ${round + 1}: ${streams} open in ${totalMs.toFixed(0)} ms\n` +
        `  connect   ${summary(timings.map((t) => t.connect))}\n` +
        `  firstByte ${summary(timings.map((t) => t.firstByte))}\n` +
        `  headers   ${summary(timings.map((t) => t.headers))}\n` +
        `  body with headers: ${withHeaders}/${timings.length}; after: ${summary(timings.filter((t) => t.bodyAfter >= 0).map((t) => t.bodyAfter))}\n`,
    );
    if (process.env.PROBE_TIMING_DIR) {
      const { writeFileSync } = await import('node:fs');
      writeFileSync(
        `${process.env.PROBE_TIMING_DIR}/client-${system}-${round}.txt`,
        timings
          .map(
            (t) =>
              `${t.port} ${t.startedAt.toFixed(2)} ${t.connect.toFixed(2)} ${t.firstByte.toFixed(2)} ${t.headers.toFixed(2)} ${t.bodyAfter.toFixed(2)}`,
          )
          .join('\n'),
      );
    }
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
} finally {
  await running.stop();
  await redis.close();
}
process.exit(0);
