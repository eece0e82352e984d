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
import { redisNames, type RedisNames } from './keys.ts';
import { BOARD_ERROR_PREFIX, SEQUENCE_SCRIPT, TS_ERROR_PREFIX } from './sequence-script.ts';

/** The one Redis capability the publisher needs; a node-redis client satisfies it. */
export interface RedisCommandSender {
  sendCommand(args: string[]): Promise<unknown>;
}

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
  /** KEYS count and the keys + common ARGV every sequencing script starts with (shared/sequence-script.ts). */
  scriptPrefix(extraKeys: readonly string[]): string[];
}

/**
 * Runs a Lua script by EVALSHA, loading it on first use and again after a Redis restart or SCRIPT FLUSH
 * (NOSCRIPT), so the script text crosses the wire once per connection life, not per call.
 */
export function createScriptRunner(
  client: RedisCommandSender,
  script: string,
): (args: string[]) => Promise<unknown> {
  let sha: Promise<string> | undefined;
  const load = (): Promise<string> => {
    const loading = client.sendCommand(['SCRIPT', 'LOAD', script]).then((loaded) => {
      if (typeof loaded !== 'string') throw new Error('SCRIPT LOAD did not return a sha');
      return loaded;
    });
    loading.catch(() => {
      if (sha === loading) sha = undefined;
    });
    return loading;
  };
  return async function run(args: string[]): Promise<unknown> {
    sha ??= load();
    try {
      return await client.sendCommand(['EVALSHA', await sha, ...args]);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      sha = load();
      return client.sendCommand(['EVALSHA', await sha, ...args]);
    }
  };
}

const TS_ERROR = new RegExp(`${TS_ERROR_PREFIX} (\\d+)`);
const BOARD_ERROR = new RegExp(`${BOARD_ERROR_PREFIX} (\\d+) ([a-z0-9-]+)`);

export function createSequencer(client: RedisCommandSender, options: SequencerOptions = {}): Sequencer {
  const names = redisNames(options.prefix);
  const historyMax = String(options.historyMax ?? DEFAULT_HISTORY_MAX);
  const metricMax = String(options.metricHistoryMax ?? DEFAULT_METRIC_HISTORY_MAX);
  const eventMax = String(options.eventHistoryMax ?? DEFAULT_EVENT_HISTORY_MAX);
  const maxFutureMs = options.maxFutureMs ?? DEFAULT_MAX_FUTURE_MS;
  const run = createScriptRunner(client, SEQUENCE_SCRIPT);
  const scriptPrefix = (extraKeys: readonly string[]): string[] => [
    String(extraKeys.length),
    ...extraKeys,
    historyMax,
    metricMax,
    eventMax,
    names.eventsChannel,
    names.prefix,
    String(maxFutureMs),
  ];

  return {
    names,
    maxFutureMs,
    scriptPrefix,
    async sequence(events) {
      if (events.length === 0) return [];
      let reply: unknown;
      try {
        reply = await run([...scriptPrefix([]), ...events.flatMap(eventArgs)]);
      } catch (error) {
        const message = error instanceof Error ? error.message : '';
        const board = BOARD_ERROR.exec(message);
        if (board) throw new UnknownBoard(Number(board[1]), board[2] ?? '');
        const ts = TS_ERROR.exec(message);
        if (!ts) throw error;
        throw new TsRejected(Number(ts[1]), undefined, maxFutureMs);
      }
      if (!Array.isArray(reply)) throw new Error('sequencing script returned an unexpected reply');
      return reply.map(String);
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
