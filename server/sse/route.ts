// `GET /events` (docs/architecture.md, "Light connections"): Koa authenticates and validates the request,
// then the stream leaves Koa. `acceptStream` (the route) checks the query, the boards asked for against
// the ones the user may see (docs/events.md, "Boards"), the resume cursor and the stream limit;
// `openAcceptedStreams`, mounted outside the session middleware, writes the headers itself once
// koa-session has set its rolling cookie (writing them inside it fails with ERR_HTTP_HEADERS_SENT), and
// hands the raw response to an `SseConnection`. Nothing of Koa, the session or a stream transform stays
// referenced by a live stream.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { parse as parseQuery, type ParsedUrlQuery } from 'node:querystring';
import type { Context, Next } from 'koa';
import { boardSchema, MAX_BOARDS_PER_STREAM } from '../../shared/boards.ts';
import { parseCursor, type Cursor } from '../../shared/cursor.ts';
import { topicOf } from '../../shared/events.ts';
import type { BoardUser } from '../auth/boards.ts';
import { rawHeader, type StreamIdentity } from '../auth/stream-auth.ts';
import type { StreamQuota } from '../auth/stream-quota.ts';
import { AppError, UnauthorizedError, ValidationError } from '../http/errors.ts';
import { documentOnlyHeaderNames, streamHeadersOf } from '../http/security-headers.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics/worker-metrics.ts';
import { SseConnection } from './connection.ts';
import { ReplayGate } from './replay-gate.ts';
import type { EventLogReader } from './delivery.ts';
import { encodeComment, encodeEventBody, encodeReset, encodeRetry } from './frame.ts';
import type { Hub } from './hub.ts';
import { ALL_TOPICS, parseTopics, type TopicFilter } from './topics.ts';

export interface EventsRouteOptions {
  hub: Hub;
  /** Where missed events are replayed from. */
  eventLog: EventLogReader;
  /**
   * Gives the hub a starting position for boards this worker has not streamed yet (the bus's `follow`),
   * so every stream's cursor names each of its boards.
   */
  followBoards: (boards: readonly string[]) => Promise<void>;
  /**
   * The boards the user may see, sorted or not (docs/security.md, "Boards and access"): for an admin
   * every existing board, for others the granted ones that exist.
   */
  visibleBoards: (user: BoardUser) => Promise<Iterable<string>>;
  /**
   * Whether the user may read a board asked for that `visibleBoards` did not list (a board created a
   * moment ago on another worker is looked up again); throws the 403 / 404 answer when not.
   */
  requireBoard: (user: BoardUser, board: string) => Promise<void>;
  metrics: Metrics;
  log: Logger;
  retryMs: number;
  maxBufferBytes: number;
  /**
   * Who is asking (filled by the auth layer; undefined answers 401); streams are tagged with the session
   * handle so logout can close them.
   */
  identify: (ctx: Context) => StreamIdentity | undefined;
  /** Counts streams per session across the installation (server/auth/stream-quota.ts); unlimited if unset. */
  streamQuota?: Pick<StreamQuota, 'admit'>;
}

/** A `GET /events` as the route checks it, from Koa's context or straight from Node's request. */
interface StreamRequest {
  query: ParsedUrlQuery;
  lastEventId: string;
  identity: StreamIdentity;
  response: ServerResponse;
}

/** What the route accepted, kept until the middleware chain has unwound. */
interface AcceptedStream {
  topics: TopicFilter;
  /** Sorted. */
  boards: readonly string[];
  since: Cursor | undefined;
  sessionHandle?: string;
  userName: string;
}

export interface EventsRoute {
  /** The `GET /events` handler: validates, authorises and marks the request as a stream. */
  acceptStream(ctx: Context): Promise<void>;
  /** Middleware outside the session middleware: opens the streams `acceptStream` marked. */
  openAcceptedStreams(ctx: Context, next: Next): Promise<void>;
  /**
   * The fast path (docs/architecture.md, "Stream fast path"): checks and opens a `GET /events` whose
   * requester the caller authenticated from Node's request, without Koa. `headers` are the security
   * headers. Resolves false, having written nothing, when the request needs the Koa path's answer (an
   * invalid query, a board refused): the caller hands it to Koa, which checks it again and answers.
   */
  openDirect(
    req: IncomingMessage,
    res: ServerResponse,
    identity: StreamIdentity,
    headers: OutgoingHttpHeaders,
  ): Promise<boolean>;
}

