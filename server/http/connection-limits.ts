// Connection caps (docs/security.md, "Hardening"). Every worker
// bounds the sockets it holds in total and per client address; a socket over a cap is answered at once
// with a complete HTTP error (503 for the worker's cap, 429 for one address's) and closed before any
// request is read, instead of being dropped silently (Node's `server.maxConnections`) or held. Only an
// address past 50 refusals in a second is flooding, and the rest of its sockets that second are closed
// at accept without an answer: answering them would cost the worker's other users more than it tells.
// Every refusal is counted in `pulseboard_connections_refused_total{reason}` (docs/operations.md), and so
// are streams refused by the per-session quota, which this file also writes to the access log.
import type http from 'node:http';
import type { Socket } from 'node:net';
import type { Context, Next } from 'koa';
import { createRateLimitedWarn, type Logger } from '../log.ts';
import type { Metrics } from '../metrics/worker-metrics.ts';

/** The `reason` label of pulseboard_connections_refused_total: a fixed set, never input. */
export type RefusalReason = 'per_ip' | 'global' | 'streams_per_session';

export interface ConnectionLimitOptions {
  /** Open sockets this worker accepts at most (MAX_CONNECTIONS). */
  maxConnections: number;
  /**
   * Open sockets one client address may hold on this worker (MAX_CONNECTIONS_PER_IP); undefined turns the
   * per-address cap off (behind a proxy every socket comes from the proxy: the balancer caps per client).
   */
  maxPerAddress?: number | undefined;
  /** Seconds a refused client is asked to wait (Retry-After). Default 5. */
  retryAfterSeconds?: number;
  log: Logger;
  /** Counts each refusal by reason (pulseboard_connections_refused_total). */
  metrics?: Pick<Metrics, 'connectionsRefused'>;
  /**
   * Refusals answered per address per second (default 50). Past that the address is flooding: its further
   * sockets in that second are closed at accept, unanswered, before Node builds a socket for them.
   */
  answeredRefusalsPerSecond?: number;
}

export interface ConnectionLimits {
  /** Sockets held now, in total and by address (for tests and metrics). */
  readonly open: number;
  openFrom(address: string): number;
}

