// What the scale-out suites share (docs/scaling.md, "What the tests show"): the environment that points
// pulseboard at a Redis topology, provisioning an installation on it through the CLI's own connection
// (server/cli/installation.ts), boards chosen so their hash slots land on given shards, steady HTTP
// publishers per board that record what was acknowledged, SSE clients per board that record every frame
// with its arrival time, and the check that every acknowledged event reached every client once, in order.
import { EventSource, type FetchLike } from 'eventsource';
import { compareStreamIds, envelopeSchema } from '../../shared/events.ts';
import { boardKeys } from '../../shared/keys.ts';
import { EVENT_KINDS } from '../../shared/topics.ts';
import { BoardStore } from '../../server/auth/boards.ts';
import { TokenStore } from '../../server/auth/tokens.ts';
import { UserStore } from '../../server/auth/users.ts';
import { cliConfig, withInstallation } from '../../server/cli/installation.ts';
import { TEST_PASSWORD, TEST_SCRYPT } from '../helpers/auth.ts';
import { keySlot, type TestCluster } from '../helpers/redis-cluster.ts';
import type { TestSentinels } from '../helpers/redis-sentinel.ts';
import { sleep, until } from '../helpers/sse-client.ts';

/** The variables that point pulseboard (workers and CLI) at a topology; REDIS_URL emptied (= unset). */
export function clusterEnv(cluster: TestCluster): Record<string, string> {
  return { REDIS_URL: '', REDIS_CLUSTER_NODES: cluster.seeds };
}

export function sentinelEnv(sentinels: TestSentinels): Record<string, string> {
  return { REDIS_URL: '', REDIS_SENTINELS: sentinels.addresses, REDIS_SENTINEL_NAME: sentinels.name };
}

/** Worker settings of these suites: quick SSE retries, many streams per session, behind a balancer. */
export const SCALE_WORKER_ENV = {
  SSE_RETRY_MS: '250',
  MAX_STREAMS_PER_SESSION: '200',
  TRUST_PROXY: 'true',
};

export const SCALE_USER = 'scale';

/**
 * Whether this build reads the topology variables (server/config.ts); without them `REDIS_URL=''` would
 * fall back to the default 127.0.0.1:6379, a Redis these suites must never write to.
 */
export function topologySupported(env: Record<string, string>): boolean {
  const config = cliConfig({ ...env, PULSEBOARD_PREFIX: 'probe' }) as Record<string, unknown>;
  return Object.keys(env).every((name) => env[name] === '' || config[name] !== undefined);
}

/** Creates the boards, an admin user (TEST_PASSWORD) and a publisher token; resolves with the token. */
export async function provision(
  env: Record<string, string>,
  prefix: string,
  boards: string[],
): Promise<string> {
  if (!topologySupported(env)) throw new Error(`this build does not read ${Object.keys(env).join(', ')}`);
  const config = cliConfig({ ...env, PULSEBOARD_PREFIX: prefix });
  return withInstallation(async (redis, names) => {
    const store = new BoardStore(redis, names);
    for (const board of boards) await store.add(board);
    await new UserStore(redis, names).add(SCALE_USER, TEST_PASSWORD, 'admin', {
      scrypt: TEST_SCRYPT,
      boards: [],
    });
    return (await new TokenStore(redis, names).create('scale-publisher', 'publisher', [])).token;
  }, config);
}

/** The board's log from Redis (XRANGE), as id -> metric value. */
export async function readLogs(
  env: Record<string, string>,
  prefix: string,
  boards: string[],
): Promise<Map<string, Map<string, number>>> {
  const config = cliConfig({ ...env, PULSEBOARD_PREFIX: prefix });
  return withInstallation(async (redis) => {
    const logs = new Map<string, Map<string, number>>();
    for (const board of boards) {
      const entries = await redis.xRange(boardKeys(prefix, board).log, '-', '+');
      const values = new Map<string, number>();
      for (const entry of entries ?? []) {
        const raw = Object.values(entry.message)[0];
        let value = Number.NaN;
        try {
          const parsed: unknown = JSON.parse(String(raw));
          if (parsed && typeof parsed === 'object' && 'value' in parsed) value = Number(parsed.value);
        } catch {
          // not JSON: the value stays NaN and the check reports a mismatch
        }
        values.set(entry.id, value);
      }
      logs.set(board, values);
    }
    return logs;
  }, config);
}

