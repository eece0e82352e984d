import { pino, type Logger } from 'pino';

export type { Logger };

/** Structured JSON logs (pino); `level` comes from `LOG_LEVEL`. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { pid: process.pid } }, destination);
}

/**
 * Logs a warning at most once per `intervalMs` per key, with the number suppressed since the last one:
 * a flood of bad input must not become a flood of log lines.
 */
export function createRateLimitedWarn(log: Logger, intervalMs = 10_000) {
  const state = new Map<string, { lastAt: number; suppressed: number }>();
  return function warn(key: string, fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    const entry = state.get(key);
    if (entry && now - entry.lastAt < intervalMs) {
      entry.suppressed += 1;
      return;
    }
    log.warn({ ...fields, suppressed: entry?.suppressed ?? 0 }, message);
    state.set(key, { lastAt: now, suppressed: 0 });
  };
}
