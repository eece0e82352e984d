// Shared probes of the flood and fault suites (docs/reliability.md): a bystander stream opened from its own
// source address with plain http (fetch cannot pick one), a steady publisher that notes when each id was
// sent, and the delivery-latency percentiles between the two.
import { spawn } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import type { RedisClient } from '../../server/redis.ts';
import { createPublisher } from '../../shared/publisher.ts';
import { openRawStream as openReader, type RawStream } from '../helpers/raw-stream.ts';
import { until } from '../helpers/sse-client.ts';

export type { RawStream } from '../helpers/raw-stream.ts';

/**
 * A bystander stream (test/helpers/raw-stream.ts) on one socket from `localAddress` (127.0.0.2 is another
 * user than the 127.0.0.1 flood), recording the envelope ids of events, not the frames' cursors.
 */
export function openRawStream(
  url: string,
  headers: Record<string, string>,
  localAddress = '127.0.0.2',
  since?: string,
): RawStream {
  return openReader(url, {
    headers,
    localAddress,
    ids: 'envelope',
    ...(since ? { lastEventId: since } : {}),
  });
}

export interface SentEvent {
  id: string;
  sentAt: number;
}

/** Publishes `count` metric events, one every `intervalMs`, and notes when each was sent. */
export async function publishTimed(
  client: RedisClient,
  prefix: string,
  count: number,
  intervalMs: number,
  name = 'load.probe',
): Promise<SentEvent[]> {
  const publisher = createPublisher(client, { prefix });
  const sent: SentEvent[] = [];
  for (let value = 0; value < count; value += 1) {
    const sentAt = performance.now();
    for (const id of await publisher.publish({ type: 'metric', name, value })) sent.push({ id, sentAt });
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  return sent;
}

/**
 * Publishes steadily until stopped, through Redis outages: a publish that fails is counted and skipped
 * (nothing was acknowledged, so nothing is expected). Resolves with the ids acknowledged, in order.
 */
export function publishUntilStopped(
  client: RedisClient,
  prefix: string,
  intervalMs: number,
): { stop(): Promise<{ ids: string[]; failures: number }> } {
  const publisher = createPublisher(client, { prefix });
  const ids: string[] = [];
  let failures = 0;
  let running = true;
  const loop = (async () => {
    for (let value = 0; running; value += 1) {
      try {
        ids.push(...(await publisher.publish({ type: 'metric', name: 'fault.probe', value })));
      } catch {
        failures += 1;
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { ids, failures };
    },
  };
}

/** Delivery latencies (ms) of `sent` at `stream`; throws naming the first id that never arrived. */
export function latencies(sent: SentEvent[], stream: RawStream): number[] {
  return sent.map(({ id, sentAt }) => {
    const arrived = stream.arrivedAt.get(id);
    if (arrived === undefined) throw new Error(`event ${id} never reached the bystander`);
    return arrived - sentAt;
  });
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

/** Opens a TCP socket from `localAddress` and resolves once it is connected. */
export function connectRaw(port: number, localAddress = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

export function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export interface FloodReport {
  opened: number;
  refused429: number;
  /** Closed by the server without a byte of answer (HAProxy's `tcp-request connection reject`). */
  rejected: number;
  held: number;
  failed: number;
  closed: number;
  /** Slowloris mode: sockets answered 408 and closed, and the longest any closed socket was held. */
  timedOut408: number;
  maxHeldMs: number;
  /** The flooder's own longest event-loop delay (ms): how late, at most, it may have seen a close. */
  loopDelayMaxMs: number;
  /** How many sockets are open or closed with each first answer line. */
  answers: Record<string, number>;
}

// The flooder runs in its own process, as a real one would: its connect work must not share the event
// loop of the worker under test (which runs in the mocha process). It connects 50 sockets every 20 ms
// (about 2,500 per second), a sustained flood; docs/reliability.md notes what one burst of 250 does.
const FLOODER_SOURCE = `
const net = require('node:net');
const [port, count] = process.argv.slice(1, 3).map(Number);
const slowloris = process.argv[3] === 'slowloris';
const sockets = [];
const tally = { opened: 0, refused429: 0, rejected: 0, held: 0, failed: 0, closed: 0, timedOut408: 0, maxHeldMs: 0, loopDelayMaxMs: 0 };
const state = [];
// The flooder runs at the lowest priority: on a busy machine it notices a close late. How late, at most,
// is its own event-loop delay, reported with the tally so the held times can be judged fairly.
const loopDelay = require('node:perf_hooks').monitorEventLoopDelay({ resolution: 20 });
loopDelay.enable();
function open(i) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.1' });
    const st = { data: '', closed: false, ok: false, reset: false, openedAt: Date.now(), heldMs: 0 };
    state.push(st);
    sockets.push(s);
    s.setEncoding('utf8');
    s.on('data', (c) => (st.data += c));
    s.on('close', () => {
      st.closed = true;
      st.heldMs = Date.now() - st.openedAt;
    });
    s.on('error', (e) => {
      // A reset before 'connect' was reported: the kernel completed the handshake and the server closed
      // at accept (HAProxy's reject). Anything else is a connection that never happened.
      if (!st.ok && e.code === 'ECONNRESET') st.reset = true;
      else if (!st.ok) tally.failed += 1;
      resolve();
    });
    s.on('connect', () => {
      st.ok = true;
      tally.opened += 1;
      if (slowloris) {
        // A request line, then one header byte every 100 ms: the headers never end.
        s.write('GET /api/session HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nX-Slow: ');
        const timer = setInterval(() => s.writable && s.write('a'), 100);
        s.on('close', () => clearInterval(timer));
      }
      resolve();
    });
  });
}
(async () => {
  for (let i = 0; i < count; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, count - i) }, (_, k) => open(i + k)));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  process.stdout.write('opened\\n');
})();
process.stdin.setEncoding('utf8');
process.stdin.on('data', (line) => {
  if (line.startsWith('report')) {
    tally.refused429 = state.filter((s) => s.data.startsWith('HTTP/1.1 429 ') && s.data.includes('"rate_limited"') && s.closed).length;
    tally.held = state.filter((s) => s.ok && !s.closed && s.data === '').length;
    tally.rejected = state.filter((s) => (s.ok || s.reset) && s.closed && s.data === '').length;
    tally.closed = state.filter((s) => s.closed).length;
    tally.timedOut408 = state.filter((s) => s.data.startsWith('HTTP/1.1 408 ') && s.closed).length;
    tally.answers = {};
    for (const s of state) {
      const key = (s.closed ? 'closed ' : 'open ') + (s.data.split('\\r\\n')[0] || '(nothing)');
      tally.answers[key] = (tally.answers[key] || 0) + 1;
    }
    tally.maxHeldMs = Math.max(0, ...state.filter((s) => s.closed).map((s) => s.heldMs));
    tally.loopDelayMaxMs = Math.round(loopDelay.max / 1e6);
    process.stdout.write(JSON.stringify(tally) + '\\n');
  } else {
    for (const s of sockets) s.destroy();
    process.exit(0);
  }
});
`;

/**
 * The flooder's CPU priority: 19 (the lowest) unless FLOOD_FLOODER_NICE says otherwise. On a machine
 * crowded by other work, a flooder at 19 gets almost no CPU and cannot flood at all (10,000 sockets not
 * opened in 120 s at load average ~40); there, raise the system under test instead (FLOOD_SUT_NICE in
 * floods-connections.test.ts) and leave the flooder at 0.
 */
const FLOODER_NICE = Number(process.env.FLOOD_FLOODER_NICE ?? 19);

export interface Flooder {
  /** Resolves once every socket has connected (or failed to). */
  opened: Promise<void>;
  report(): Promise<FloodReport>;
  /** Closes every socket and ends the process. */
  stop(): Promise<void>;
}

/**
 * Opens `count` TCP sockets from 127.0.0.1 to `port` in a child process and holds them; in slowloris mode
 * each dribbles an unfinished request's headers instead.
 */
export function startFlooder(port: number, count: number, mode: 'hold' | 'slowloris' = 'hold'): Flooder {
  const child = spawn(process.execPath, ['-e', FLOODER_SOURCE, String(port), String(count), mode], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  // An attacker's CPU is not ours: on one test machine the flooder's own work (and the kernel's for its
  // connects) would otherwise compete with the server for the same cores and be measured as the server's
  // cost. The lowest priority leaves it idle cycles; the server's own handling of the flood still counts.
  if (child.pid !== undefined) {
    try {
      os.setPriority(child.pid, FLOODER_NICE);
    } catch {
      // not permitted here: the flooder runs at normal priority
    }
  }
  child.stdout.setEncoding('utf8');
  const lines: string[] = [];
  let buffered = '';
  child.stdout.on('data', (chunk: string) => {
    buffered += chunk;
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    lines.push(...parts);
  });
  const nextLine = async (): Promise<string> => {
    await until(() => lines.length > 0 || child.exitCode !== null, 120_000, 'the flooder');
    const line = lines.shift();
    if (line === undefined) throw new Error(`flooder exited with ${child.exitCode}`);
    return line;
  };
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    opened: nextLine().then(() => undefined),
    report: async () => {
      child.stdin.write('report\n');
      return JSON.parse(await nextLine()) as FloodReport;
    },
    stop: async () => {
      if (child.exitCode === null) child.stdin.write('stop\n');
      await exited;
    },
  };
}