/**
 * Picks the resume cursor (docs/events.md, "Resume"): the Last-Event-ID header wins over `?since=` (the
 * browser sets it on reconnect). A bare stream id is `main`'s.
 */
function resumeCursor(request: StreamRequest): Cursor | undefined {
  const header = request.lastEventId.trim();
  const query = typeof request.query.since === 'string' ? request.query.since.trim() : '';
  const value = header || query;
  if (!value) return undefined;
  const parsed = parseCursor(value);
  if (!parsed.ok) throw new ValidationError(parsed.message, 'since');
  return parsed.value;
}

/** The `?boards=` list, validated, without repeats and sorted; undefined when the query names none. */
function askedBoards(query: ParsedUrlQuery): string[] | undefined {
  const raw = query.boards;
  if (raw === undefined) return undefined;
  const items = (Array.isArray(raw) ? raw.join(',') : raw)
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
  if (items.length === 0) throw new ValidationError('boards: name at least one board', 'boards');
  for (const item of items) {
    if (!boardSchema.safeParse(item).success) {
      throw new ValidationError(
        `boards: "${item.slice(0, 64)}" is not a board name (1..64 of a-z 0-9 -)`,
        'boards',
      );
    }
  }
  const boards = [...new Set(items)].sort();
  if (boards.length > MAX_BOARDS_PER_STREAM) {
    throw new ValidationError(`boards: at most ${MAX_BOARDS_PER_STREAM} boards per stream`, 'boards');
  }
  return boards;
}

/** Events replayed from memory per write, at most. */
const MEMORY_REPLAY_SLICE = 128;

/** Retry between 1x and 1.5x the base, so a reload's reconnects do not arrive in one burst. */
function jitteredRetry(baseMs: number): number {
  return baseMs + Math.floor(Math.random() * baseMs * 0.5);
}

/**
 * Koa registers its error handler on the response with on-finished, and that closure holds the request's
 * context for as long as the response lives: for a stream, hours. Once the stream has left Koa there is
 * nothing for that handler to report (a client disconnect is the normal end), so the queue is emptied,
 * and the four listeners on-finished put on the response and its socket (ee-first's `onevent`, with
 * their closures, about 1 KB per idle stream) are taken off.
 */
function releaseKoaContext(res: ServerResponse): void {
  const attached: unknown = Reflect.get(res, '__onFinished');
  const queue: unknown = typeof attached === 'function' ? Reflect.get(attached, 'queue') : undefined;
  if (!Array.isArray(queue)) return;
  queue.length = 0;
  const removeOnFinished = (emitter: NodeJS.EventEmitter | null, events: readonly string[]) => {
    for (const event of events) {
      for (const listener of emitter?.listeners(event) ?? []) {
        if (listener.name === 'onevent') emitter?.off(event, listener as (...args: unknown[]) => void);
      }
    }
  };
  removeOnFinished(res, ['end', 'finish']);
  removeOnFinished(res.socket, ['error', 'close']);
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
 * One empty list for every open stream's `rawHeaders` and `rawTrailers` (an empty array each is 32 bytes
 * per idle stream). Node only ever replaces these lists, never appends to them; frozen, so a release that
 * did would throw rather than share one stream's headers with another.
 */
const NO_HEADER_LINES: readonly string[] = Object.freeze([]);

/** The symbol of a Node-internal field, found by its description on the first object that has it. */
function internalSymbol(description: string): (target: object) => symbol | undefined {
  let found: symbol | undefined;
  return (target) =>
    (found ??= Object.getOwnPropertySymbols(target).find((symbol) => symbol.description === description));
}

