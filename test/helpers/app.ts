// Starts real pulseboard workers on port 0 against a test Redis, and always stops them.
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../server/config.ts';
import { createLogger } from '../../server/log.ts';
import { startPulseboard, type Pulseboard } from '../../server/pulseboard.ts';

export type TestApp = Pulseboard;

/** A fresh key prefix, so tests sharing one Redis (REDIS_URL) never see each other's data. */
export function uniquePrefix(): string {
  return `pbtest-${randomBytes(4).toString('hex')}`;
}

export async function startTestApp(redisUrl: string, env: Record<string, string> = {}): Promise<TestApp> {
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    REDIS_URL: redisUrl,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...env,
  });
  return startPulseboard(config, { log: createLogger(config.LOG_LEVEL), defaultMetrics: false });
}

/** Stops every app given, ignoring ones that failed to start. */
export async function stopAll(apps: (TestApp | undefined)[]): Promise<void> {
  await Promise.allSettled(apps.map((app) => app?.stop()));
}
