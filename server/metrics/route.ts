// GET /metrics (docs/design.md, "Health, metrics, logs"): cluster totals by default, the per-worker breakdown
// with `?scope=workers`. No session; a bearer token when METRICS_TOKEN is set (required in production
// unless METRICS_PUBLIC=true, see server/config.ts).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, Next } from 'koa';
import { AppError, ValidationError } from '../http/errors.ts';
import type { ClusterMetrics } from './cluster-metrics.ts';
import type { MetricsScope, Scrape } from './render.ts';

export interface MetricsRouteOptions {
  cluster: ClusterMetrics;
  /** Bearer token required when set (METRICS_TOKEN). */
  token?: string | undefined;
}

const SCOPES: readonly MetricsScope[] = ['cluster', 'workers'];

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Compares digests, so neither the length nor the content of the token leaks through timing. */
function hasToken(ctx: Context, token: string): boolean {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(ctx.get('Authorization'));
  return match !== null && timingSafeEqual(digest(match[1] ?? ''), digest(token));
}

function scopeOf(ctx: Context): MetricsScope {
  const value = ctx.query.scope;
  if (value === undefined) return 'cluster';
  const scope = SCOPES.find((candidate) => candidate === value);
  if (!scope) throw new ValidationError(`scope: must be one of ${SCOPES.join(', ')}`, 'scope');
  return scope;
}

export function metricsRoute(options: MetricsRouteOptions) {
  // One gather per scope at a time: concurrent scrapes (several Prometheus replicas, a retry storm) share
  // it instead of each asking every worker of the cluster (docs/security.md, "Hardening").
  const inFlight = new Map<MetricsScope, Promise<Scrape>>();
  const gather = (scope: MetricsScope): Promise<Scrape> => {
    let scrape = inFlight.get(scope);
    if (!scrape) {
      scrape = options.cluster.scrape(scope).finally(() => inFlight.delete(scope));
      inFlight.set(scope, scrape);
    }
    return scrape;
  };
  return async function serveMetrics(ctx: Context, next: Next): Promise<void> {
    if (ctx.path !== '/metrics' || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return next();
    if (options.token !== undefined && !hasToken(ctx, options.token)) {
      throw new AppError(401, 'unauthorized', 'a valid metrics bearer token is required', {
        headers: { 'WWW-Authenticate': 'Bearer realm="metrics"' },
      });
    }
    const scrape = await gather(scopeOf(ctx));
    ctx.set('Cache-Control', 'no-store');
    ctx.type = scrape.contentType;
    ctx.body = scrape.text;
  };
}
