// Helpers shared by the SSE and bus tests: the log's ids as Redis holds them, and a raw HTTP reader for
// assertions on the wire format (headers, retry, comments) that EventSource hides.
import http from 'node:http';
import type { RedisClient } from '../../../server/redis.ts';
import { redisNames } from '../../../shared/keys.ts';
import { until } from '../../helpers/sse-client.ts';

/** Every id in the log, oldest first (XRANGE), optionally only those after `afterId`. */
export async function logIds(redis: RedisClient, prefix: string, afterId?: string): Promise<string[]> {
  const entries = await redis.xRange(redisNames(prefix).log, afterId ? `(${afterId}` : '-', '+');
  return (entries ?? []).map((entry) => entry.id);
}

export interface RawStream {
  response: http.IncomingMessage;
  /** Everything received so far, as text. */
  text(): string;
  waitForText(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Resolves when the server ends or cuts the stream. */
  ended: Promise<void>;
  close(): void;
}

/** Opens `url` with a plain HTTP GET and records the body as it arrives. */
export async function openRawStream(url: string, headers: Record<string, string> = {}): Promise<RawStream> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { headers: { Accept: 'text/event-stream', ...headers } }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      const ended = new Promise<void>((done) => {
        response.once('end', done);
        response.once('close', done);
        response.once('error', () => done());
      });
      resolve({
        response,
        text: () => body,
        waitForText: (pattern, timeoutMs = 5000) =>
          until(() => pattern.test(body), timeoutMs, `stream text matching ${pattern}`),
        ended,
        close: () => request.destroy(),
      });
    });
    request.once('error', reject);
  });
}
