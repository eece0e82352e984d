// The stale banner (docs/dashboard.md, "Updated N s ago and the stale banner"): when the stream has
// brought nothing (no event, no heartbeat) for too long, a banner says the page may be out of date and
// since when. Its text is set once when it appears, so the alert is said once, not every second.
import { isStale, type ConnectionView } from '../state/dashboard.ts';
import { formatClock } from '../state/format.ts';
import { setText } from './dom.ts';

export class StaleBanner {
  private shown = false;

  constructor(private readonly banner: HTMLElement) {}

  render(state: ConnectionView): void {
    const stale = isStale(state);
    if (stale === this.shown) return;
    this.shown = stale;
    if (stale) {
      const since = state.lastReceivedAt ?? state.startedAt;
      const what = state.lastReceivedAt === undefined ? 'Nothing received' : 'No update received';
      setText(
        this.banner,
        `Out of date: ${what} from the server since ${formatClock(since)}. What you see may be old; reconnecting…`,
      );
    }
    this.banner.hidden = !stale;
    document.documentElement.toggleAttribute('data-stale', stale);
  }
}
