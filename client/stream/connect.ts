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
  /** Reopens the stream from its positions (a woken phone's connection may be dead without knowing). */
  reconnect(): void;
  /**
   * The page is being hidden for the back/forward cache (or unloaded): this tab leaves the stream, and
   * holds no connection that would keep the page out of that cache. `subscribe` again to come back.
   */
  suspend(): void;
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
    reconnect: () => hub.reconnect(),
    suspend: () => hub.unsubscribe(subscriber),
    logout: () => hub.logout(),
    close: () => hub.unsubscribe(subscriber),
  };
}

/** A port to the browser's stream worker; undefined when it cannot be started. */
function openWorkerPort(): { worker: SharedWorker; port: MessagePort } | undefined {
  try {
    const worker = new SharedWorker(WORKER_URL, { type: 'module', name: 'pulseboard-stream' });
    return { worker, port: worker.port };
  } catch {
    return undefined;
  }
}

export function connectStream(onMessage: (message: HubMessage) => void): StreamClient {
  if (typeof SharedWorker !== 'function') return connectLocal(onMessage);
  let opened = openWorkerPort();
  if (!opened) return connectLocal(onMessage);
  let fallback: StreamClient | undefined;
  let lastSubscription:
    { boards: readonly BoardSubscription[]; topics: readonly string[] | null } | undefined;
  let port: MessagePort | undefined;
  const post = (message: TabMessage) => port?.postMessage(message);

  /**
   * Talks to the worker through `next`. After `suspend` the old port is dropped, not closed: closing it
   * right after posting `bye` lost the `bye` in Chromium (the worker kept streaming for the page).
   */
  const attach = (worker: SharedWorker, next: MessagePort) => {
    port = next;
    next.addEventListener('message', (event) => {
      if (next !== port) return;
      const parsed = hubMessageSchema.safeParse(event.data);
      if (parsed.success) onMessage(parsed.data);
    });
    // The worker script failed to load or run: carry on with this tab's own stream.
    worker.addEventListener('error', () => {
      if (fallback || next !== port) return;
      fallback = connectLocal(onMessage);
      if (lastSubscription) fallback.subscribe(lastSubscription.boards, lastSubscription.topics);
    });
    next.start();
  };
  attach(opened.worker, opened.port);
  opened = undefined;
  const leave = () => {
    post({ type: 'bye' });
    port = undefined;
  };

  return {
    get mode() {
      return fallback ? 'tab' : 'shared-worker';
    },
    subscribe(boards, topics) {
      lastSubscription = { boards, topics };
      if (fallback) {
        fallback.subscribe(boards, topics);
        return;
      }
      if (!port) {
        // Back from the back/forward cache: the worker may have ended meanwhile; a new port finds it or
        // starts it again.
        const reopened = openWorkerPort();
        if (!reopened) {
          fallback = connectLocal(onMessage);
          fallback.subscribe(boards, topics);
          return;
        }
        attach(reopened.worker, reopened.port);
      }
      post({ type: 'subscribe', boards: [...boards], topics: topics ? [...topics] : null });
    },
    reconnect() {
      if (fallback) fallback.reconnect();
      else post({ type: 'reconnect' });
    },
    suspend() {
      if (fallback) fallback.suspend();
      else leave();
    },
    logout() {
      if (fallback) fallback.logout();
      else post({ type: 'logout' });
    },
    close() {
      fallback?.close();
      leave();
    },
  };
}
