// The composition root: builds the Koa app from explicit dependencies. Nothing here opens sockets or reads
// the environment; `startPulseboard` and the tests pass everything in.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import Router from '@koa/router';
import Koa, { type Context } from 'koa';
import compress from 'koa-compress';
import type { Counter } from 'prom-client';
import type { RedisNames } from '../shared/keys.ts';
import type { Sequencer } from '../shared/publisher.ts';
import { boardsRoute, requireBoardAccess } from './api/boards.ts';
import { historyRoute } from './api/history.ts';
import { loginRoute, readLoginBody } from './api/login.ts';
import { publishRoute } from './api/publish.ts';
import { logoutRoute, sessionRoute } from './api/session.ts';
import { snapshotRoute } from './api/snapshot.ts';
import type { BoardRegistry } from './auth/boards.ts';
import { csrfProtection } from './auth/csrf.ts';
import { authGuard, getAuth } from './auth/guard.ts';
import { sessionMiddleware } from './auth/sessions.ts';
import { rawHeader, streamAuthenticator, type StreamAuthenticator } from './auth/stream-auth.ts';
import type { StreamQuota } from './auth/stream-quota.ts';
import { LoginThrottle } from './auth/throttle.ts';
import { TokenStore } from './auth/tokens.ts';
import type { UserStore } from './auth/users.ts';
import { createEventLogReader } from './bus/event-log.ts';
import type { Config } from './config.ts';
import { logRefusedStreams } from './http/connection-limits.ts';
import { errorMiddleware } from './http/errors.ts';
import { healthRoutes, type Health } from './http/health.ts';
import { requestLog } from './http/request-log.ts';
import { securityHeaders, securityHeaderValues } from './http/security-headers.ts';
import { staticFiles } from './http/static-files.ts';
import type { Logger } from './log.ts';
import type { ClusterMetrics } from './metrics/cluster-metrics.ts';
import { metricsRoute } from './metrics/route.ts';
import type { Metrics } from './metrics/worker-metrics.ts';
import { redisOutageAnswer, type RedisClient } from './redis.ts';
import type { Hub } from './sse/hub.ts';
import { eventsRoute, type EventsRoute } from './sse/route.ts';

export interface AppDeps {
  config: Config;
  redis: RedisClient;
  names: RedisNames;
  sequencer: Sequencer;
  hub: Hub;
  health: Health;
  metrics: Metrics;
  /** Cluster-wide aggregation behind GET /metrics. */
  clusterMetrics: ClusterMetrics;
  log: Logger;
  /** Cookie signing keys: the first signs, all verify (server/auth/session-keys.ts). */
  sessionKeys: string[];
  /** Users of the installation (login, session guard). */
  users: UserStore;
  /** This worker's view of the boards that exist, and who may see them (server/auth/boards.ts). */
  boards: BoardRegistry;
  /** Events sequenced by board, shared with ingest (server/bus/ingest-metrics.ts). */
  boardEvents?: Counter<'board'>;
  /** Folder of the bundled client; defaults to build/public. */
  publicDir?: string;
  /** MAX_STREAMS_PER_SESSION across the installation; unlimited streams per session if unset. */
  streamQuota?: StreamQuota;
  /** Gives the hub a position for boards this worker has not streamed yet (EventBus.follow). */
  followBoards: (boards: readonly string[]) => Promise<void>;
  /** Answers /status/* without a session (server/status/, docs/status-pages.md). */
  publicStatus?: Koa.Middleware;
}

/** Koa 3 reports every SSE client disconnect as an error; it is the normal end of a stream. */
function isClientDisconnect(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'EPIPE';
}

function isStreamRequest(ctx: Context): boolean {
  return ctx.method === 'GET' && ctx.path === '/events';
}

