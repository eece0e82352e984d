// Redis connections. Commands and the subscriber use separate connections (a subscribed connection cannot
// run commands); both reconnect forever with capped backoff.
import {
  ClientClosedError,
  ClientOfflineError,
  createClient,
  SocketClosedUnexpectedlyError,
  TimeoutError,
} from 'redis';
import { AppError } from './http/errors.ts';
import type { Logger } from './log.ts';

export const RECONNECT_MAX_DELAY_MS = 1000;

function buildClient(url: string, name: string) {
  return createClient({
    url,
    name: `pulseboard:${name}`,
    socket: {
      reconnectStrategy: (retries: number) =>
        Math.min(50 * 2 ** Math.min(retries, 5), RECONNECT_MAX_DELAY_MS),
      connectTimeout: 5000,
    },
  });
}

export type RedisClient = ReturnType<typeof buildClient>;

export function createRedisClient(url: string, name: string, log: Logger): RedisClient {
  const client = buildClient(url, name);
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
 * The command connection as the request path uses it: a command still waiting to be written after
 * `deadlineMs` (Redis is away and node-redis holds it in its offline queue) fails with a TimeoutError
 * instead of waiting for Redis to return. A blip shorter than the deadline only delays the request.
 * Same connection, no extra socket (docs/reliability.md, "Redis outages").
 */
export function withRequestDeadline(redis: RedisClient, deadlineMs: number): RedisClient {
  return redis.withCommandOptions({ timeout: deadlineMs });
}

/** Whether `error` means Redis could not be reached in time (not a bad command or a bug). */
export function isRedisUnavailable(error: unknown): boolean {
  return (
    error instanceof TimeoutError ||
    error instanceof ClientOfflineError ||
    error instanceof ClientClosedError ||
    error instanceof SocketClosedUnexpectedlyError
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
