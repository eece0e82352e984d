import { pino, type Logger } from 'pino';

export type { Logger };

/** Structured JSON logs (pino); `level` comes from `LOG_LEVEL`. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { pid: process.pid } }, destination);
}

const LEVEL_NAMES: Readonly<Record<number, string>> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
const NOT_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'msg']);

function fieldText(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (value && typeof value === 'object' && 'message' in value) return JSON.stringify(value.message);
  return JSON.stringify(value);
}

/**
 * One pino JSON record as a line for a person (the demo's terminal): `12:04:05 WARN message  key=value`.
 * A line that is not a record passes through unchanged. No dependency: pino-pretty is a dev dependency,
 * and `pulseboard demo` also runs from a production install.
 */
export function formatLogRecord(line: string): string {
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`;
  }
  if (!record || typeof record !== 'object') return `${line.trimEnd()}\n`;
  const fields = record as Record<string, unknown>;
  const time = typeof fields.time === 'number' ? new Date(fields.time).toTimeString().slice(0, 8) : '';
  const level = typeof fields.level === 'number' ? (LEVEL_NAMES[fields.level] ?? String(fields.level)) : '';
  const rest = Object.entries(fields)
    .filter(([key]) => !NOT_FIELDS.has(key))
    .map(([key, value]) => `${key}=${fieldText(value)}`);
  const message = typeof fields.msg === 'string' ? fields.msg : '';
  return `${[time, level.padEnd(5), message].join(' ')}${rest.length ? `  (${rest.join(' ')})` : ''}\n`;
}

/** A pino destination that writes `formatLogRecord` lines, for people rather than log collectors. */
export function humanLogDestination(out: NodeJS.WritableStream = process.stderr): pino.DestinationStream {
  return { write: (line: string) => void out.write(formatLogRecord(line)) };
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
