// Health (docs/design.md, "Health, metrics, logs"): /livez answers while the process does; /healthz and /readyz
// are 200 only when Redis commands and the subscriber are up, the topology serves this worker's boards
// (on Redis Cluster: every slot of them has an online primary, docs/operations.md "Health on Cluster and
// Sentinel") and the worker is not draining. A background check keeps the state, so a poll never costs a
// Redis round trip.
import type { Context } from 'koa';
import { Gauge } from 'prom-client';
import type { Metrics } from '../metrics/worker-metrics.ts';
import type { RedisClient } from '../redis.ts';
import type { TopologyReport } from '../redis/cluster-health.ts';

export interface HealthOptions {
  redis: RedisClient;
  /** Whether the subscriber is connected and live (no gap fill running). */
  subscriberLive: () => boolean;
  metrics: Metrics;
  /** Period of the background Redis check. Default 1000 ms. */
  intervalMs?: number;
  /** A PING slower than this fails the check. Default 1000 ms. */
  timeoutMs?: number;
  /** The topology's own check (Redis Cluster: the slots of the boards served); absent: always ok. */
  topology?: () => Promise<TopologyReport>;
  /** `standalone`, `sentinel` or `cluster`, shown in the body. */
  topologyKind?: string;
  /**
   * Boards whose stream is held for a gap fill (Redis Cluster: their shard's connection dropped, e.g. a
   * failover). Given, a held board makes the worker not ready for that board only (`/readyz?board=`), and
   * `subscriberLive` says only whether the subscriber is connected: one shard's failover must not take
   * every host out of the balancer (docs/scaling.md, "What a failover costs").
   */
  heldBoards?: () => readonly string[];
}

export interface HealthReport {
  status: 'ok' | 'unavailable';
  checks: {
    redis: 'ok' | 'fail';
    subscriber: 'ok' | 'fail';
    draining: boolean;
    /** `degraded`: some boards' shards have no primary (those boards are not ready, the rest are). */
    topology?: { kind: string; status: 'ok' | 'degraded' | 'fail'; failedBoards?: string[]; reason?: string };
  };
}

/** Topology checks that may fail in a row (a node busy failing over) before readiness drops. */
const TOPOLOGY_ERRORS_TOLERATED = 2;

export class Health {
  private readonly options: HealthOptions;
  private redisOk = false;
  private topologyReport: TopologyReport = { ok: true, failedBoards: [], failedSlots: 0 };
  private topologyErrors = 0;
  private readonly failedSlots: Gauge | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** The check running now, if any: a slow Redis must not stack one PING per interval. */
  private running: Promise<void> | undefined;
  draining = false;

  constructor(options: HealthOptions) {
    this.options = options;
    if (options.topology) {
      this.failedSlots =
        (options.metrics.registry.getSingleMetric('pulseboard_redis_failed_slots') as Gauge | undefined) ??
        new Gauge({
          name: 'pulseboard_redis_failed_slots',
          help: 'Redis Cluster slots of the boards this worker serves that have no online primary',
          registers: [options.metrics.registry],
        });
    }
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
    if (ok && this.options.topology) await this.checkTopology(this.options.topology);
    metrics.redisConnected.set({ connection: 'commands' }, ok ? 1 : 0);
    metrics.redisConnected.set({ connection: 'subscriber' }, this.options.subscriberLive() ? 1 : 0);
  }

  private async checkTopology(check: () => Promise<TopologyReport>): Promise<void> {
    try {
      this.topologyReport = await check();
      this.topologyErrors = 0;
    } catch (error) {
      this.topologyErrors += 1;
      if (this.topologyErrors > TOPOLOGY_ERRORS_TOLERATED) {
        const reason = `cannot read the Redis topology: ${error instanceof Error ? error.message : String(error)}`;
        this.topologyReport = { ...this.topologyReport, ok: false, reason };
      }
    }
    this.failedSlots?.set(this.topologyReport.failedSlots);
  }

  /**
   * The report; with `board`, readiness for that board: also not ready while its shard has no primary
   * (`/readyz?board=<name>`).
   */
  report(board?: string): HealthReport {
    const subscriber = this.options.subscriberLive();
    // The last PING and the connection's own state: a dropped connection fails at once, not a second later.
    const redisOk = this.redisOk && this.options.redis.isReady;
    const { reason } = this.topologyReport;
    const held = this.options.heldBoards?.() ?? [];
    const failedBoards =
      held.length === 0
        ? this.topologyReport.failedBoards
        : [...new Set([...this.topologyReport.failedBoards, ...held])];
    const topologyOk = this.topologyReport.ok && (board === undefined || !failedBoards.includes(board));
    const ready = redisOk && subscriber && topologyOk && !this.draining;
    const topologyStatus = !this.topologyReport.ok ? 'fail' : failedBoards.length > 0 ? 'degraded' : 'ok';
    return {
      status: ready ? 'ok' : 'unavailable',
      checks: {
        redis: redisOk ? 'ok' : 'fail',
        subscriber: subscriber ? 'ok' : 'fail',
        draining: this.draining,
        ...(this.options.topologyKind === undefined
          ? {}
          : {
              topology: {
                kind: this.options.topologyKind,
                status: topologyStatus,
                ...(failedBoards.length > 0 ? { failedBoards } : {}),
                ...(reason === undefined ? {} : { reason }),
              },
            }),
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
      const board = typeof ctx.query.board === 'string' ? ctx.query.board : undefined;
      const report = health.report(board);
      ctx.set('Cache-Control', 'no-store');
      ctx.status = report.status === 'ok' ? 200 : 503;
      ctx.body = report;
      return;
    }
    return next();
  };
}
