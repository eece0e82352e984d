// The state of a public status page (docs/status-pages.md): the shown services in order and the newest
// report of each. Pure functions, so the rules are tested without a DOM: a snapshot replaces everything,
// a live change applies only when it is newer than what the page has (a late frame never rolls back), and a
// repeated report of the same state keeps the time the state began.
import { compareStreamIds } from '../shared/events.ts';
import {
  overallState,
  type OverallState,
  type PublicSnapshot,
  type PublicStatus,
} from '../shared/status-page.ts';

export interface StatusPageState {
  readonly services: readonly string[];
  readonly statuses: ReadonlyMap<string, PublicStatus>;
}

export function fromSnapshot(snapshot: PublicSnapshot): StatusPageState {
  const shown = new Set(snapshot.services);
  return {
    services: snapshot.services,
    statuses: new Map(
      snapshot.statuses
        .filter((status) => shown.has(status.service))
        .map((status) => [status.service, status]),
    ),
  };
}

/** A snapshot's state, keeping the earlier `since` of each service whose state did not change. */
export function replaceWithSnapshot(previous: StatusPageState, snapshot: PublicSnapshot): StatusPageState {
  const next = fromSnapshot(snapshot);
  const statuses = new Map(next.statuses);
  for (const [service, status] of next.statuses) {
    const known = previous.statuses.get(service);
    if (known && known.state === status.state && known.since < status.since)
      statuses.set(service, { ...status, since: known.since });
  }
  return { services: next.services, statuses };
}

/** The state with `status` applied; the same object when it is not shown or not newer. */
export function applyStatus(state: StatusPageState, status: PublicStatus): StatusPageState {
  if (!state.services.includes(status.service)) return state;
  const known = state.statuses.get(status.service);
  if (known && compareStreamIds(status.id, known.id) <= 0) return state;
  // A repeated report of the same state does not move `since` (as on the dashboard).
  const kept =
    known && known.state === status.state
      ? { ...status, since: Math.min(known.since, status.since) }
      : status;
  const statuses = new Map(state.statuses).set(status.service, kept);
  return { services: state.services, statuses };
}

export function overallOf(state: StatusPageState): OverallState {
  return overallState([...state.statuses.values()].map((status) => status.state));
}

/** `just now`, `12 s ago`, `5 min ago`, `3 h ago`, `2 d ago`. */
export function agoText(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.floor(hours / 24)} d ago`;
}
