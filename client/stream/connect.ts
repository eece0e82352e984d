// The tab's end of the stream: a port to the SharedWorker that holds the browser's one EventSource, so
// the HTTP/1.1 limit of six connections per origin never blanks a seventh tab. Without SharedWorker
// (or when the worker cannot start) the tab runs the same hub itself with its own EventSource.
import { BUILD_ID } from '../build-info.ts';
import { checkAccess } from '../http/api.ts';
import { hubMessageSchema, type BoardSubscription, type HubMessage, type TabMessage } from './protocol.ts';
import { StreamHub, type HubSubscriber } from './stream-hub.ts';

export interface StreamClient {
  /** Which transport carries the stream: shared by the browser's tabs, or this tab's own. */
  readonly mode: 'shared-worker' | 'tab';
  /** This tab's boards (each from its snapshot's id, or from now) and topics; replaces the last call. */
  subscribe(boards: readonly BoardSubscription[], topics: readonly string[] | null): void;
  /** Logged out here: the stream closes and every other tab is told. */
  logout(): void;
  close(): void;
}

/** Versioned, so tabs of an older build never talk to a newer worker (and the reverse). */
const WORKER_URL = `/assets/stream-worker.js?v=${encodeURIComponent(BUILD_ID)}`;

function connectLocal(onMessage: (message: HubMessage) => void): StreamClient {
  const hub = new StreamHub({ openSource: (url) => new EventSource(url), checkAccess });
  const subscriber: HubSubscriber = { send: onMessage };
  return {
    mode: 'tab',
    subscribe: (boards, topics) => hub.subscribe(subscriber, boards, topics),
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
  let lastSubscription:
    { boards: readonly BoardSubscription[]; topics: readonly string[] | null } | undefined;
  const post = (message: TabMessage) => port.postMessage(message);

  port.addEventListener('message', (event) => {
    const parsed = hubMessageSchema.safeParse(event.data);
    if (parsed.success) onMessage(parsed.data);
  });
  // The worker script failed to load or run: carry on with this tab's own stream.
  worker.addEventListener('error', () => {
    if (fallback) return;
    fallback = connectLocal(onMessage);
    if (lastSubscription) fallback.subscribe(lastSubscription.boards, lastSubscription.topics);
  });
  port.start();
  addEventListener('pagehide', () => post({ type: 'bye' }));

  return {
    get mode() {
      return fallback ? 'tab' : 'shared-worker';
    },
    subscribe(boards, topics) {
      lastSubscription = { boards, topics };
      if (fallback) fallback.subscribe(boards, topics);
      else post({ type: 'subscribe', boards: [...boards], topics: topics ? [...topics] : null });
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
