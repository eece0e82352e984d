// Connection caps (docs/security.md, "Hardening"). Every worker
// bounds the sockets it holds in total and per client address; a socket over a cap is answered at once
// with a complete HTTP error (503 for the worker's cap, 429 for one address's) and closed before any
// request is read, instead of being dropped silently (Node's `server.maxConnections`) or held.
import type http from 'node:http';
import type { Socket } from 'node:net';
import { createRateLimitedWarn, type Logger } from '../log.ts';

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
}

export interface ConnectionLimits {
  /** Sockets held now, in total and by address (for tests and metrics). */
  readonly open: number;
  openFrom(address: string): number;
}

/** A complete HTTP/1.1 answer in the JSON error shape (server/http/errors.ts), then the socket closes. */
function refusal(status: 429 | 503, code: string, message: string, retryAfterSeconds: number): string {
  const body = JSON.stringify({ error: { code, message } });
  const reason = status === 429 ? 'Too Many Requests' : 'Service Unavailable';
  return [
    `HTTP/1.1 ${status} ${reason}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `Retry-After: ${retryAfterSeconds}`,
    'Cache-Control: no-store',
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}

/**
 * Puts the caps in front of the HTTP server's own connection handling: sockets within the caps go to it
 * unchanged; others never reach the HTTP parser, so no request of theirs is ever run.
 */
export function limitConnections(server: http.Server, options: ConnectionLimitOptions): ConnectionLimits {
  const retryAfter = options.retryAfterSeconds ?? 5;
  const warn = createRateLimitedWarn(options.log);
  const byAddress = new Map<string, number>();
  let open = 0;
  const httpListeners = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');

  const refuse = (socket: Socket, answer: string) => {
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
      refuse(socket, refusal(503, 'unavailable', 'server busy: too many connections', retryAfter));
      return;
    }
    if (options.maxPerAddress !== undefined && fromAddress >= options.maxPerAddress) {
      warn(
        `per-address:${address}`,
        { address, open: fromAddress, limit: options.maxPerAddress },
        'connection refused: address at MAX_CONNECTIONS_PER_IP',
      );
      refuse(socket, refusal(429, 'rate_limited', 'too many connections from this address', retryAfter));
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
