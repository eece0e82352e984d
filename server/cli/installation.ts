// Shared by the account commands (`user`, `token`): a short-lived Redis connection to the installation
// named by REDIS_URL and PULSEBOARD_PREFIX, and one way to report a user's mistake (message, exit 1).
import { redisNames, type RedisNames } from '../../shared/keys.ts';
import { loadConfig } from '../config.ts';
import type { RedisClient } from '../redis.ts';
import { createClient } from 'redis';

/** A mistake of the person at the terminal: printed without a stack trace, exit code 1. */
export class CliError extends Error {
  override readonly name = 'CliError';
}

/** A Redis URL fit for a message: its password replaced by `***` (users/ACL names are kept). */
export function redactRedisUrl(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return 'REDIS_URL';
  }
}

export async function withInstallation<T>(
  work: (redis: RedisClient, names: RedisNames) => Promise<T>,
): Promise<T> {
  const config = loadConfig(process.env);
  const redis: RedisClient = createClient({
    url: config.REDIS_URL,
    socket: { reconnectStrategy: false, connectTimeout: 5000 },
  });
  redis.on('error', () => undefined); // the failing command reports it
  try {
    await redis.connect();
  } catch (error) {
    throw new CliError(
      `cannot reach Redis at ${redactRedisUrl(config.REDIS_URL)}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  try {
    return await work(redis, redisNames(config.PULSEBOARD_PREFIX));
  } finally {
    await redis.quit().catch(() => redis.destroy());
  }
}

/** Runs a command's action, turning known input errors into a message and exit code 1. */
export function runAction<A extends unknown[]>(
  action: (...args: A) => Promise<void>,
  inputErrors: (new (...args: never[]) => Error)[] = [],
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await action(...args);
    } catch (error) {
      const known = error instanceof CliError || inputErrors.some((type) => error instanceof type);
      if (!known) throw error;
      process.stderr.write(`pulseboard: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    }
  };
}