export function createApp(deps: AppDeps): Koa {
  const { config, log } = deps;
  // maxIpsCount 1: the client address is the one our proxy appended to X-Forwarded-For, not whatever the
  // client put before it (login throttling keys on it).
  const app = new Koa({ proxy: config.TRUST_PROXY, maxIpsCount: 1 });
  app.keys = [...deps.sessionKeys];
  app.silent = true;
  app.on('error', (error: unknown) => {
    if (isClientDisconnect(error)) return;
    log.error({ err: error }, 'koa error');
  });

  const events = eventsRoute({
    hub: deps.hub,
    eventLog: createEventLogReader(deps.redis, deps.names),
    followBoards: deps.followBoards,
    visibleBoards: (user) => deps.boards.visibleBoards(user),
    requireBoard: (user, board) => requireBoardAccess(deps.boards, user, board),
    metrics: deps.metrics,
    log,
    retryMs: config.SSE_RETRY_MS,
    maxBufferBytes: config.SSE_MAX_BUFFER_BYTES,
    identify: (ctx) => {
      const auth = getAuth(ctx);
      if (auth === undefined) return undefined;
      return { sessionHandle: auth.sessionHandle, user: { ...auth.user, boards: auth.boards } };
    },
    ...(deps.streamQuota ? { streamQuota: deps.streamQuota } : {}),
  });
  const router = new Router();
  router.get('/events', (ctx) => events.acceptStream(ctx));
  router.get(
    '/api/snapshot',
    snapshotRoute({
      redis: deps.redis,
      names: deps.names,
      metricHistoryMax: config.METRIC_HISTORY_MAX,
      registry: deps.boards,
    }),
  );
  router.get('/api/history', historyRoute({ redis: deps.redis, names: deps.names, registry: deps.boards }));
  router.get('/api/boards', boardsRoute({ redis: deps.redis, names: deps.names, registry: deps.boards }));

  const throttle = new LoginThrottle({
    redis: deps.redis,
    names: deps.names,
    maxFailuresPerIp: config.LOGIN_MAX_FAILURES_PER_IP,
    maxFailuresPerUserIp: config.LOGIN_MAX_FAILURES_PER_USER_IP,
    maxSessionsPerUser: config.LOGIN_MAX_SESSIONS_PER_USER,
    windowMs: config.LOGIN_THROTTLE_WINDOW_MS,
  });
  router.post(
    '/api/login',
    readLoginBody,
    loginRoute({ users: deps.users, throttle, metrics: deps.metrics, log }),
  );
  router.post('/api/logout', logoutRoute({ redis: deps.redis, names: deps.names }));
  router.get('/api/session', sessionRoute());
  router.post(
    '/api/publish',
    publishRoute({
      tokens: new TokenStore(deps.redis, deps.names),
      sequencer: deps.sequencer,
      metrics: deps.metrics,
      ...(deps.boardEvents ? { boardEvents: deps.boardEvents } : {}),
    }),
  );

  const loadSession = sessionMiddleware(app, {
    redis: deps.redis,
    names: deps.names,
    ttlMs: config.SESSION_TTL_MS,
    // A stream renews its session only when it was not renewed within the last minute (docs/security.md).
    quietRenewal: isStreamRequest,
  });
  const requireSession = authGuard({ users: deps.users });
  // A stream's user lookup also admits it under MAX_STREAMS_PER_SESSION: one script, one round trip.
  const { streamQuota } = deps;
  const requireStreamSession = streamQuota
    ? authGuard({
        users: deps.users,
        lookupUser: (ctx, session) =>
          streamQuota.admitWithUser(session.handle, ctx.res, deps.users, {
            name: session.fields.user,
            stamp: session.fields.stamp,
          }),
      })
    : requireSession;
  const handleStreamErrors = errorMiddleware(log);
  const answerRedisOutage = redisOutageAnswer();
  // GET /events runs only what a stream needs: errors, then session and guard, with the headers written
  // once koa-session has set its cookie. The request log, compression, /metrics, CSRF (a GET) and the
  // router have nothing to do for a stream, and setup cost is what a reconnect storm pays
  // (docs/architecture.md, "Light connections").
  const logRefusedStream = logRefusedStreams(log, deps.metrics);
  const openStream = (ctx: Context) =>
    logRefusedStream(ctx, () =>
      handleStreamErrors(ctx, () =>
        answerRedisOutage(ctx, () =>
          events.openAcceptedStreams(ctx, () =>
            loadSession(ctx, () => requireStreamSession(ctx, () => events.acceptStream(ctx))),
          ),
        ),
      ),
    );

  // Outermost, so every answer (health, errors, streams) carries the security headers.
  app.use(securityHeaders());
  app.use(healthRoutes(deps.health));
  app.use((ctx, next) => (isStreamRequest(ctx) ? openStream(ctx) : next()));
  app.use(requestLog(log, deps.metrics));
  // JSON only: an SSE stream must never sit in a compressor's buffer (docs/design.md, "Pitfalls of this stack"; /events also opts out).
  app.use(compress({ filter: (type) => /^application\/json\b/.test(type), threshold: 1024 }));
  app.use(errorMiddleware(log));
  // Redis unreachable past the request deadline: 503 + Retry-After instead of a 500 (docs/reliability.md).
  app.use(redisOutageAnswer());
  if (deps.publicStatus) app.use(deps.publicStatus);
  // Sessionless (bearer METRICS_TOKEN), ahead of the routes that need a session.
  app.use(metricsRoute({ cluster: deps.clusterMetrics, token: config.METRICS_TOKEN }));
  // Outside the session middleware, for HEAD /events (GET takes the branch above).
  app.use(events.openAcceptedStreams);
  app.use(loadSession);
  app.use(requireSession);
  app.use(csrfProtection({ trustForwardedHost: config.TRUST_PROXY && config.TRUST_FORWARDED_HOST }));
  app.use(router.routes());
  app.use(router.allowedMethods());
  app.use(staticFiles(deps.publicDir));
  if (streamQuota) {
    const authenticate = streamAuthenticator({
      keys: deps.sessionKeys,
      names: deps.names,
      quota: streamQuota,
      users: deps.users,
      ttlMs: config.SESSION_TTL_MS,
    });
    withStreamFastPath(app, events, authenticate);
  }
  return app;
}

