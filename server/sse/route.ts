// `GET /events` (docs/architecture.md, "Light connections"): Koa authenticates and validates the request,
// then the stream leaves Koa. `acceptStream` (the route) checks the query, the resume id and the stream
// limit; `openAcceptedStreams`, mounted outside the session middleware, writes the headers itself once
// koa-session has set its rolling cookie (writing them inside it fails with ERR_HTTP_HEADERS_SENT), and
// hands the raw response to an `SseConnection`. Nothing of Koa, the session or a stream transform stays
// referenced by a live stream.
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Context, Next } from 'koa';
import { streamIdSchema, topicOf } from '../../shared/events.ts';
import type { StreamQuota } from '../auth/stream-quota.ts';
import { ValidationError } from '../http/errors.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { SseConnection } from './connection.ts';
import type { EventLogReader } from './delivery.ts';
import { encodeComment, encodeEvent, encodeReset, encodeRetry } from './frame.ts';
import type { Hub } from './hub.ts';
import { parseTopics, type TopicFilter } from './topics.ts';

export interface EventsRouteOptions {
  hub: Hub;
  /** Where missed events are replayed from. */
  eventLog: EventLogReader;
  metrics: Metrics;
  log: Logger;
  retryMs: number;
  maxBufferBytes: number;
  /** Who is asking (filled by the auth layer); streams are tagged with it so logout can close them. */
  identify?: (ctx: Context) => { sessionId?: string; userName?: string };
  /** Counts streams per session across the installation (server/auth/stream-quota.ts); unlimited if unset. */
  streamQuota?: Pick<StreamQuota, 'admit'>;
}

/** What the route accepted, kept until the middleware chain has unwound. */
interface AcceptedStream {
  topics: TopicFilter;
  since: string | undefined;
  sessionId?: string;
  userName?: string;
}

export interface EventsRoute {
  /** The `GET /events` handler: validates, authorises and marks the request as a stream. */
  acceptStream(ctx: Context): Promise<void>;
  /** Middleware outside the session middleware: opens the streams `acceptStream` marked. */
  openAcceptedStreams(ctx: Context, next: Next): Promise<void>;
}

/** Picks the resume point: the Last-Event-ID header wins over `?since=` (the browser sets it on reconnect). */
function resumeId(ctx: Context): string | undefined {
  const header = ctx.get('Last-Event-ID').trim();
  const query = typeof ctx.query.since === 'string' ? ctx.query.since.trim() : '';
  const value = header || query;
  if (!value) return undefined;
  if (!streamIdSchema.safeParse(value).success) {
    throw new ValidationError('since: must be a stream id like 1700000000000-0', 'since');
  }
  return value;
}

/** Retry between 1x and 1.5x the base, so a reload's reconnects do not arrive in one burst. */
function jitteredRetry(baseMs: number): number {
  return baseMs + Math.floor(Math.random() * baseMs * 0.5);
}

/**
 * Koa registers its error handler on the response with on-finished, and that closure holds the request's
 * context for as long as the response lives: for a stream, hours. Once the stream has left Koa there is
 * nothing for that handler to report (a client disconnect is the normal end), so the queue is emptied.
 */
function releaseKoaContext(res: ServerResponse): void {
  const attached: unknown = Reflect.get(res, '__onFinished');
  const queue: unknown = typeof attached === 'function' ? Reflect.get(attached, 'queue') : undefined;
  if (Array.isArray(queue)) queue.length = 0;
}

/**
 * Moves the headers set so far (helmet's, koa-session's cookie) out of the response: Node keeps the
 * header map it builds with setHeader for the response's life (~1.5 KB per stream: an array per header),
 * while headers passed to writeHead alone are only serialised. Clearing the map by its symbol is the one
 * way to do that; if a Node release renames it, the map is simply kept.
 */
function takeOutgoingHeaders(res: ServerResponse): OutgoingHttpHeaders {
  const headers = res.getHeaders();
  const map = Object.getOwnPropertySymbols(res).find((symbol) => symbol.description === 'kOutHeaders');
  if (map !== undefined) Reflect.set(res, map, null);
  return headers;
}

