// The ARIA live region: says state changes (a service going down, the connection dropping) without
// flooding a screen reader. Changes that arrive close together are said as one sentence.
import type { Announcement } from '../state/dashboard.ts';

/** A live region re-read more often than this is noise. */
const MIN_INTERVAL_MS = 2000;
const MAX_LISTED = 3;

export class Announcer {
  private lastSeq = 0;
  private pending: string[] = [];
  private lastSaidAt = -Infinity;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly region: HTMLElement) {}

  render(state: { readonly announcements: readonly Announcement[] }): void {
    for (const announcement of state.announcements) {
      if (announcement.seq <= this.lastSeq) continue;
      this.lastSeq = announcement.seq;
      this.pending.push(announcement.text);
    }
    if (this.pending.length > 0 && this.timer === undefined) {
      const wait = Math.max(0, this.lastSaidAt + MIN_INTERVAL_MS - performance.now());
      this.timer = setTimeout(() => this.say(), wait);
    }
  }

  private say(): void {
    this.timer = undefined;
    const texts = this.pending;
    this.pending = [];
    if (texts.length === 0) return;
    const listed = texts.slice(0, MAX_LISTED).join('; ');
    const more = texts.length - MAX_LISTED;
    this.region.textContent = more > 0 ? `${listed}; and ${more} more changes` : listed;
    this.lastSaidAt = performance.now();
  }
}
