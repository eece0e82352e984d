// Configuration from the environment, validated once at start and frozen (docs/design.md, "Processes").
// A bad value stops start with every problem listed.
import * as z from 'zod';
import { DEFAULT_PREFIX } from '../shared/keys.ts';

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((value) => value === 'true' || value === '1' || value === 'yes');
const list = z.string().transform((value) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean),
);

const configSchema = z.object({
  PORT: int(0, 65535).default(3000),
  HOST: z.string().min(1).default('0.0.0.0'),
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).default('redis://127.0.0.1:6379'),
  PULSEBOARD_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/)
    .default(DEFAULT_PREFIX),
  SESSION_KEYS: list.pipe(z.array(z.string().min(16, 'each key needs at least 16 characters'))).optional(),
  SESSION_TTL_MS: int(60_000).default(24 * 60 * 60 * 1000),
  TRUST_PROXY: bool.default(false),
  // With TRUST_PROXY: also believe X-Forwarded-Host for the CSRF origin check (only if the proxy sets it).
  TRUST_FORWARDED_HOST: bool.default(false),
  PULSEBOARD_ADMIN_PASSWORD: z.string().min(8).optional(),
  SESSION_CHECK_MS: int(100).default(30_000),
  LOGIN_MAX_FAILURES_PER_IP: int(1).default(50),
  LOGIN_MAX_FAILURES_PER_USER_IP: int(1).default(5),
  LOGIN_THROTTLE_WINDOW_MS: int(1000).default(15 * 60 * 1000),
  LOGIN_MAX_SESSIONS_PER_USER: int(1).default(30),
  REDIS_REQUEST_TIMEOUT_MS: int(100, 60_000).default(2000),
  HISTORY_MAX: int(100).default(10_000),
  METRIC_HISTORY_MAX: int(10, 100_000).default(1000),
  TS_MAX_FUTURE_MS: int(0, 24 * 60 * 60 * 1000).default(60_000),
  INGEST_CLAIM_IDLE_MS: int(1000, 60 * 60 * 1000).default(10_000),
  HEARTBEAT_MS: int(1000).default(15_000),
  SSE_RETRY_MS: int(100).default(2000),
  SSE_MAX_BUFFER_BYTES: int(16 * 1024).default(1024 * 1024),
  MAX_STREAMS_PER_SESSION: int(1).default(8),
  // Slow clients and floods (docs/security.md, "Hardening"): a request's headers
  // must arrive within HEADERS_TIMEOUT_MS and its body within REQUEST_TIMEOUT_MS (a stream's response is
  // not bounded by it); a worker holds at most MAX_CONNECTIONS sockets, MAX_CONNECTIONS_PER_IP of them from one address
  // (not applied with TRUST_PROXY: every socket then comes from the proxy).
  HEADERS_TIMEOUT_MS: int(1000, 600_000).default(10_000),
  REQUEST_TIMEOUT_MS: int(1000, 3_600_000).default(30_000),
  MAX_CONNECTIONS: int(1).default(10_000),
  MAX_CONNECTIONS_PER_IP: int(1).default(256),
  METRICS_TOKEN: z.string().min(16).optional(),
  // Serve /metrics without a token even in production (a private network, or a proxy guarding it).
  METRICS_PUBLIC: bool.default(false),
  // \`production\` makes a worker refuse to start with an open /metrics (see checkServerConfig).
  NODE_ENV: z.string().optional(),
  METRICS_COLLECT_TIMEOUT_MS: int(50, 10_000).default(1000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SHUTDOWN_TIMEOUT_MS: int(100).default(1200),
  WEB_CONCURRENCY: int(0).optional(),
  // Read by the `pulseboard tail` CLI (a client of the server), not by workers.
  PULSEBOARD_URL: z.url({ protocol: /^https?$/ }).optional(),
  PULSEBOARD_COOKIE: z.string().min(1).optional(),
  PULSEBOARD_PASSWORD: z.string().min(1).optional(),
  // Public status pages (docs/status-pages.md, "Limits"): requests a minute one client address may make to
  // /status/* on one worker (429 beyond), and public streams one worker holds (503 beyond).
  STATUS_RATE_PER_MINUTE: int(1, 100_000).default(120),
  STATUS_MAX_STREAMS: int(1).default(2000),
});

export type Config = Readonly<z.infer<typeof configSchema>>;

/** Thrown when the environment has bad values; `problems` lists every one. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/**
 * What a worker (not a CLI command) additionally needs. In production /metrics must not be open by
 * accident: a METRICS_TOKEN, or an explicit METRICS_PUBLIC=true (docs/security.md, "Hardening").
 */
function serverConfigProblems(config: Config): string[] {
  const problems: string[] = [];
  if (config.NODE_ENV === 'production' && config.METRICS_TOKEN === undefined && !config.METRICS_PUBLIC) {
    problems.push(
      'METRICS_TOKEN: required when NODE_ENV=production (at least 16 characters; Prometheus sends it as a bearer token), or set METRICS_PUBLIC=true to serve /metrics without one',
    );
  }
  if (config.HEADERS_TIMEOUT_MS > config.REQUEST_TIMEOUT_MS) {
    problems.push('HEADERS_TIMEOUT_MS: must not be longer than REQUEST_TIMEOUT_MS');
  }
  return problems;
}

/** Throws ConfigError when a worker may not start with this configuration. */
export function checkServerConfig(config: Config): void {
  const problems = serverConfigProblems(config);
  if (problems.length > 0) throw new ConfigError(problems);
}

/** Parses an environment (usually `process.env`); empty strings count as unset. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const present = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value !== ''),
  );
  const parsed = configSchema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`));
  }
  return Object.freeze(parsed.data);
}