const kHeadersOf = internalSymbol('kHeaders');

/**
 * Node keeps the request's header list (`rawHeaders`, the strings of every header: the cookie, the
 * resume cursor) and the object `req.headers` built from it for as long as the connection lives, though
 * nothing reads them once a stream is open (its response carries no request data, and the socket is never
 * reused: `Connection: close`). Both are emptied, and the (empty) trailer list shares the same empty list;
 * a later `req.headers` would give `{}`.
 */
function releaseRequestHeaders(req: IncomingMessage): void {
  Reflect.set(req, 'rawHeaders', NO_HEADER_LINES);
  if (req.rawTrailers.length === 0) Reflect.set(req, 'rawTrailers', NO_HEADER_LINES);
  const headers = kHeadersOf(req);
  if (headers !== undefined) Reflect.set(req, headers, null);
}

/** The preamble's comment, after the jittered `retry:`; the same bytes for every stream. */
const STREAM_COMMENT = encodeComment('pulseboard stream');

/**
 * A stream's response headers: of `headers` (the security headers, and on the Koa path the session
 * cookie) those that act on a stream (docs/security.md, "Security headers"), and the SSE ones.
 */
function streamResponseHeaders(headers: OutgoingHttpHeaders, req: IncomingMessage): OutgoingHttpHeaders {
  return {
    ...streamHeadersOf(headers),
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    'X-Accel-Buffering': 'no',
    // A reconnect during a reload must reach a live worker, not the draining one's kept-alive socket.
    ...(req.httpVersionMajor === 1 ? { Connection: 'close' } : {}),
  };
}

/** What `_header` holds once the header block is on the wire: Node only tests it for truth from then on. */
const HEADER_SENT = 'sent';

/**
 * Node keeps the response's header block for the response's life (`_header`, built by `+=` per header:
 * ~60 cons strings with the security headers, 1-2 KB per idle stream in heap snapshots), though once it
 * is written (`_headerSent`) it is only read as a truth value (`headersSent`, `end`). It is replaced by a
 * shared short string; a release of Node that kept using it would still see a truthy string.
 */
function releaseHeaderBlock(res: ServerResponse): void {
  if (Reflect.get(res, '_headerSent') === true && typeof Reflect.get(res, '_header') === 'string') {
    Reflect.set(res, '_header', HEADER_SENT);
  }
}

