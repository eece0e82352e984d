// The tab's end of the stream: a port to the SharedWorker that holds the browser's one EventSource, so
// the HTTP/1.1 limit of six connections per origin never blanks a seventh tab. Without SharedWorker
// (or when the worker cannot start) the tab runs the same hub itself with its own EventSource.
import { BUILD_ID } from '../build-info.ts';
import { checkSession } from '../http/api.ts';
import { hubMessageSchema, type HubMessage, type TabMessage } from './protocol.ts';
import { StreamHub, type HubSubscriber } from './stream-hub.ts';

export interface StreamClient {
  /** Which transport carries the stream: shared by the browser's tabs, or this tab's own. */
  readonly mode: 'shared-worker' | 'tab';
  subscribe(topics: readonly string[] | null, since: string): void;
  /** Logged out here: the stream closes and every other tab is told. */
  logout(): void;
  close(): void;
}

/** Versioned, so tabs of an older build never talk to a newer worker (and the reverse). */
const WORKER_URL = `/assets/stream-worker.js?v=${encodeURIComponent(BUILD_ID)}`;

function connectLocal(onMessage: (message: HubMessage) => void): StreamClient {
  const hub = new StreamHub({ openSource: (url) => new EventSource(url), checkSession });
  const subscriber: HubSubscriber = { send: onMessage };
  return {
    mode: 'tab',
    subscribe: (topics, since) => hub.subscribe(subscriber, topics, since),
    logout: () => hub.logout(),
    close: () => hub.unsubscribe(subscriber),
  };
}

export function connectStream(onMessage: (message: HubMessage) => void): StreamClient {
  if (typeof SharedWorker !== 'function') return connectLocal(onMessage);
  let worker: SharedWorker;
  try {
    worker = new SharedWorker(WORKER_URL, { type: 'module', name: 'pulseboard-stream' });
  } catch {
    return connectLocal(onMessage);
  }
  const { port } = worker;
  let fallback: StreamClient | undefined;
  let lastSubscription: { topics: readonly string[] | null; since: string } | undefined;
  const post = (message: TabMessage) => port.postMessage(message);

  port.addEventListener('message', (event) => {
    const parsed = hubMessageSchema.safeParse(event.data);
    if (parsed.success) onMessage(parsed.data);
  });
  // The worker script failed to load or run: carry on with this tab's own stream.
  worker.addEventListener('error', () => {
    if (fallback) return;
    fallback = connectLocal(onMessage);
    if (lastSubscription) fallback.subscribe(lastSubscription.topics, lastSubscription.since);
  });
  port.start();
  addEventListener('pagehide', () => post({ type: 'bye' }));

  return {
    get mode() {
      return fallback ? 'tab' : 'shared-worker';
    },
    subscribe(topics, since) {
      lastSubscription = { topics, since };
      if (fallback) fallback.subscribe(topics, since);
      else post({ type: 'subscribe', topics: topics ? [...topics] : null, since });
    },
    logout() {
      if (fallback) fallback.logout();
      else post({ type: 'logout' });
    },
    close() {
      fallback?.close();
      post({ type: 'bye' });
    },
  };
}
