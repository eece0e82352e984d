// `GET /events` (DESIGN.md, "SSE stream"): headers, a jittered `retry:`, replay from Last-Event-ID or
// `?since=` with live events held and de-duplicated meanwhile, `reset` when the id is older than the log,
// topic filters, and the connection handed to the hub for live fan-out.
import type { Context } from 'koa';
import { streamIdSchema, topicOf } from '../../shared/events.ts';
import type { RedisNames } from '../../shared/keys.ts';
import type { StreamQuota } from '../auth/stream-quota.ts';
import { replayLog } from '../bus/event-log.ts';
import { ValidationError } from '../http/errors.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { RedisClient } from '../redis.ts';
import { SseConnection } from './connection.ts';
import { encodeComment, encodeEvent, encodeReset, encodeRetry } from './frame.ts';
import type { Hub } from './hub.ts';
import { parseTopics } from './topics.ts';

export interface EventsRouteOptions {
  hub: Hub;
  redis: RedisClient;
  names: RedisNames;
  metrics: Metrics;
  log: Logger;
  retryMs: number;
  maxBufferBytes: number;
  /** Who is asking (filled by the auth layer); streams are tagged with it so logout can close them. */
  identify?: (ctx: Context) => { sessionId?: string; userName?: string };
  /** Counts streams per session across the installation (server/auth/stream-quota.ts); unlimited if unset. */
  streamQuota?: Pick<StreamQuota, 'admit'>;
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

export function eventsRoute(options: EventsRouteOptions) {
  const { hub, redis, names, metrics, log } = options;

  /** Replays what the client missed, then releases the live events held meanwhile (DESIGN.md, "Resume"). */
  async function replayInto(connection: SseConnection, since: string): Promise<void> {
    connection.beginReplay();
    try {
      const outcome = await replayLog(redis, names, since, async (events) => {
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
        if (outcome.kind === 'ahead') connection.lastId = undefined;
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

  return async function streamEvents(ctx: Context): Promise<void> {
    const topics = parseTopics(ctx.query.topics);
    const since = resumeId(ctx);
    const identity = options.identify?.(ctx) ?? {};
    const { sessionId } = identity;
    // MAX_STREAMS_PER_SESSION across every worker; the stream counts until its response closes.
    if (sessionId !== undefined) await options.streamQuota?.admit(sessionId, ctx.res);

    const socket = ctx.req.socket;
    socket.setTimeout(0);
    socket.setNoDelay(true);
    socket.setKeepAlive(true);

    ctx.status = 200;
    ctx.type = 'text/event-stream';
    ctx.set('Cache-Control', 'no-cache, no-transform');
    ctx.set('X-Accel-Buffering', 'no');
    // A reconnect during a reload must reach a live worker, not the draining one's kept-alive socket.
    if (ctx.req.httpVersionMajor === 1) ctx.set('Connection', 'close');
    ctx.compress = false;

    const connection = new SseConnection({
      topics,
      maxBufferBytes: options.maxBufferBytes,
      response: ctx.res,
      lastId: since,
      ...identity,
    });
    ctx.body = connection.stream;
    connection.write(encodeRetry(jitteredRetry(options.retryMs)));
    connection.write(encodeComment('pulseboard stream'));
    hub.add(connection);
    if (since !== undefined) void replayInto(connection, since);
  };
}
