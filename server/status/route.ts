// `GET /status/<board>`, `/status/<board>/embed`, `/status/<board>/events` and `/status/<board>/badge.svg`
// (docs/status-pages.md): answered without a session, before the session middleware. Every request counts
// against its client address's rate (429), a stream against the worker's cap (503); a board that is
// unknown, not public or not a board name gets the same 404, after the same one Redis read, so the
// answer does not tell whether the board exists.
import type { Context, Next } from 'koa';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { boardSchema } from '../../shared/boards.ts';
import { overallState, type PublicSettings, type PublicStatus } from '../../shared/status-page.ts';
import { AppError, MethodNotAllowedError, NotFoundError, RateLimitedError } from '../http/errors.ts';
import { renderBadge } from './badge.ts';
import type { PublicStatusHub } from './hub.ts';
import { NOT_FOUND_PAGE, renderStatusPage } from './page.ts';
import type { PublicSettingsCache } from './settings.ts';

const STATUS_PATH = /^\/status\/([^/]{1,100})(?:\/(embed|events|badge\.svg))?$/;
/** How long a badge may be cached (README images go through caching proxies such as GitHub's camo). */
const BADGE_MAX_AGE_SECONDS = 60;
/** Retry-After of a stream refused for the worker's cap. */
const STREAMS_FULL_RETRY_SECONDS = 10;

export interface StatusRoutesOptions {
  settings: PublicSettingsCache;
  hub: PublicStatusHub;
  readStatuses(board: string, services: readonly string[]): Promise<PublicStatus[]>;
  /** The board's title as the dashboard shows it. */
  boardTitle(board: string): Promise<string>;
  /** Gives the bus a position for the board, so a gap fill after a subscriber reconnect covers it. */
  followBoards(boards: readonly string[]): Promise<void>;
  /** Requests per minute one client address may make to /status/* on one worker. */
  ratePerMinute: number;
  /** Public streams one worker holds. */
  maxStreams: number;
  /** The `retry:` a stream starts with, in ms. */
  retryMs: number;
}

/** 503 for a stream over the worker's cap: a reason and when to try again. */
export class StatusStreamsFullError extends AppError {
  constructor() {
    super(503, 'status_streams_full', 'this server holds as many status streams as it may; try again later', {
      expose: true,
      headers: { 'Retry-After': String(STREAMS_FULL_RETRY_SECONDS) },
    });
  }
}

/** Swaps `frame-ancestors 'none'` for the board's embed origins and drops X-Frame-Options. */
function allowFraming(ctx: Context, origins: readonly string[]): void {
  if (origins.length === 0) return;
  const csp = ctx.response.get('Content-Security-Policy');
  ctx.set(
    'Content-Security-Policy',
    csp.replace(/frame-ancestors [^;]*/, `frame-ancestors ${origins.join(' ')}`),
  );
  ctx.remove('X-Frame-Options');
}

/** RFC 9110 13.1.2: weak comparison against any listed tag, or `*`. */
function matchesEtag(header: string, etag: string): boolean {
  if (header === '') return false;
  return header
    .split(',')
    .map((tag) => tag.trim().replace(/^W\//, ''))
    .some((tag) => tag === '*' || tag === etag);
}

export function statusRoutes(options: StatusRoutesOptions) {
  const limiter = new RateLimiterMemory({ points: options.ratePerMinute, duration: 60 });

  async function limitRate(ctx: Context): Promise<void> {
    try {
      await limiter.consume(ctx.ip || 'unknown');
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      const seconds = Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
      throw new RateLimitedError(
        seconds,
        `too many status page requests from your address (${options.ratePerMinute} a minute); try again in ${seconds} s`,
      );
    }
  }

  async function snapshotOf(board: string, settings: PublicSettings) {
    const statuses = await options.readStatuses(board, settings.services);
    return { services: settings.services, statuses };
  }

  async function page(ctx: Context, board: string, settings: PublicSettings, embed: boolean): Promise<void> {
    const [title, { services, statuses }] = await Promise.all([
      options.boardTitle(board),
      snapshotOf(board, settings),
    ]);
    if (embed) allowFraming(ctx, settings.embedOrigins);
    ctx.set('Cache-Control', 'no-cache');
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = renderStatusPage({ board, title, services, statuses, embed, now: Date.now() });
  }

  async function badge(ctx: Context, board: string, settings: PublicSettings): Promise<void> {
    const { statuses } = await snapshotOf(board, settings);
    const { svg, etag } = renderBadge(overallState(statuses.map((status) => status.state)));
    ctx.set('Cache-Control', `public, max-age=${BADGE_MAX_AGE_SECONDS}`);
    ctx.set('ETag', etag);
    // Other sites show it with <img>; helmet's `same-origin` would have browsers refuse it there.
    ctx.set('Cross-Origin-Resource-Policy', 'cross-origin');
    ctx.type = 'image/svg+xml; charset=utf-8';
    // Koa's `ctx.fresh` says stale for any request with `Cache-Control: no-cache`, which fetch() adds to
    // every conditional request; the origin validating is exactly what such a request asks for.
    if (matchesEtag(ctx.get('If-None-Match'), etag)) {
      ctx.status = 304;
      return;
    }
    ctx.body = svg;
  }

  async function stream(ctx: Context, board: string, settings: PublicSettings): Promise<void> {
    if (options.hub.size >= options.maxStreams) throw new StatusStreamsFullError();
    await options.followBoards([board]);
    const headers = {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      'X-Accel-Buffering': 'no',
    };
    if (ctx.method === 'HEAD') {
      ctx.status = 200;
      ctx.set(headers);
      return;
    }
    const { req, res } = ctx;
    if (req.socket.destroyed || res.destroyed) return;
    ctx.respond = false;
    req.socket.setTimeout(0);
    req.socket.setNoDelay(true);
    req.socket.setKeepAlive(true);
    res.writeHead(200, {
      ...res.getHeaders(),
      ...headers,
      // A reconnect during a reload must reach a live worker, not the draining one's kept-alive socket.
      ...(req.httpVersionMajor === 1 ? { Connection: 'close' } : {}),
    });
    res.write(`retry: ${options.retryMs}\n\n`);
    options.hub.add(res, board, settings);
  }

  return async function serveStatusPages(ctx: Context, next: Next): Promise<void> {
    const match = STATUS_PATH.exec(ctx.path);
    if (!match) return next();
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      ctx.set('Allow', 'GET, HEAD');
      throw new MethodNotAllowedError();
    }
    await limitRate(ctx);
    const kind = match[2] ?? 'page';
    const name = boardSchema.safeParse(match[1]).data;
    const settings = name === undefined ? undefined : await options.settings.get(name);
    if (name === undefined || settings === undefined) {
      if (kind === 'page' || kind === 'embed') {
        ctx.status = 404;
        ctx.type = 'text/html; charset=utf-8';
        ctx.set('Cache-Control', 'no-cache');
        ctx.body = NOT_FOUND_PAGE;
        return;
      }
      throw new NotFoundError();
    }
    if (kind === 'events') return stream(ctx, name, settings);
    if (kind === 'badge.svg') return badge(ctx, name, settings);
    return page(ctx, name, settings, kind === 'embed');
  };
}
