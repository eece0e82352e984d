// The stream across the page's lifecycle (docs/dashboard.md, "Background tabs, phones and the
// back/forward cache"):
// - `pagehide`: the tab leaves the stream, so no open connection keeps the page out of the back/forward
//   cache (and the shared worker stops carrying its boards);
// - `pageshow` with `persisted` (restored from that cache): the page subscribes again from the last id
//   it has, so the stream replays what it missed;
// - woken up (`resume` after a freeze, `online`, or shown again after the stream went quiet for too
//   long): the stream is reopened from its positions, as a connection that died while the phone slept
//   may still look open.
import type { StreamClient } from './connect.ts';

export interface PageLifecycleOptions {
  stream: StreamClient;
  /** Restored from the back/forward cache: subscribe again from the last id the page has. */
  onRestore(): void;
  /** Whether the page has heard nothing from the stream for too long (then showing it reconnects). */
  isStale(): boolean;
}

export function watchPageLifecycle({ stream, onRestore, isStale }: PageLifecycleOptions): void {
  addEventListener('pagehide', () => stream.suspend());
  addEventListener('pageshow', (event) => {
    if (event.persisted) onRestore();
  });
  document.addEventListener('resume', () => stream.reconnect());
  addEventListener('online', () => stream.reconnect());
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && isStale()) stream.reconnect();
  });
}