/** A complete HTTP/1.1 answer in the JSON error shape (server/http/errors.ts), then the socket closes. */
function refusal(status: 429 | 503, code: string, message: string, retryAfterSeconds: number): Buffer {
  const body = JSON.stringify({ error: { code, message } });
  const reason = status === 429 ? 'Too Many Requests' : 'Service Unavailable';
  const answer = [
    `HTTP/1.1 ${status} ${reason}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `Retry-After: ${retryAfterSeconds}`,
    'Cache-Control: no-store',
    'Connection: close',
    '',
    body,
  ].join('\r\n');
  return Buffer.from(answer);
}

/** Refusals of one address within the current one-second window. */
interface RefusalWindow {
  startedAt: number;
  refused: number;
}

/** What Node's net.Server hands a new connection to (lib/net.js `onconnection`); internal, hence checked. */
type OnConnection = (this: unknown, status: number, clientHandle: unknown) => unknown;

/**
 * Installs `shed` in front of Node's own accept callback, once the server listens (in a PM2/cluster worker
 * the handle is the cluster's round-robin one, which calls the same callback). A connection `shed` takes
 * is closed on its raw handle: no net.Socket, no events, no timers, about a third of the CPU of even the
 * cheapest answered refusal (measured: 10,000 connections at 2,500/s, 1.1 s of CPU answered, 0.34 s shed).
 * This reaches into Node's internals (`server._handle.onconnection`, the handle's `getpeername`), where
 * newer Node releases check their own `blockList` option; if they are not there, nothing is installed and
 * every refusal is answered (the `flooding` check then closes the socket Node made instead).
 */
function shedAtAccept(
  server: http.Server,
  shed: (address: string) => boolean,
  /** False while no address was refused in the last second: then a connection costs what it did before. */
  anyRefused: () => boolean,
): void {
  server.once('listening', () => {
    const handle: unknown = Reflect.get(server, '_handle');
    const original: unknown =
      handle && typeof handle === 'object' ? Reflect.get(handle, 'onconnection') : undefined;
    if (typeof original !== 'function') return;
    const accept = original as OnConnection;
    Reflect.set(handle as object, 'onconnection', function (
      this: unknown,
      status: number,
      clientHandle: unknown,
    ) {
      if (status === 0 && anyRefused() && clientHandle && typeof clientHandle === 'object') {
        const getpeername: unknown = Reflect.get(clientHandle, 'getpeername');
        const close: unknown = Reflect.get(clientHandle, 'close');
        if (typeof getpeername === 'function' && typeof close === 'function') {
          const peer: { address?: unknown } = {};
          getpeername.call(clientHandle, peer);
          if (typeof peer.address === 'string' && shed(peer.address)) {
            close.call(clientHandle);
            return undefined;
          }
        }
      }
      return accept.call(this, status, clientHandle);
    } satisfies OnConnection);
  });
}

/**
 * Puts the caps in front of the HTTP server's own connection handling: sockets within the caps go to it
 * unchanged; others never reach the HTTP parser, so no request of theirs is ever run. Refusals are
 * answered (429/503) up to `answeredRefusalsPerSecond` per address; a flood beyond that is shed at accept
 * (docs/reliability.md, "Floods of sockets"): answering 2,500 refusals a second costs the worker's event
 * loop, and so its other users, more than the flood deserves.
 */
export function limitConnections(server: http.Server, options: ConnectionLimitOptions): ConnectionLimits {
  const retryAfter = options.retryAfterSeconds ?? 5;
  // Built once: a flood is refused at the cost of one write and one close per socket.
  const busy = refusal(503, 'unavailable', 'server busy: too many connections', retryAfter);
  const tooMany = refusal(429, 'rate_limited', 'too many connections from this address', retryAfter);
  const counted = options.metrics?.connectionsRefused;
  const warn = createRateLimitedWarn(options.log);
  const answeredPerSecond = options.answeredRefusalsPerSecond ?? 50;
  const byAddress = new Map<string, number>();
  const refusals = new Map<string, RefusalWindow>();
  let lastRefusalAt = Number.NEGATIVE_INFINITY;
  let open = 0;

  /** Notes one refusal of `address`; true once the address is past its answered refusals this second. */
  const flooding = (address: string, now: number): boolean => {
    let window = refusals.get(address);
    if (window === undefined || now - window.startedAt >= 1000) {
      // Bounded: addresses not refused in the last second are forgotten when the map grows.
      if (refusals.size >= 10_000) {
        for (const [key, entry] of refusals) if (now - entry.startedAt >= 1000) refusals.delete(key);
      }
      window = { startedAt: now, refused: 0 };
      refusals.set(address, window);
    }
    window.refused += 1;
    lastRefusalAt = now;
    return window.refused > answeredPerSecond;
  };
  const overAddressCap = (address: string) =>
    options.maxPerAddress !== undefined && (byAddress.get(address) ?? 0) >= options.maxPerAddress;
  shedAtAccept(
    server,
    (address) => {
      if (!overAddressCap(address)) return false;
      const window = refusals.get(address);
      // Only an address already past its answered refusals in the current window is shed unanswered.
      if (window === undefined || performance.now() - window.startedAt >= 1000) return false;
      if (window.refused < answeredPerSecond) return false;
      window.refused += 1;
      counted?.inc({ reason: 'per_ip' });
      return true;
    },
    () => performance.now() - lastRefusalAt < 1000,
  );
  const httpListeners = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');

  const refuse = (socket: Socket, answer: Buffer, reason: RefusalReason) => {
    counted?.inc({ reason });
    socket.on('error', () => undefined); // the client may already be gone
    socket.end(answer);
    // A client that never reads must not keep the refused socket either.
    setTimeout(() => socket.destroy(), 1000).unref();
  };

  /**
   * Every counted socket's close listener (`this` is the socket): one function, not a `once` wrapper and a
   * closure kept for each stream's whole life (docs/performance.md, idle memory). Node keeps the peer
   * address it read on accept, so `remoteAddress` still answers after the close.
   */
  function releaseCount(this: Socket): void {
    const address = this.remoteAddress ?? 'unknown';
    open -= 1;
    const left = (byAddress.get(address) ?? 1) - 1;
    if (left > 0) byAddress.set(address, left);
    else byAddress.delete(address);
  }

  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? 'unknown';
    const fromAddress = byAddress.get(address) ?? 0;
    if (open >= options.maxConnections) {
      warn(
        'max-connections',
        { open, limit: options.maxConnections },
        'connection refused: worker at MAX_CONNECTIONS',
      );
      refuse(socket, busy, 'global');
      return;
    }
    if (options.maxPerAddress !== undefined && fromAddress >= options.maxPerAddress) {
      warn(
        `per-address:${address}`,
        { address, open: fromAddress, limit: options.maxPerAddress },
        'connection refused: address at MAX_CONNECTIONS_PER_IP',
      );
      if (flooding(address, performance.now())) {
        // Past the answered refusals (or Node's accept could not be hooked): close without an answer.
        counted?.inc({ reason: 'per_ip' });
        socket.destroy();
        return;
      }
      refuse(socket, tooMany, 'per_ip');
      return;
    }
    open += 1;
    byAddress.set(address, fromAddress + 1);
    socket.on('close', releaseCount);
    for (const listener of httpListeners) listener.call(server, socket);
  });

  return {
    get open() {
      return open;
    },
    openFrom: (address) => byAddress.get(address) ?? 0,
  };
}

/**
 * Wraps the `GET /events` chain, which skips the request log (docs/architecture.md, "Light connections"):
 * a stream that opens is not logged here (its end is the session's business), but a refused one (401,
 * 400, 429 `too_many_streams`, 503) gets an access-log line like any other request, and a refusal by the
 * per-session quota is counted as `streams_per_session`.
 */
export function logRefusedStreams(log: Logger, metrics: Pick<Metrics, 'connectionsRefused'>) {
  return async function logRefusedStream(ctx: Context, next: Next): Promise<void> {
    const started = process.hrtime.bigint();
    await next();
    if (ctx.status === 200) return;
    const body = ctx.body as { error?: { code?: unknown } } | undefined;
    const code = typeof body?.error?.code === 'string' ? body.error.code : undefined;
    if (code === 'too_many_streams') metrics.connectionsRefused.inc({ reason: 'streams_per_session' });
    const ms = Math.round(Number(process.hrtime.bigint() - started) / 1e6);
    log.info({ method: ctx.method, url: ctx.url, status: ctx.status, code, ms }, 'stream refused');
  };
}
