// The composition root: builds the Koa app from explicit dependencies. Nothing here opens sockets or reads
// the environment; `startPulseboard` and the tests pass everything in.
import Router from '@koa/router';
import Koa from 'koa';
import type { RedisNames } from '../shared/keys.ts';
import type { Sequencer } from '../shared/publisher.ts';
import type { Config } from './config.ts';
import { errorMiddleware } from './http/errors.ts';
import { healthRoutes, type Health } from './http/health.ts';
import { requestLog } from './http/request-log.ts';
import { staticFiles } from './http/static-files.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';
import type { RedisClient } from './redis.ts';
import type { Hub } from './sse/hub.ts';
import { eventsRoute } from './sse/route.ts';

export interface AppDeps {
  config: Config;
  redis: RedisClient;
  names: RedisNames;
  sequencer: Sequencer;
  hub: Hub;
  health: Health;
  metrics: Metrics;
  log: Logger;
  /** Folder of the bundled client; defaults to build/public. */
  publicDir?: string;
}

/** Koa 3 reports every SSE client disconnect as an error; it is the normal end of a stream. */
function isClientDisconnect(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'EPIPE';
}

export function createApp(deps: AppDeps): Koa {
  const { config, log } = deps;
  const app = new Koa({ proxy: config.TRUST_PROXY });
  app.silent = true;
  app.on('error', (error: unknown) => {
    if (isClientDisconnect(error)) return;
    log.error({ err: error }, 'koa error');
  });

  const router = new Router();
  router.get(
    '/events',
    eventsRoute({
      hub: deps.hub,
      redis: deps.redis,
      names: deps.names,
      metrics: deps.metrics,
      log,
      retryMs: config.SSE_RETRY_MS,
      maxBufferBytes: config.SSE_MAX_BUFFER_BYTES,
    }),
  );

  app.use(healthRoutes(deps.health));
  app.use(requestLog(log, deps.metrics));
  app.use(errorMiddleware(log));
  app.use(router.routes());
  app.use(router.allowedMethods());
  app.use(staticFiles(deps.publicDir));
  return app;
}
