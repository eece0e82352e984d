// Connection caps (docs/security.md, "Hardening"). Every worker
// bounds the sockets it holds in total and per client address; a socket over a cap is answered at once
// with a complete HTTP error (503 for the worker's cap, 429 for one address's) and closed before any
// request is read, instead of being dropped silently (Node's `server.maxConnections`) or held.
// Every refusal is counted in `pulseboard_connections_refused_total{reason}` (docs/operations.md), and so
// are streams refused by the per-session quota, which this file also writes to the access log.
import type http from 'node:http';
import type { Socket } from 'node:net';
import type { Context, Next } from 'koa';
import { createRateLimitedWarn, type Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';

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

/**
 * Puts the caps in front of the HTTP server's own connection handling: sockets within the caps go to it
 * unchanged; others never reach the HTTP parser, so no request of theirs is ever run.
 */
export function limitConnections(server: http.Server, options: ConnectionLimitOptions): ConnectionLimits {
  const retryAfter = options.retryAfterSeconds ?? 5;
  // Built once: a flood is refused at the cost of one write and one close per socket.
  const busy = refusal(503, 'unavailable', 'server busy: too many connections', retryAfter);
  const tooMany = refusal(429, 'rate_limited', 'too many connections from this address', retryAfter);
  const counted = options.metrics?.connectionsRefused;
  const warn = createRateLimitedWarn(options.log);
  const byAddress = new Map<string, number>();
  let open = 0;
  const httpListeners = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');

  const refuse = (socket: Socket, answer: Buffer, reason: RefusalReason) => {
    counted?.inc({ reason });
    socket.on('error', () => undefined); // the client may already be gone
    socket.end(answer);
    // A client that never reads must not keep the refused socket either.
    setTimeout(() => socket.destroy(), 1000).unref();
  };

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
      refuse(socket, tooMany, 'per_ip');
      return;
    }
    open += 1;
    byAddress.set(address, fromAddress + 1);
    socket.once('close', () => {
      open -= 1;
      const left = (byAddress.get(address) ?? 1) - 1;
      if (left > 0) byAddress.set(address, left);
      else byAddress.delete(address);
    });
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
