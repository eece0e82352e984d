// A raw SSE reader over plain http (node:http, one fresh socket): for assertions on what EventSource
// hides (status, wire text, when each id arrived, when the server ended the stream) and for choosing the
// source address (fetch cannot). The full EventSource client is sse-client.ts.
import http from 'node:http';
import { until } from './sse-client.ts';

export interface RawStreamOptions {
  headers?: Record<string, string>;
  /** Source address of the socket (127.0.0.2 is another user than a 127.0.0.1 flood). */
  localAddress?: string;
  /** Sent as Last-Event-ID. */
  lastEventId?: string;
  /**
   * What `ids` records: each frame's `id:` (the stream's resume cursor, e.g. `main:<id>`; the default), or
   * each event's own id, from the envelope in its `data:` (frames without one, such as `reset`, are skipped).
   */
  ids?: 'frame' | 'envelope';
}

export interface RawStream {
  /** Rejects when the request fails (refused, reset before the headers). */
  response: Promise<http.IncomingMessage>;
  status: Promise<number>;
  /** This stream, once the response headers arrived (`await openRawStream(…).opened`); rejects as `response`. */
  opened: Promise<RawStream>;
  /** Everything received so far, as text. */
  text(): string;
  waitForText(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Ids in the order received, and when each arrived (performance.now()). */
  ids: string[];
  arrivedAt: Map<string, number>;
  /** Resolves with performance.now() when the server ends or cuts the stream. */
  ended: Promise<number>;
  close(): void;
}

function frameIdOf(line: string): string | undefined {
  return line.startsWith('id:') ? line.slice(3).trim() : undefined;
}

function envelopeIdOf(line: string): string | undefined {
  if (!line.startsWith('data:')) return undefined;
  try {
    const envelope = JSON.parse(line.slice(5)) as { id?: unknown };
    return typeof envelope.id === 'string' ? envelope.id : undefined;
  } catch {
    return undefined;
  }
}

/** Opens `url` with a GET and records the body as it arrives; never throws (see `status`). */
export function openRawStream(url: string, options: RawStreamOptions = {}): RawStream {
  const ids: string[] = [];
  const arrivedAt = new Map<string, number>();
  let body = '';
  let partialLine = '';
  const request = http.get(url, {
    headers: {
      Accept: 'text/event-stream',
      ...options.headers,
      ...(options.lastEventId ? { 'Last-Event-ID': options.lastEventId } : {}),
    },
    ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    agent: false,
  });
  const response = new Promise<http.IncomingMessage>((resolve, reject) => {
    request.once('error', reject);
    request.once('response', resolve);
  });
  const ended = new Promise<number>((resolve) => {
    request.once('error', () => resolve(performance.now()));
    request.once('response', (incoming) => {
      incoming.setEncoding('utf8');
      incoming.on('error', () => undefined);
      incoming.on('data', (chunk: string) => {
        const now = performance.now();
        body += chunk;
        const lines = (partialLine + chunk).split('\n');
        partialLine = lines.pop() ?? '';
        for (const line of lines) {
          const id = options.ids === 'envelope' ? envelopeIdOf(line) : frameIdOf(line);
          if (id === undefined) continue;
          ids.push(id);
          arrivedAt.set(id, now);
        }
      });
      incoming.once('end', () => resolve(performance.now()));
      incoming.once('close', () => resolve(performance.now()));
    });
  });
  const stream: RawStream = {
    response,
    status: response.then((incoming) => incoming.statusCode ?? 0),
    opened: response.then(() => stream),
    text: () => body,
    waitForText: (pattern, timeoutMs = 5000) =>
      until(() => pattern.test(body), timeoutMs, `stream text matching ${pattern}`),
    ids,
    arrivedAt,
    ended,
    close: () => {
      request.on('error', () => undefined);
      request.destroy();
    },
  };
  // Not every caller awaits `opened`: its rejection is `response`'s (and `status`'s), reported there.
  stream.opened.catch(() => undefined);
  return stream;
}
