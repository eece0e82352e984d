// Helpers shared by the SSE and bus tests: the log's ids as Redis holds them. The raw HTTP reader for
// assertions on the wire format (headers, retry, comments) is test/helpers/raw-stream.ts.
import type { RedisClient } from '../../../server/redis.ts';
import { redisNames } from '../../../shared/keys.ts';

/** Every id in the log, oldest first (XRANGE), optionally only those after `afterId`. */
export async function logIds(redis: RedisClient, prefix: string, afterId?: string): Promise<string[]> {
  const entries = await redis.xRange(redisNames(prefix).log, afterId ? `(${afterId}` : '-', '+');
  return (entries ?? []).map((entry) => entry.id);
}
