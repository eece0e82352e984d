// The publisher: validate, then sequence with the atomic script. Used by the CLI, by `POST /api/publish`,
// by the raw ingest path of the workers and by any TypeScript script. It never opens a Redis connection
// itself: the caller owns the client (as socket.io's redis adapter does).
import {
  boardOf,
  parseEventInput,
  toSingleEvents,
  type EventInput,
  type SingleEventInput,
} from './events.ts';
import { boardKeys, redisNames, type RedisNames } from './keys.ts';
import { createReplicaWait, type WaitReplicas } from './replica-wait.ts';
import { createScriptRunner, scriptArgs, sendFor, type RedisCommandSender } from './script-runner.ts';
import { BOARD_ERROR_PREFIX, SEQUENCE_SCRIPT, TS_ERROR_PREFIX } from './sequence-script.ts';

export {
  clusterSender,
  createScriptRunner,
  scriptArgs,
  type RedisCommandSender,
  type ScriptRunner,
} from './script-runner.ts';
export { ReplicationTimeout, type WaitReplicas } from './replica-wait.ts';

export interface SequencerOptions {
  /** Redis key prefix. Default `pulseboard`. */
  prefix?: string;
  /** Approximate number of entries kept in the log stream (`XADD MAXLEN ~`). Default 10000. */
  historyMax?: number;
  /** Points kept per metric series. Default 1000. */
  metricHistoryMax?: number;
  /** Log events (`type: 'event'`) kept for the snapshot. Default 200. */
  eventHistoryMax?: number;
  /** How far (ms) an event's `ts` may be ahead of Redis' clock. Default 60000. */
  maxFutureMs?: number;
  /**
   * Replicas that must have the events before `sequence` resolves (WAIT): a number, or `auto` (1 when the
   * node that took them has a replica). Default 0: no wait. Give the sequencer its own connection when
   * set: WAIT holds the connection while it blocks.
   */
  waitReplicas?: WaitReplicas;
  /** How long WAIT may block before `sequence` fails with ReplicationTimeout. Default 1000 ms. */
  waitTimeoutMs?: number;
}

export const DEFAULT_HISTORY_MAX = 10_000;
export const DEFAULT_METRIC_HISTORY_MAX = 1000;
export const DEFAULT_EVENT_HISTORY_MAX = 200;
export const DEFAULT_MAX_FUTURE_MS = 60_000;

/** Thrown by `publish` when the input does not match the event schema. */
export class EventValidationError extends Error {
  readonly field: string | undefined;
  readonly reason: string;
  constructor(message: string, reason: string, field?: string) {
    super(message);
    this.name = 'EventValidationError';
    this.reason = reason;
    this.field = field;
  }
}

/** The event as JSON without `ts` and `board`, which the script splices in front (shared/sequence-script.ts). */
function stringifyBody(event: SingleEventInput): string {
  const { ts: _ts, board: _board, ...rest } = event;
  return JSON.stringify(rest);
}

/** The 5 script arguments of one event (shared/sequence-script.ts): board, kind, key, ts, body. */
export function eventArgs(event: SingleEventInput): string[] {
  const key = event.type === 'status' ? event.service : event.type === 'metric' ? event.name : '';
  return [
    boardOf(event),
    event.type,
    key,
    event.ts === undefined ? '' : String(event.ts),
    stringifyBody(event),
  ];
}

/** The message of an event refused because its board does not exist. */
export function unknownBoardMessage(board: string): string {
  return `board: no board ${board} (create it with \`pulseboard board add ${board}\`)`;
}

/** The message of a `ts` rejected by the script, naming the field and the bound. */
export function tsRejectedMessage(field: string, maxFutureMs: number): string {
  return `${field}: must be epoch milliseconds at most ${maxFutureMs} ms ahead of the server clock`;
}

/** The field a batch's n-th single event came from (`ts`, or `points.<n>.ts` for a metrics batch). */
function tsField(input: EventInput | undefined, index: number): string {
  return input?.type === 'metrics' ? `points.${index}.ts` : 'ts';
}

/** Raised by Sequencer.sequence for the index-th event; callers that know the input name the field. */
export class TsRejected extends EventValidationError {
  readonly index: number;
  constructor(index: number, input?: EventInput, maxFutureMs = DEFAULT_MAX_FUTURE_MS) {
    const field = tsField(input, index);
    super(tsRejectedMessage(field, maxFutureMs), 'invalid', field);
    this.name = 'TsRejected';
    this.index = index;
  }
}

/**
 * Raised by Sequencer.sequence when an event names a board that does not exist (`main` always does);
 * nothing of the call was written. Reason `unknown_board`, field `board`.
 */
export class UnknownBoard extends EventValidationError {
  readonly index: number;
  readonly board: string;
  constructor(index: number, board: string) {
    super(unknownBoardMessage(board), 'unknown_board', 'board');
    this.name = 'UnknownBoard';
    this.index = index;
    this.board = board;
  }
}

export interface Sequencer {
  readonly names: RedisNames;
  /** How far (ms) a `ts` may be ahead of Redis' clock. */
  readonly maxFutureMs: number;
  /**
   * Sequences already-validated events atomically and returns their ids. Sequences nothing and throws
   * UnknownBoard when an event names a board that does not exist, TsRejected (field `ts`) when a `ts` is
   * too far ahead of Redis' clock.
   */
  sequence(events: readonly SingleEventInput[]): Promise<string[]>;
  /** The KEYS every sequencing call for `board` starts with: its log and meta (shared/sequence-script.ts). */
  boardScriptKeys(board: string): string[];
  /** The common ARGV of every sequencing call for `board` (shared/sequence-script.ts). */
  commonArgs(board: string): string[];
  /** Waits until the writes of this connection to each board's node are on its replicas (WAIT). */
  waitForReplicas(boards: readonly string[]): Promise<void>;
}

