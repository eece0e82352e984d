// The worker's HTTP server around the Koa app (docs/security.md, "Hardening"; docs/reliability.md,
// "Reloads and shutdown"): deadlines, connection limits, the requests in flight a stop lets finish.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type Koa from 'koa';
import type { Config } from './config.ts';
import { limitConnections } from './http/connection-limits.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics/worker-metrics.ts';

export interface WorkerServer {
  server: http.Server;
  url: string;
  port: number;
  /**
   * How connections reach this worker: `direct`, it accepts them from the listening socket itself (a single
   * process, or cluster workers sharing the socket: NODE_CLUSTER_SCHED_POLICY=none), or `round-robin`, the
   * cluster primary (PM2's daemon) accepts each and hands it over by IPC, Node's default, which made
   * opening a stream about twice as costly (docs/performance.md, "Workers accept their own connections").
   */
  accept: 'direct' | 'round-robin';
  /** Resolves when every request in flight has ended, or after `ms`. */
  drainInFlight(ms: number): Promise<void>;
}

/**
 * A listening server's own socket is a TCP handle; in a round-robin cluster worker it is a stand-in object
 * and connections come from the primary (node's lib/internal/cluster/child.js, `rr`).
 */
function acceptMode(server: http.Server): WorkerServer['accept'] {
  const handle: unknown = Reflect.get(server, '_handle');
  return typeof handle === 'object' && handle !== null && handle.constructor.name === 'TCP'
    ? 'direct'
    : 'round-robin';
}

export async function listen(
  config: Config,
  app: Koa,
  { log, metrics }: { log: Logger; metrics: Metrics },
): Promise<WorkerServer> {
  // Headers and body deadlines, checked every second (Node's default is every 30 s): a slowloris socket
  // is answered 408 and closed within HEADERS_TIMEOUT_MS + 1 s. Streams are not cut: requestTimeout
  // ends when the request is received, not when the response ends (test/server/http/slow-clients.test.ts).
  const handleRequest = app.callback();
  const server = http.createServer(
    {
      headersTimeout: config.HEADERS_TIMEOUT_MS,
      requestTimeout: config.REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: 1000,
    },
    // Koa's handler settles every request itself (errors go to ctx.onerror), so its promise never rejects.
    (request, response) => void handleRequest(request, response),
  );
  // Longer than the usual load-balancer idle timeout (60 s), so the balancer closes idle sockets first.
  server.keepAliveTimeout = 65_000;
  limitConnections(server, {
    maxConnections: config.MAX_CONNECTIONS,
    maxPerAddress: config.TRUST_PROXY ? undefined : config.MAX_CONNECTIONS_PER_IP,
    log,
    metrics,
  });
  // Requests whose response has not closed yet; stop() lets them finish before Redis closes. A stream's
  // response keeps its listeners for the stream's whole life, so every response shares one listener,
  // added with `on` (a response closes once; `once` adds a wrapper and its state per response, and a
  // closure per response would be one more object): ~250 B less per idle stream (docs/performance.md).
  const inFlight = new Set<http.ServerResponse>();
  function leaveInFlight(this: http.ServerResponse): void {
    inFlight.delete(this);
  }
  server.on('request', (_request: http.IncomingMessage, response: http.ServerResponse) => {
    inFlight.add(response);
    response.on('close', leaveInFlight);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.PORT, config.HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? '127.0.0.1' : config.HOST;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    server,
    url,
    port,
    accept: acceptMode(server),
    async drainInFlight(ms) {
      const deadline = Date.now() + ms;
      while (inFlight.size > 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
  };
}