/** Whether Koa would see this request as HTTPS (`ctx.secure`), which decides HSTS. */
function overHttps(req: IncomingMessage, trustProxy: boolean): boolean {
  if ((req.socket as Partial<TLSSocket>).encrypted === true) return true;
  if (!trustProxy) return false;
  const first = rawHeader(req, 'x-forwarded-proto').split(',', 1)[0] ?? '';
  return first.trim().toLowerCase() === 'https';
}

/**
 * The stream fast path (docs/architecture.md, "Stream fast path"): `GET /events` is checked straight from
 * Node's request (server/auth/stream-auth.ts) and, when that decides it, opened without a Koa context;
 * every other request, and every stream request it does not decide, goes to Koa as before. Installed by
 * wrapping `callback()`, the one entry of Node's requests into the app (`listen` uses it too).
 */
function withStreamFastPath(app: Koa, events: EventsRoute, authenticate: StreamAuthenticator): void {
  const headers = { http: securityHeaderValues(false), https: securityHeaderValues(true) };
  const koaCallback = app.callback.bind(app);
  app.callback = () => {
    const handleWithKoa = koaCallback();
    const tryFastPath = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
      let opened = false;
      try {
        const identity = await authenticate(req, res);
        if (identity !== undefined) {
          const secure = overHttps(req, app.proxy);
          opened = await events.openDirect(req, res, identity, secure ? headers.https : headers.http);
        }
      } catch {
        // Redis away or slow: Koa's path asks again and answers (503 + Retry-After).
      }
      if (!opened) await handleWithKoa(req, res);
    };
    return (req, res) => {
      const { url } = req;
      const isStream =
        req.method === 'GET' &&
        url !== undefined &&
        url.startsWith('/events') &&
        (url.length === 7 || url.charCodeAt(7) === 63); /* '?' */
      // The servers are node:http ones (server/pulseboard.ts), never HTTP/2.
      return isStream ? tryFastPath(req as IncomingMessage, res as ServerResponse) : handleWithKoa(req, res);
    };
  };
}
