// Redis connections. Commands and the subscriber use separate connections (a subscribed connection cannot
// run commands); both reconnect forever with capped backoff.
import { createClient } from 'redis';
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