/** Logs SCALE_USER in at `baseUrl`; resolves with the Cookie header. */
export async function loginAt(baseUrl: string): Promise<Record<string, string>> {
  const origin = new URL(baseUrl).origin;
  const response = await fetch(`${baseUrl}/api/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Origin: origin },
    body: JSON.stringify({ username: SCALE_USER, password: TEST_PASSWORD }),
  });
  if (response.status !== 200) throw new Error(`login failed: ${response.status} ${await response.text()}`);
  await response.body?.cancel();
  const cookie = response.headers
    .getSetCookie()
    .map((line) => line.split(';')[0] ?? '')
    .filter((pair) => pair.includes('=') && !pair.endsWith('='))
    .join('; ');
  return { Cookie: cookie };
}

/**
 * `perShard` board names for each of `shards` (slot ranges), for installation `prefix`: a board's keys and
 * channel carry the hash tag `{<prefix>:<board>}` (shared/keys.ts), so its slot is that tag's. `accept`
 * narrows the slots further (e.g. near the start of a shard's range, for a reshard).
 */
export function boardsOnShards(
  prefix: string,
  shards: Array<Array<[number, number]>>,
  perShard: number,
  accept: (slot: number, shard: number) => boolean = () => true,
): string[][] {
  const chosen = shards.map(() => [] as string[]);
  for (let index = 0; chosen.some((names) => names.length < perShard); index += 1) {
    if (index > 1_000_000) throw new Error('no board names found for every shard');
    const board = `s-${index}`;
    const slot = keySlot(`{${prefix}:${board}}`);
    const shard = shards.findIndex((ranges) => ranges.some(([first, last]) => slot >= first && slot <= last));
    if (shard === -1 || chosen[shard]!.length >= perShard || !accept(slot, shard)) continue;
    chosen[shard]!.push(board);
  }
  return chosen;
}

export interface Frame {
  id: string;
  value: number;
  at: number;
}

export interface BoardClient {
  board: string;
  source: EventSource;
  frames: Frame[];
  opens: number;
  errors: number;
  servedBy: string[];
  close(): void;
}

function openBoardClient(baseUrl: string, board: string, headers: Record<string, string>): BoardClient {
  const servedBy: string[] = [];
  const fetchWithHeaders: FetchLike = async (input, init) => {
    const response = await fetch(input, { ...init, headers: { ...(init?.headers ?? {}), ...headers } });
    if (response.status === 200) servedBy.push(response.headers.get('x-served-by') ?? '');
    return response;
  };
  const source = new EventSource(`${baseUrl}/events?boards=${board}`, { fetch: fetchWithHeaders });
  const client: BoardClient = {
    board,
    source,
    frames: [],
    opens: 0,
    errors: 0,
    servedBy,
    close: () => source.close(),
  };
  source.addEventListener('open', () => (client.opens += 1));
  source.addEventListener('error', () => (client.errors += 1));
  for (const type of EVENT_KINDS) {
    source.addEventListener(type, (message) => {
      const envelope = envelopeSchema.parse(JSON.parse(message.data));
      const value = envelope.type === 'metric' ? envelope.value : Number.NaN;
      client.frames.push({ id: envelope.id, value, at: performance.now() });
    });
  }
  return client;
}

/** Opens `perBoard` clients on each board, one after another (a round-robin balancer spreads them). */
export async function openBoardClients(
  baseUrl: string,
  boards: string[],
  perBoard: number,
  headers: Record<string, string>,
): Promise<BoardClient[]> {
  const clients: BoardClient[] = [];
  for (let round = 0; round < perBoard; round += 1) {
    for (const board of boards) {
      const client = openBoardClient(baseUrl, board, headers);
      clients.push(client);
      await until(() => client.opens > 0, 15_000, `a client of ${board} to open`);
    }
  }
  return clients;
}

export interface Ack {
  id: string;
  value: number;
}

export interface Publishing {
  /** Stops publishing; resolves with the acknowledged events per board and the failures. */
  stop(): Promise<{ acks: Map<string, Ack[]>; failures: Map<string, string[]> }>;
  /** Acknowledged so far, all boards. */
  acked(): number;
}

/**
 * `POST /api/publish` of one metric per tick to every board in turn, `perSecond` in all, each board's
 * publishes one after another (a board waits for its own previous answer, never for another board's).
 * An event counts as acknowledged only on 200 with its id.
 */
export function publishToBoards(
  baseUrl: string,
  token: string,
  boards: string[],
  perSecond: number,
): Publishing {
  const acks = new Map(boards.map((board) => [board, [] as Ack[]]));
  const failures = new Map(boards.map((board) => [board, [] as string[]]));
  const chains = new Map(boards.map((board) => [board, Promise.resolve()]));
  const counters = new Map(boards.map((board) => [board, 0]));
  let total = 0;
  let turn = 0;
  const publishOne = async (board: string, value: number) => {
    try {
      const response = await fetch(`${baseUrl}/api/publish`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ type: 'metric', board, name: 'scale.test', value }),
        signal: AbortSignal.timeout(15_000),
      });
      const text = await response.text();
      if (response.status !== 200) {
        failures.get(board)!.push(`${response.status} ${text.slice(0, 200)}`);
        return;
      }
      const { ids } = JSON.parse(text) as { ids: string[] };
      acks.get(board)!.push({ id: ids[0]!, value });
      total += 1;
    } catch (error) {
      failures.get(board)!.push(String(error));
    }
  };
  const timer = setInterval(() => {
    const board = boards[turn++ % boards.length]!;
    const value = counters.get(board)!;
    counters.set(board, value + 1);
    chains.set(
      board,
      chains.get(board)!.then(() => publishOne(board, value)),
    );
  }, 1000 / perSecond);
  return {
    acked: () => total,
    async stop() {
      clearInterval(timer);
      await Promise.all(chains.values());
      return { acks, failures };
    },
  };
}

export interface BoardReport {
  board: string;
  clients: number;
  acked: number;
  failed: number;
  /** Acknowledged events some client never received. */
  missing: number;
  /** Frames a client received more than once. */
  duplicates: number;
  /** Frames that arrived after a frame with a higher id. */
  outOfOrder: number;
  /** Acknowledged ids that arrived with another value than was published. */
  wrongValue: number;
  /** Received ids absent from the board's log at the end (unacknowledged writes lost in a failover). */
  phantoms: number;
  /** Longest time between two consecutive new frames, over this board's clients, in `window`. */
  longestGapMs: number;
}

/** Longest time between consecutive new frames arriving within [from, to] (and the edges of it). */
function longestGap(frames: Frame[], from: number, to: number): number {
  const seen = new Set<string>();
  let previous = from;
  let longest = 0;
  for (const frame of frames) {
    if (seen.has(frame.id)) continue;
    seen.add(frame.id);
    if (frame.at < from || frame.at > to) continue;
    longest = Math.max(longest, frame.at - previous);
    previous = frame.at;
  }
  return Math.max(longest, to - previous);
}

/**
 * Waits until every client of a board has its board's last acknowledged event, then checks each one:
 * every acknowledged event exactly once with its value, ids increasing, and what else arrived.
 */
export async function checkDelivery(
  clients: BoardClient[],
  acks: Map<string, Ack[]>,
  failures: Map<string, string[]>,
  logs: Map<string, Map<string, number>>,
  window: { from: number; to: number },
  timeoutMs = 20_000,
): Promise<BoardReport[]> {
  await until(
    () =>
      clients.every((client) => {
        const last = acks.get(client.board)?.at(-1);
        return !last || client.frames.some((frame) => frame.id === last.id);
      }),
    timeoutMs,
    'every client to receive its board’s last acknowledged event',
  ).catch(() => undefined); // the report below says what is missing
  const reports: BoardReport[] = [];
  for (const [board, boardAcks] of acks) {
    const boardClients = clients.filter((client) => client.board === board);
    const log = logs.get(board) ?? new Map<string, number>();
    const report: BoardReport = {
      board,
      clients: boardClients.length,
      acked: boardAcks.length,
      failed: failures.get(board)?.length ?? 0,
      missing: 0,
      duplicates: 0,
      outOfOrder: 0,
      wrongValue: 0,
      phantoms: 0,
      longestGapMs: 0,
    };
    for (const client of boardClients) {
      const byId = new Map<string, number>();
      let highest: string | undefined;
      for (const frame of client.frames) {
        if (byId.has(frame.id)) {
          report.duplicates += 1;
          continue;
        }
        byId.set(frame.id, frame.value);
        if (highest !== undefined && compareStreamIds(frame.id, highest) <= 0) report.outOfOrder += 1;
        else highest = frame.id;
        if (!log.has(frame.id)) report.phantoms += 1;
      }
      for (const ack of boardAcks) {
        const value = byId.get(ack.id);
        if (value === undefined) report.missing += 1;
        else if (value !== ack.value) report.wrongValue += 1;
      }
      report.longestGapMs = Math.max(
        report.longestGapMs,
        Math.round(longestGap(client.frames, window.from, window.to)),
      );
    }
    reports.push(report);
  }
  return reports;
}

/** One line per board, for the test output and docs/scaling.md. */
export function formatReports(reports: BoardReport[], shardOf: (board: string) => string): string {
  return reports
    .map(
      (report) =>
        `      ${report.board.padEnd(8)} shard ${shardOf(report.board).padEnd(6)} clients ${report.clients} ` +
        `acked ${String(report.acked).padStart(4)} failed ${report.failed} missing ${report.missing} ` +
        `dupes ${report.duplicates} order ${report.outOfOrder} phantoms ${report.phantoms} ` +
        `longest gap ${report.longestGapMs} ms`,
    )
    .join('\n');
}

export { sleep };