/**
 * Node keeps the response's header block for the response's life, built by `+=` per header: a tree of
 * ~60 cons strings with the security headers. A regular-expression test flattens it in place, which
 * frees the tree (about 2 KB per idle stream, measured with heap snapshots).
 */
function flattenHeaderBlock(res: ServerResponse): void {
  const header: unknown = Reflect.get(res, '_header');
  if (typeof header === 'string') /\r\n/.test(header);
}

export function eventsRoute(options: EventsRouteOptions): EventsRoute {
  const { hub, eventLog, metrics, log } = options;
  const accepted = new WeakMap<Context, AcceptedStream>();

  /** Replays what the client missed, then releases the live events held meanwhile (docs/architecture.md). */
  async function replayInto(connection: SseConnection, since: string): Promise<void> {
    try {
      const outcome = await eventLog.replaySince(since, async (events) => {
        for (const event of events) {
          if (!connection.topics.matches(topicOf(event))) continue;
          await connection.waitForRoom();
          if (connection.closed) return false;
          connection.replay(event.id, encodeEvent(event));
        }
        return !connection.closed;
      });
      if (outcome.kind === 'trimmed' || outcome.kind === 'ahead') {
        // The client's state cannot be completed from the log: it refetches the snapshot. An id the log
        // never issued must not hold back live events either.
        if (outcome.kind === 'ahead') connection.forgetCursor();
        connection.write(encodeReset(outcome.kind === 'trimmed' ? 'history-trimmed' : 'unknown-id'));
        metrics.resets.inc();
      } else if (outcome.kind === 'replayed') {
        metrics.replays.inc({ kind: 'client' });
      }
    } catch (error) {
      // Redis is away: close so the client retries with the same Last-Event-ID instead of missing events.
      log.warn({ err: error }, 'replay failed; closing the stream');
      connection.close('error');
      return;
    }
    connection.endReplay();
  }

  function open(ctx: Context, stream: AcceptedStream): void {
    const { req, res } = ctx;
    // The client left while it was being authenticated.
    if (req.socket.destroyed || res.destroyed) return;
    req.socket.setTimeout(0);
    req.socket.setNoDelay(true);
    req.socket.setKeepAlive(true);
    // Security headers and the session cookie were set on `res` by helmet and koa-session.
    res.writeHead(200, {
      ...takeOutgoingHeaders(res),
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      'X-Accel-Buffering': 'no',
      // A reconnect during a reload must reach a live worker, not the draining one's kept-alive socket.
      ...(req.httpVersionMajor === 1 ? { Connection: 'close' } : {}),
    });
    releaseKoaContext(res);
    const connection = new SseConnection({
      topics: stream.topics,
      maxBufferBytes: options.maxBufferBytes,
      response: res,
      lastId: stream.since,
      ...(stream.sessionId === undefined ? {} : { sessionId: stream.sessionId }),
      ...(stream.userName === undefined ? {} : { userName: stream.userName }),
    });
    connection.write(
      Buffer.concat([encodeRetry(jitteredRetry(options.retryMs)), encodeComment('pulseboard stream')]),
    );
    flattenHeaderBlock(res);
    // Held before the hub can deliver anything, so replayed and live events keep id order.
    if (stream.since !== undefined) connection.beginReplay();
    hub.add(connection);
    if (stream.since !== undefined) void replayInto(connection, stream.since);
  }

  return {
    async acceptStream(ctx) {
      const topics = parseTopics(ctx.query.topics);
      const since = resumeId(ctx);
      const identity = options.identify?.(ctx) ?? {};
      const { sessionId } = identity;
      // MAX_STREAMS_PER_SESSION across every worker; the stream counts until its response closes.
      if (sessionId !== undefined) await options.streamQuota?.admit(sessionId, ctx.res);
      ctx.status = 200;
      ctx.respond = false;
      accepted.set(ctx, { topics, since, ...identity });
    },

    async openAcceptedStreams(ctx, next) {
      await next();
      const stream = accepted.get(ctx);
      if (stream === undefined) return;
      accepted.delete(ctx);
      open(ctx, stream);
    },
  };
}
