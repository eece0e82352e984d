// Kiosk mode on a page (docs/dashboard.md, "Kiosk mode"): `<html data-kiosk>` (the stylesheet hides the
// controls and enlarges the type), the screen kept awake where the browser allows (Screen Wake Lock,
// asked again whenever the page is shown, since the browser releases it when the page is hidden), and
// the move to the next stop of the rotation every cycle.
import type { BoardSummary } from '../state/boards.ts';
import { kioskStops, kioskUrl, nextKioskStop, type KioskOptions, type KioskStop } from '../state/kiosk.ts';

export interface KioskPage {
  readonly options: KioskOptions;
  /** This page's stop: its board, or undefined on the overview. */
  readonly current: KioskStop;
  /** The boards the user may see, in the switcher's order; undefined until known. */
  boards(): readonly BoardSummary[] | undefined;
}

/**
 * Keeps the screen on while the page is shown. `data-wake-lock` on `<html>` says how it went: `held`,
 * `released` (the page was hidden; asked again when shown), `refused` (the browser said no: no user
 * gesture, battery saver, a permissions policy) or `unsupported`. Never an error on the page.
 */
function keepScreenAwake(root: Document): void {
  const dataset = root.documentElement.dataset;
  if (!('wakeLock' in navigator) || typeof navigator.wakeLock.request !== 'function') {
    dataset.wakeLock = 'unsupported';
    return;
  }
  let sentinel: WakeLockSentinel | undefined;
  const acquire = async () => {
    if (root.hidden || (sentinel && !sentinel.released)) return;
    try {
      sentinel = await navigator.wakeLock.request('screen');
      dataset.wakeLock = 'held';
      sentinel.addEventListener('release', () => (dataset.wakeLock = 'released'));
    } catch {
      dataset.wakeLock = 'refused';
    }
  };
  root.addEventListener('visibilitychange', () => void acquire());
  void acquire();
}

export function startKiosk(root: Document, page: KioskPage): void {
  root.documentElement.dataset.kiosk = page.options.cycleSeconds > 0 ? 'rotating' : 'fixed';
  keepScreenAwake(root);
  if (page.options.cycleSeconds === 0) return;
  const cycleMs = page.options.cycleSeconds * 1000;
  const move = () => {
    const boards = page.boards();
    // The boards are not known yet (the server did not answer): stay one more cycle.
    if (!boards) {
      setTimeout(move, cycleMs);
      return;
    }
    const stops = kioskStops(
      page.options,
      boards.map((board) => board.name),
    );
    const next = nextKioskStop(stops, page.current);
    if (next === page.current && stops.length <= 1) {
      setTimeout(move, cycleMs);
      return;
    }
    // `replace`: a wall screen's history would otherwise grow by a page every cycle.
    location.replace(kioskUrl(next, page.options));
  };
  setTimeout(move, cycleMs);
}
