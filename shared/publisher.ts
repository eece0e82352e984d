// The publisher: validate, then sequence with the atomic script. Used by the CLI, by `POST /api/publish`,
// by the raw ingest path of the workers and by any TypeScript script. It never opens a Redis connection
// itself: the caller owns the client (as socket.io's redis adapter does).
import { parseEventInput, toSingleEvents, type EventInput, type SingleEventInput } from './events.ts';
import { redisNames, type RedisNames } from './keys.ts';
import { recentEventsKey, SEQUENCE_SCRIPT } from './sequence-script.ts';

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
}

export interface SequenceOptions {
  /** Claim this key first; when it already exists the events are not sequenced (raw ingest dedupe). */
  dedupeKey?: string;
  /** How long the dedupe key lives. Default 3000 ms. */
  dedupeWindowMs?: number;
}

export const DEFAULT_HISTORY_MAX = 10_000;
export const DEFAULT_METRIC_HISTORY_MAX = 1000;
export const DEFAULT_EVENT_HISTORY_MAX = 200;
export const DEFAULT_DEDUPE_WINDOW_MS = 3000;

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

function stringifyWithoutTs(event: SingleEventInput): string {
  const { ts: _ts, ...rest } = event;
  return JSON.stringify(rest);
}

function argsFor(event: SingleEventInput): string[] {
  const key = event.type === 'status' ? event.service : event.type === 'metric' ? event.name : '';
  return [event.type, key, event.ts === undefined ? '' : String(event.ts), stringifyWithoutTs(event)];
}

export interface Sequencer {
  readonly names: RedisNames;
  /** Sequences already-validated events atomically; returns their ids ([] when deduplicated). */
  sequence(events: readonly SingleEventInput[], options?: SequenceOptions): Promise<string[]>;
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

export function createSequencer(client: RedisCommandSender, options: SequencerOptions = {}): Sequencer {
  const names = redisNames(options.prefix);
  const historyMax = String(options.historyMax ?? DEFAULT_HISTORY_MAX);
  const metricMax = String(options.metricHistoryMax ?? DEFAULT_METRIC_HISTORY_MAX);
  const eventMax = String(options.eventHistoryMax ?? DEFAULT_EVENT_HISTORY_MAX);
  const run = createScriptRunner(client, SEQUENCE_SCRIPT);

  return {
    names,
    async sequence(events, sequenceOptions = {}) {
      if (events.length === 0) return [];
      const args = [
        '4',
        names.log,
        names.status,
        names.metricIndex,
        recentEventsKey(names),
        historyMax,
        metricMax,
        sequenceOptions.dedupeKey ?? '',
        String(sequenceOptions.dedupeWindowMs ?? DEFAULT_DEDUPE_WINDOW_MS),
        names.eventsChannel,
        names.metricPrefix,
        eventMax,
        ...events.flatMap(argsFor),
      ];
      const reply = await run(args);
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
      return sequencer.sequence(toSingleEvents(parsed.value satisfies EventInput));
    },
  };
}