const TS_ERROR = new RegExp(`${TS_ERROR_PREFIX} (\\d+)`);
const BOARD_ERROR = new RegExp(`${BOARD_ERROR_PREFIX} (\\d+) ([a-z0-9-]+)`);

/** Events grouped by board, in order of first appearance; each keeps its index in the input. */
function byBoard(
  events: readonly SingleEventInput[],
): Map<string, { index: number; event: SingleEventInput }[]> {
  const groups = new Map<string, { index: number; event: SingleEventInput }[]>();
  events.forEach((event, index) => {
    const board = boardOf(event);
    let group = groups.get(board);
    if (!group) groups.set(board, (group = []));
    group.push({ index, event });
  });
  return groups;
}

export function createSequencer(client: RedisCommandSender, options: SequencerOptions = {}): Sequencer {
  const names = redisNames(options.prefix);
  const historyMax = String(options.historyMax ?? DEFAULT_HISTORY_MAX);
  const metricMax = String(options.metricHistoryMax ?? DEFAULT_METRIC_HISTORY_MAX);
  const eventMax = String(options.eventHistoryMax ?? DEFAULT_EVENT_HISTORY_MAX);
  const maxFutureMs = options.maxFutureMs ?? DEFAULT_MAX_FUTURE_MS;
  const run = createScriptRunner(client, SEQUENCE_SCRIPT);
  const waitReplicas = createReplicaWait(client, {
    replicas: options.waitReplicas ?? 0,
    ...(options.waitTimeoutMs === undefined ? {} : { timeoutMs: options.waitTimeoutMs }),
  });
  const boardScriptKeys = (board: string): string[] => {
    const keys = boardKeys(names.prefix, board);
    return [keys.log, keys.meta];
  };
  const commonArgs = (board: string): string[] => [
    historyMax,
    metricMax,
    eventMax,
    boardKeys(names.prefix, board).channel,
    names.prefix,
    String(maxFutureMs),
  ];

  /** One board's atomic call; its errors name the index in the whole input. */
  async function sequenceBoard(
    board: string,
    group: readonly { index: number; event: SingleEventInput }[],
  ): Promise<string[]> {
    let reply: unknown;
    try {
      reply = await run(
        scriptArgs(boardScriptKeys(board), [
          ...commonArgs(board),
          ...group.flatMap(({ event }) => eventArgs(event)),
        ]),
      );
    } catch (error) {
      const message = error instanceof Error ? error.message : '';
      const unknown = BOARD_ERROR.exec(message);
      if (unknown) throw new UnknownBoard(group[Number(unknown[1])]?.index ?? 0, unknown[2] ?? '');
      const ts = TS_ERROR.exec(message);
      if (!ts) throw error;
      throw new TsRejected(group[Number(ts[1])]?.index ?? 0, undefined, maxFutureMs);
    }
    if (!Array.isArray(reply)) throw new Error('sequencing script returned an unexpected reply');
    return reply.map(String);
  }

  /**
   * Before a publish naming several boards (one atomic call each), the checks each call would make, so
   * that a refused publish writes nothing: every board exists, no ts is too far ahead of Redis' clock.
   */
  async function checkAll(events: readonly SingleEventInput[], boards: readonly string[]): Promise<void> {
    for (const board of boards) {
      if (board === 'main') continue;
      const meta = boardKeys(names.prefix, board).meta;
      if (Number(await sendFor(client, meta, ['EXISTS', meta])) !== 1) {
        throw new UnknownBoard(
          events.findIndex((event) => boardOf(event) === board),
          board,
        );
      }
    }
    if (!events.some((event) => event.ts !== undefined)) return;
    const [seconds, micros] = (await client.sendCommand(['TIME'])) as [string, string];
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const bad = events.findIndex((event) => event.ts !== undefined && event.ts > now + maxFutureMs);
    if (bad >= 0) throw new TsRejected(bad, undefined, maxFutureMs);
  }

  return {
    names,
    maxFutureMs,
    boardScriptKeys,
    commonArgs,
    waitForReplicas: (boards) => waitReplicas(boards.map((board) => boardKeys(names.prefix, board).log)),
    async sequence(events) {
      if (events.length === 0) return [];
      const groups = byBoard(events);
      if (groups.size > 1) await checkAll(events, [...groups.keys()]);
      const ids: string[] = new Array<string>(events.length);
      await Promise.all(
        [...groups].map(async ([board, group]) => {
          const boardIds = await sequenceBoard(board, group);
          group.forEach(({ index }, k) => (ids[index] = boardIds[k] ?? ''));
        }),
      );
      await waitReplicas([...groups.keys()].map((board) => boardKeys(names.prefix, board).log));
      return ids;
    },
  };
}

export interface Publisher {
  /** Validates any value against the event schema and sequences it; returns the new ids. */
  publish(input: unknown): Promise<string[]>;
}

/** A publisher for scripts and servers: `createPublisher(redisClient).publish({ type: 'status', … })`. */
export function createPublisher(client: RedisCommandSender, options: SequencerOptions = {}): Publisher {
  const sequencer = createSequencer(client, options);
  return {
    async publish(input: unknown) {
      const parsed = parseEventInput(input);
      if (!parsed.ok) throw new EventValidationError(parsed.message, parsed.reason, parsed.field);
      try {
        return await sequencer.sequence(toSingleEvents(parsed.value satisfies EventInput));
      } catch (error) {
        if (error instanceof TsRejected)
          throw new TsRejected(error.index, parsed.value, sequencer.maxFutureMs);
        throw error;
      }
    },
  };
}
