// Health (docs/design.md, "Health, metrics, logs"): /livez answers while the process does; /healthz and /readyz
// are 200 only when Redis commands and the subscriber are up and the worker is not draining. A background
// check keeps the state, so a poll never costs a Redis round trip.
import type { Context } from 'koa';
import type { Metrics } from '../metrics/worker-metrics.ts';
import type { RedisClient } from '../redis.ts';

export interface HealthOptions {
  redis: RedisClient;
  /** Whether the subscriber is connected and live (no gap fill running). */
  subscriberLive: () => boolean;
  metrics: Metrics;
  /** Period of the background Redis check. Default 1000 ms. */
  intervalMs?: number;
  /** A PING slower than this fails the check. Default 1000 ms. */
  timeoutMs?: number;
}

export interface HealthReport {
  status: 'ok' | 'unavailable';
  checks: { redis: 'ok' | 'fail'; subscriber: 'ok' | 'fail'; draining: boolean };
}

export class Health {
  private readonly options: HealthOptions;
  private redisOk = false;
  private timer: NodeJS.Timeout | undefined;
  /** The check running now, if any: a slow Redis must not stack one PING per interval. */
  private running: Promise<void> | undefined;
  draining = false;

  constructor(options: HealthOptions) {
    this.options = options;
  }

  async start(): Promise<void> {
    await this.check();
    this.timer = setInterval(() => void this.check(), this.options.intervalMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One background check; while one runs, further calls share it instead of sending another PING. */
  check(): Promise<void> {
    this.running ??= this.runCheck().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** PING the command connection, read the subscriber's state. */
  private async runCheck(): Promise<void> {
    const { redis, metrics } = this.options;
    let ok = false;
    if (redis.isReady) {
      let timeout: NodeJS.Timeout | undefined;
      try {
        const timedOut = new Promise<never>((_, reject) => {
          timeout = setTimeout(() => reject(new Error('PING timed out')), this.options.timeoutMs ?? 1000);
        });
        ok = (await Promise.race([redis.ping(), timedOut])) === 'PONG';
      } catch {
        ok = false;
      } finally {
        clearTimeout(timeout);
      }
    }
    this.redisOk = ok;
    metrics.redisConnected.set({ connection: 'commands' }, ok ? 1 : 0);
    metrics.redisConnected.set({ connection: 'subscriber' }, this.options.subscriberLive() ? 1 : 0);
  }

  report(): HealthReport {
    const subscriber = this.options.subscriberLive();
    // The last PING and the connection's own state: a dropped connection fails at once, not a second later.
    const redisOk = this.redisOk && this.options.redis.isReady;
    const ready = redisOk && subscriber && !this.draining;
    return {
      status: ready ? 'ok' : 'unavailable',
      checks: {
        redis: redisOk ? 'ok' : 'fail',
        subscriber: subscriber ? 'ok' : 'fail',
        draining: this.draining,
      },
    };
  }
}

export const HEALTH_PATHS = new Set(['/livez', '/healthz', '/readyz']);

/** Answers the health paths; everything else goes on. Placed before sessions: no cookie, no Redis. */
export function healthRoutes(health: Health) {
  return async function answerHealth(ctx: Context, next: () => Promise<void>): Promise<void> {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    if (ctx.path === '/livez') {
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { status: 'ok' };
      return;
    }
    if (ctx.path === '/healthz' || ctx.path === '/readyz') {
      const report = health.report();
      ctx.set('Cache-Control', 'no-store');
      ctx.status = report.status === 'ok' ? 200 : 503;
      ctx.body = report;
      return;
    }
    return next();
  };
}
