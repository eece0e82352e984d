// Redis connections. Commands and the subscriber use separate connections (a subscribed connection cannot
// run commands); both reconnect forever with capped backoff. The topology (one server, Sentinel, Cluster)
// comes from the configuration (server/redis/topology.ts, docs/operations.md "Redis topologies").
import { setMaxListeners } from 'node:events';
import {
  AbortError,
  ClientClosedError,
  ClientOfflineError,
  SocketClosedUnexpectedlyError,
  TimeoutError,
} from 'redis';
import { AppError } from './http/errors.ts';
import type { Logger } from './log.ts';
import { createConnection, type RedisClient, type RedisTopologyConfig } from './redis/topology.ts';

export type { RedisClient } from './redis/topology.ts';

const RECONNECT_MAX_DELAY_MS = 1000;

export function createRedisClient(config: RedisTopologyConfig, name: string, log: Logger): RedisClient {
  const client = createConnection(config, {
    name: `pulseboard:${name}`,
    reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 5), RECONNECT_MAX_DELAY_MS),
    connectTimeout: 5000,
  });
  let lastErrorLogAt = 0;
  // Without a listener node-redis would throw; log at most once a second while Redis is away.
  client.on('error', (error: unknown) => {
    const now = Date.now();
    if (now - lastErrorLogAt < 1000) return;
    lastErrorLogAt = now;
    log.warn({ err: error, connection: name }, 'redis connection error');
  });
  return client;
}

/**
 * Commands the request path may send twice with the same effect: reads, and writes that set or remove a
 * whole value. A connection cut after one was written fails it (node-redis cannot know whether Redis ran
 * it), so these are sent once more on the new connection instead of failing the request.
 */
const IDEMPOTENT_COMMANDS = new Set([
  'get',
  'mGet',
  'hGet',
  'hmGet',
  'hGetAll',
  'hLen',
  'exists',
  'set',
  'del',
  'zRem',
  'ping',
]);

/**
 * How often the request deadline starts a new abort signal: commands sent within one such window share it,
 * and it aborts `deadlineMs` after the window closes (so a command gets between deadlineMs and
 * deadlineMs + DEADLINE_WINDOW_MS).
 */
const DEADLINE_WINDOW_MS = 100;

/** Methods that make another client from this one, with its command options. */
const DERIVING_METHODS = new Set(['duplicate', 'withCommandOptions', 'withTypeMapping']);

/**
 * The command connection as the request path uses it (docs/reliability.md, "Redis outages"): a command
 * still waiting to be written after its deadline (Redis is away and node-redis holds it in its offline
 * queue) fails with a TimeoutError instead of waiting for Redis to return, and an idempotent command cut
 * by a dropped connection is sent once more. A blip shorter than the deadline only delays the request.
 * Same connection, no extra socket.
 *
 * node-redis' own `timeout` option would do the first with an `AbortSignal.timeout` per command: a timer,
 * and at its end an abort with a DOMException and its stack, for every command even when it was written at
 * once (~8 % of a worker's CPU per stream open, docs/performance.md "Setup at 2,000 streams"). Instead,
 * the commands of one DEADLINE_WINDOW_MS share one abort signal and one timer; node-redis drops a
 * command's abort listener when it writes the command, so only the commands still unwritten are failed.
 */
export function withRequestDeadline(redis: RedisClient, deadlineMs: number): RedisClient {
  let current: { client: RedisClient; endsAt: number } | undefined;
  const currentClient = (): RedisClient => {
    const now = performance.now();
    if (current === undefined || now >= current.endsAt) {
      const controller = new AbortController();
      // Every command of the window listens to it until written: no leak warning past 10.
      setMaxListeners(0, controller.signal);
      const endsAt = now + DEADLINE_WINDOW_MS;
      setTimeout(() => controller.abort(), endsAt - now + deadlineMs).unref();
      // timeout 0: node-redis' per-command timer off (its default is 5 s).
      current = { client: redis.withCommandOptions({ timeout: 0, abortSignal: controller.signal }), endsAt };
    }
    return current.client;
  };
  // A client made from this one (`duplicate`) lives on: it keeps node-redis' own per-command timer, as
  // before, never a window's signal that aborts once the window is over.
  const perCommandTimed = redis.withCommandOptions({ timeout: deadlineMs });
  return new Proxy(redis, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      if (typeof property === 'string' && DERIVING_METHODS.has(property)) {
        const method: unknown = Reflect.get(perCommandTimed, property, perCommandTimed);
        return (...args: unknown[]): unknown =>
          Reflect.apply(method as (...a: unknown[]) => unknown, perCommandTimed, args);
      }
      const timedCall = (...args: unknown[]): Promise<unknown> | unknown => {
        const client = currentClient();
        const method: unknown = Reflect.get(client, property, client);
        const result: unknown = Reflect.apply(method as (...a: unknown[]) => unknown, client, args);
        return result instanceof Promise ? result.catch(asDeadlineError) : result;
      };
      if (typeof property !== 'string' || !IDEMPOTENT_COMMANDS.has(property)) return timedCall;
      return async (...args: unknown[]): Promise<unknown> => {
        try {
          return await timedCall(...args);
        } catch (error) {
          if (!isConnectionCut(error)) throw error;
          return timedCall(...args);
        }
      };
    },
  });
}

/** A command failed by the deadline's abort signal is a TimeoutError, as node-redis' own timeout gives. */
function asDeadlineError(error: unknown): never {
  throw error instanceof AbortError ? new TimeoutError() : error;
}

/**
 * Whether the connection dropped under a command already written. node-redis fails such commands with
 * SocketClosedUnexpectedlyError on a clean close, and with the socket's own error on a reset.
 */
function isConnectionCut(error: unknown): boolean {
  if (error instanceof SocketClosedUnexpectedlyError) return true;
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE';
}

/**
 * Whether a failed write may still have run: it timed out (node-redis' deadline also fires on a command
 * already written, whose reply was late) or the connection dropped under it.
 */
export function mayHaveBeenApplied(error: unknown): boolean {
  return error instanceof TimeoutError || isConnectionCut(error);
}

/** Whether `error` means Redis could not be reached in time (not a bad command or a bug). */
export function isRedisUnavailable(error: unknown): boolean {
  return (
    error instanceof TimeoutError ||
    error instanceof ClientOfflineError ||
    error instanceof ClientClosedError ||
    isConnectionCut(error)
  );
}

/** Seconds a client is told to wait (Retry-After) when Redis is unavailable. */
export const REDIS_RETRY_AFTER_S = 2;

/**
 * Answers a request that Redis could not serve in time with 503 + Retry-After, not a 500 with a stack in
 * the log. Placed inside the error middleware and around everything that talks to Redis.
 */
export function redisOutageAnswer() {
  return async function answerRedisOutage(_ctx: unknown, next: () => Promise<void>): Promise<void> {
    try {
      await next();
    } catch (error) {
      if (!isRedisUnavailable(error)) throw error;
      throw new AppError(503, 'redis_unavailable', 'the data store is unavailable; try again shortly', {
        headers: { 'Retry-After': String(REDIS_RETRY_AFTER_S) },
      });
    }
  };
}
