// Request ids, access logs and HTTP durations. Health polls are neither logged nor timed; SSE streams are
// logged when they end but not timed (their duration is the session's, not the server's).
import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics/worker-metrics.ts';
import { HEALTH_PATHS } from './health.ts';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** Every path pulseboard answers; anything else is `unmatched` (docs/security.md, "Hardening"). */
const KNOWN_PATHS = new Set([
  '/',
  '/login',
  '/events',
  '/metrics',
  '/api/snapshot',
  '/api/boards',
  '/api/login',
  '/api/logout',
  '/api/session',
  '/api/publish',
]);
const BOARD_VIEW = /^\/b\/[a-z0-9-]{1,64}$/;
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/**
 * The `route` label: one of a fixed set, never the raw path. A label per requested path let anonymous
 * requests to random paths create a metric series each (docs/security.md, "Hardening"), in every worker and in Redis.
 */
function routeLabel(path: string): string {
  if (KNOWN_PATHS.has(path)) return path;
  if (path.startsWith('/assets/')) return '/assets/*';
  // A board's view (docs/dashboard.md): one label for every board, whichever names are asked for.
  if (BOARD_VIEW.test(path)) return '/b/*';
  // Public status pages (docs/status-pages.md): one label for all of them.
  if (path.startsWith('/status/')) return '/status/*';
  return 'unmatched';
}

/** The `method` label: the standard methods, or `other`. */
function methodLabel(method: string): string {
  return KNOWN_METHODS.has(method) ? method : 'other';
}

export function requestLog(log: Logger, metrics: Metrics) {
  return async function logRequest(ctx: Context, next: Next): Promise<void> {
    if (HEALTH_PATHS.has(ctx.path)) return next();
    const incoming = ctx.get('X-Request-Id');
    const requestId = REQUEST_ID.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId;
    ctx.state.log = log.child({ requestId });
    ctx.set('X-Request-Id', requestId);
    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const streaming = ctx.path === '/events' && ctx.status === 200;
      if (!streaming) {
        metrics.httpDuration.observe(
          { method: methodLabel(ctx.method), route: routeLabel(ctx.path), status: String(ctx.status) },
          seconds,
        );
        ctx.state.log.info(
          { method: ctx.method, url: ctx.url, status: ctx.status, ms: Math.round(seconds * 1000) },
          'request',
        );
      }
    }
  };
}
