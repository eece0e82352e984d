// Request ids, access logs and HTTP durations. Health polls are neither logged nor timed; SSE streams are
// logged when they end but not timed (their duration is the session's, not the server's).
import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { HEALTH_PATHS } from './health.ts';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

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
        const route =
          typeof ctx.state.route === 'string' ? ctx.state.route : ctx.status === 404 ? 'unmatched' : ctx.path;
        metrics.httpDuration.observe({ method: ctx.method, route, status: String(ctx.status) }, seconds);
        ctx.state.log.info(
          { method: ctx.method, url: ctx.url, status: ctx.status, ms: Math.round(seconds * 1000) },
          'request',
        );
      }
    }
  };
}