export function eventsRoute(options: EventsRouteOptions): EventsRoute {
  const { hub, eventLog, metrics, log } = options;
  const replayGate = new ReplayGate();
  const acceptedByContext = new WeakMap<Context, AcceptedStream>();

  /** The boards of the stream: the ones asked for, each visible to the user, or every visible one. */
  async function streamBoards(request: StreamRequest): Promise<string[]> {
    const { user } = request.identity;
    const asked = askedBoards(request.query);
    const visible = await options.visibleBoards(user);
    if (asked === undefined) {
      const all = [...new Set(visible)].sort();
      if (all.length > MAX_BOARDS_PER_STREAM) {
        throw new ValidationError(
          `boards: you may see ${all.length} boards, more than one stream carries (${MAX_BOARDS_PER_STREAM}): name them with ?boards=`,
          'boards',
        );
      }
      if (all.length === 0) {
        throw new AppError(403, 'forbidden_board', 'you may see no board', { field: 'board' });
      }
      return all;
    }
    const allowed = new Set(visible);
    for (const board of asked) if (!allowed.has(board)) await options.requireBoard(user, board);
    return asked;
  }

  /**
   * Replays what the client missed, board by board, then releases the live events held meanwhile
   * (docs/architecture.md, "Cursors only while catching up").
   */
  async function replayInto(connection: SseConnection, since: Cursor): Promise<void> {
    // The client left while its replay waited for a turn.
    if (connection.closed) return;
    for (const board of connection.boards) {
      const afterId = since.get(board);
      // Not named by the cursor (starts live), or taken out of the stream meanwhile.
      if (afterId === undefined || !connection.boards.includes(board)) continue;
      const recent = hub.recentAfter(board, afterId);
      if (recent !== undefined) {
        // Kept in memory (docs/architecture.md, "Replays from memory"): the bodies the hub encoded, a
        // write per slice of them, at the client's pace.
        const { topics } = connection;
        const matching =
          topics === ALL_TOPICS ? recent : recent.filter((event) => topics.matches(event.topic));
        // A slice stays under a quarter of the limit, so it fits next to the half `waitForRoom` leaves.
        const sliceBytes = options.maxBufferBytes / 4;
        let from = 0;
        while (from < matching.length) {
          if (connection.pendingBytes > options.maxBufferBytes / 2) await connection.waitForRoom();
          if (connection.closed || !connection.boards.includes(board)) break;
          let to = from + 1;
          let bytes = matching[from]?.body.length ?? 0;
          while (to < matching.length && to - from < MEMORY_REPLAY_SLICE) {
            bytes += matching[to]?.body.length ?? 0;
            if (bytes > sliceBytes) break;
            to += 1;
          }
          connection.replayBatch(board, matching.slice(from, to));
          from = to;
        }
        metrics.replays.inc({ kind: 'memory' });
        if (connection.closed) return;
        continue;
      }
      try {
        const outcome = await eventLog.replaySince(board, afterId, async (events) => {
          for (const event of events) {
            if (!connection.topics.matches(topicOf(event))) continue;
            await connection.waitForRoom();
            if (connection.closed || !connection.boards.includes(board)) return false;
            connection.replay(board, event.id, encodeEventBody(event));
          }
          return !connection.closed;
        });
        if (outcome.kind === 'trimmed' || outcome.kind === 'ahead') {
          // The client's state of this board cannot be completed from the log: it refetches the board's
          // snapshot. An id the log never issued must not hold back live events either.
          if (outcome.kind === 'ahead') connection.forgetBoard(board);
          connection.write(encodeReset(outcome.kind === 'trimmed' ? 'history-trimmed' : 'unknown-id', board));
          metrics.resets.inc();
        } else if (outcome.kind === 'replayed') {
          metrics.replays.inc({ kind: 'client' });
        }
      } catch (error) {
        // Redis is away: close so the client retries with the same Last-Event-ID instead of missing events.
        log.warn({ err: error, board }, 'replay failed; closing the stream');
        connection.close('error');
        return;
      }
      if (connection.closed) return;
    }
    connection.endReplay(hub.fanOutPositions());
  }

  /**
   * The fast path's response headers, built once per security-header set it passes (one for HTTP, one for
   * HTTPS) instead of once per stream (docs/performance.md, "Connection setup").
   */
  const fastPathHeaders = new WeakMap<OutgoingHttpHeaders, OutgoingHttpHeaders>();
  function fastPathHeadersOf(req: IncomingMessage, headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
    if (req.httpVersionMajor !== 1) return streamResponseHeaders(headers, req);
    let built = fastPathHeaders.get(headers);
    if (built === undefined) fastPathHeaders.set(headers, (built = streamResponseHeaders(headers, req)));
    return built;
  }

  /**
   * Writes the headers (`streamResponseHeaders`) and hands the response to an `SseConnection`. No TCP
   * keep-alive probes: heartbeats write to every idle stream every HEARTBEAT_MS, far inside the kernel's
   * first probe (2 h by default), so the probes never ran; the option cost a system call per stream.
   */
  function open(
    req: IncomingMessage,
    res: ServerResponse,
    stream: AcceptedStream,
    responseHeaders: OutgoingHttpHeaders,
  ): void {
    // The client left while it was being authenticated.
    if (req.socket.destroyed || res.destroyed) return;
    req.socket.setTimeout(0);
    req.socket.setNoDelay(true);
    res.writeHead(200, responseHeaders);
    const connection = new SseConnection({
      topics: stream.topics,
      boards: stream.boards,
      maxBufferBytes: options.maxBufferBytes,
      response: res,
      ...(stream.sessionHandle === undefined ? {} : { sessionHandle: stream.sessionHandle }),
      userName: stream.userName,
    });
    connection.write(Buffer.concat([encodeRetry(jitteredRetry(options.retryMs)), STREAM_COMMENT]));
    releaseHeaderBlock(res);
    releaseRequestHeaders(req);
    // Held before the hub can deliver anything, so replayed and live events keep id order. Boards the
    // cursor does not name start live, at the worker's position.
    const { since } = stream;
    if (since !== undefined) connection.beginReplay(since, hub.fanOutPositions());
    hub.add(connection);
    // Live events are held from now on; the replay itself waits for a turn (bounded memory in a storm).
    if (since !== undefined) void replayGate.run(() => replayInto(connection, since));
  }

  /** Checks a stream request: its query, resume cursor and boards. */
  async function check(request: StreamRequest): Promise<Omit<AcceptedStream, 'sessionHandle' | 'userName'>> {
    const topics = parseTopics(request.query.topics);
    const since = resumeCursor(request);
    const boards = await streamBoards(request);
    return { topics, boards, since };
  }

  /** Counts the stream under MAX_STREAMS_PER_SESSION across every worker, until its response closes (or 429). */
  async function admit(request: StreamRequest): Promise<void> {
    const { sessionHandle } = request.identity;
    if (sessionHandle !== undefined) await options.streamQuota?.admit(sessionHandle, request.response);
  }

  function accepted(
    request: StreamRequest,
    checked: Omit<AcceptedStream, 'sessionHandle' | 'userName'>,
  ): AcceptedStream {
    const { sessionHandle, user } = request.identity;
    return { ...checked, ...(sessionHandle === undefined ? {} : { sessionHandle }), userName: user.name };
  }

  return {
    async acceptStream(ctx) {
      const identity = options.identify(ctx);
      if (identity === undefined) throw new UnauthorizedError();
      const request: StreamRequest = {
        query: ctx.query,
        lastEventId: ctx.get('Last-Event-ID'),
        identity,
        response: ctx.res,
      };
      const checked = await check(request);
      if (ctx.method === 'HEAD') {
        // Checked like GET (401/403/400 alike), answered with the stream's headers and no stream: Node
        // sends a HEAD response's headers only when it ends, so a stream would leave the client waiting
        // while it held a stream slot and a hub entry.
        ctx.status = 200;
        ctx.type = 'text/event-stream; charset=utf-8';
        ctx.set('Cache-Control', 'no-cache, no-transform');
        for (const name of documentOnlyHeaderNames()) ctx.remove(name);
        return;
      }
      await admit(request);
      await options.followBoards(checked.boards);
      ctx.status = 200;
      ctx.respond = false;
      acceptedByContext.set(ctx, accepted(request, checked));
    },

    async openAcceptedStreams(ctx, next) {
      await next();
      const stream = acceptedByContext.get(ctx);
      if (stream === undefined) return;
      acceptedByContext.delete(ctx);
      const { req, res } = ctx;
      // Security headers and the session cookie were set on `res` by helmet and koa-session.
      const headers = takeOutgoingHeaders(res);
      open(req, res, stream, streamResponseHeaders(headers, req));
      releaseKoaContext(res);
    },

    async openDirect(req, res, identity, headers) {
      const url = req.url ?? '';
      const mark = url.indexOf('?');
      const request: StreamRequest = {
        // As Koa parses `ctx.query`.
        query: mark === -1 ? {} : parseQuery(url.slice(mark + 1)),
        lastEventId: rawHeader(req, 'last-event-id'),
        identity,
        response: res,
      };
      let checked;
      try {
        checked = await check(request);
      } catch {
        return false;
      }
      // Errors from here on are Koa's to answer too (Redis away while following, a refused quota). The
      // quota's decision is taken last, so Koa's path finds it unused when following failed.
      try {
        await options.followBoards(checked.boards);
        await admit(request);
      } catch {
        return false;
      }
      open(req, res, accepted(request, checked), fastPathHeadersOf(req, headers));
      return true;
    },
  };
}
