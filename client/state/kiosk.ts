// Kiosk mode (docs/dashboard.md, "Kiosk mode"): `?kiosk=1` on the overview or a board view shows the page
// for a wall screen and moves on to the next stop of a rotation every `cycle` seconds. The rotation is
// `boards` (in that order; default: every board the user may see, in the switcher's order), preceded by
// the overview when the kiosk was started there (`overview=1`, which the overview adds). Pure: the
// URL in, the next URL out.
import { boardSchema } from '../../shared/boards.ts';
import { boardPath } from './boards.ts';

export const KIOSK_PARAM = 'kiosk';
export const DEFAULT_CYCLE_SECONDS = 30;
/** Shorter stops would leave no time to read a board (and reload pages needlessly). */
export const MIN_CYCLE_SECONDS = 5;
const MAX_CYCLE_SECONDS = 86_400;

export interface KioskOptions {
  /** The boards to rotate through, in order; undefined: every board the user may see. */
  readonly boards: readonly string[] | undefined;
  /** Time on each stop; 0: no rotation (the page stays). */
  readonly cycleSeconds: number;
  /** Whether the overview is a stop (before the boards). */
  readonly overview: boolean;
}

/** A stop of the rotation: a board, or undefined for the overview. */
export type KioskStop = string | undefined;

const TRUE_WORDS = new Set(['1', 'true', 'on', 'yes']);

/** Kiosk options from a page's query; undefined when kiosk mode is off. `onOverview`: the page is `/`. */
export function kioskFromQuery(search: string, onOverview: boolean): KioskOptions | undefined {
  const query = new URLSearchParams(search);
  if (!TRUE_WORDS.has((query.get(KIOSK_PARAM) ?? '').toLowerCase())) return undefined;
  const listed = query.get('boards');
  const boards =
    listed === null
      ? undefined
      : [
          ...new Set(
            listed
              .split(',')
              .map((name) => name.trim())
              .filter((name) => boardSchema.safeParse(name).success),
          ),
        ];
  const cycleText = query.get('cycle');
  const cycle = cycleText === null || cycleText.trim() === '' ? NaN : Number(cycleText);
  const cycleSeconds = !Number.isFinite(cycle)
    ? DEFAULT_CYCLE_SECONDS
    : cycle <= 0
      ? 0
      : Math.min(MAX_CYCLE_SECONDS, Math.max(MIN_CYCLE_SECONDS, Math.round(cycle)));
  const overview = onOverview || TRUE_WORDS.has((query.get('overview') ?? '').toLowerCase());
  return { boards: boards && boards.length > 0 ? boards : undefined, cycleSeconds, overview };
}

/** The rotation's stops, given the boards the user may see (in the switcher's order). */
export function kioskStops(options: KioskOptions, visible: readonly string[]): KioskStop[] {
  const boards = options.boards ? options.boards.filter((board) => visible.includes(board)) : visible;
  return options.overview ? [undefined, ...boards] : [...boards];
}

/** The stop after `current` (the first stop when `current` is not one; `current` itself when there is none). */
export function nextKioskStop(stops: readonly KioskStop[], current: KioskStop): KioskStop {
  if (stops.length === 0) return current;
  const at = stops.indexOf(current);
  return stops[(at + 1) % stops.length];
}

/** The URL of a stop, carrying the kiosk options on. */
export function kioskUrl(stop: KioskStop, options: KioskOptions): string {
  const query = new URLSearchParams({ [KIOSK_PARAM]: '1' });
  if (options.boards) query.set('boards', options.boards.join(','));
  query.set('cycle', String(options.cycleSeconds));
  if (options.overview) query.set('overview', '1');
  // `,` reads better in an address bar than %2C, and is safe in a query.
  return `${stop === undefined ? '/' : boardPath(stop)}?${query.toString().replaceAll('%2C', ',')}`;
}
