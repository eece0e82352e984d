// The installation every command works on: the configuration from the environment (REDIS_URL or
// REDIS_SENTINELS or REDIS_CLUSTER_NODES, PULSEBOARD_PREFIX…) and a short-lived Redis connection to it. One attempt, no retries: a CLI answers
// with a clear message and a non-zero exit instead of waiting (docs/security.md, "Hardening": the
// message never shows the Redis password).
import { redisNames, type RedisNames } from '../../shared/keys.ts';
import { ConfigError, loadConfig, type Config } from '../config.ts';
import type { RedisClient } from '../redis.ts';
import { createConnection, describeTopology, redactUrl } from '../redis/topology.ts';
import { CliError } from './errors.ts';

const CONNECT_TIMEOUT_MS = 5000;

/** A Redis URL fit for a message: its password replaced by `***` (users/ACL names are kept). */
export const redactRedisUrl = redactUrl;

/** The configuration from `env`; a bad value is the user's to fix (exit 1, every problem listed). */
export function cliConfig(env: Record<string, string | undefined> = process.env): Config {
  try {
    return loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message);
    throw error;
  }
}

/**
 * Runs `work` on a connection to the installation's Redis and closes it afterwards. `config` defaults
 * to the environment's; the demo passes its own (it may have started a private Redis).
 */
export async function withInstallation<T>(
  work: (redis: RedisClient, names: RedisNames, config: Config) => Promise<T>,
  config: Config = cliConfig(),
): Promise<T> {
  // The same topology as the workers (REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES).
  const redis: RedisClient = createConnection(config, {
    reconnectStrategy: false,
    connectTimeout: CONNECT_TIMEOUT_MS,
  });
  redis.on('error', () => undefined); // the failing command reports it
  try {
    await redis.connect();
  } catch (error) {
    throw new CliError(
      `cannot reach ${describeTopology(config)}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  try {
    return await work(redis, redisNames(config.PULSEBOARD_PREFIX), config);
  } finally {
    await redis.quit().catch(() => redis.destroy());
  }
}
