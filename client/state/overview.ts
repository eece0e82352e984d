// The board overview's state and its reducer (docs/dashboard.md, "The overview"): the boards the user may
// see with their worst state and counts (from `GET /api/boards`, refetched when a status arrives), the
// connection, and what the live region says. Pure, like the dashboard's reducer; every action carries
// its time.
import type { StatusEnvelope } from '../../shared/events.ts';
import { sortBoards, type BoardSummary } from './boards.ts';
import {
  announce,
  connectionLabel,
  DEFAULT_HEARTBEAT_MS,
  heardFrom,
  type Announcement,
  type ConnectionView,
  type StreamState,
} from './dashboard.ts';

export interface OverviewState extends ConnectionView {
  /** Undefined until the first answer of `GET /api/boards`. */
  readonly boards: readonly BoardSummary[] | undefined;
  readonly announcements: readonly Announcement[];
}

export type OverviewAction =
  | { type: 'boardsLoaded'; boards: readonly BoardSummary[]; now: number }
  | { type: 'boardsRemoved'; boards: readonly string[]; now: number }
  | { type: 'statusesReceived'; statuses: readonly StatusEnvelope[]; now: number }
  | { type: 'streamStateChanged'; state: StreamState; now: number }
  | { type: 'browserOnlineChanged'; online: boolean; now: number }
  | { type: 'streamAlive'; receivedAt: number; heartbeatMs: number | undefined; now: number }
  | { type: 'tick'; now: number };

export const STATE_WORDS: Record<NonNullable<BoardSummary['state']>, string> = {
  ok: 'ok',
  degraded: 'degraded',
  down: 'down',
  maintenance: 'in maintenance',
};

export function initialOverviewState(now: number): OverviewState {
  return {
    stream: { state: 'connecting', since: now },
    browserOnline: true,
    startedAt: now,
    lastReceivedAt: undefined,
    heartbeatMs: DEFAULT_HEARTBEAT_MS,
    now,
    clockOffsetMs: 0,
    lastEventTs: undefined,
    boards: undefined,
    announcements: [],
  };
}

/** "Payments is down", for each board whose worst state changed since the last answer. */
function describeChanges(
  before: readonly BoardSummary[] | undefined,
  after: readonly BoardSummary[],
): string[] {
  if (!before) return [];
  const previous = new Map(before.map((board) => [board.name, board.state]));
  const said: string[] = [];
  for (const board of after) {
    const was = previous.get(board.name);
    if (was === undefined || was === board.state || board.state === null) continue;
    said.push(`${board.title} is ${STATE_WORDS[board.state]}`);
  }
  return said;
}

function withConnection(state: OverviewState, next: OverviewState): OverviewState {
  const after = connectionLabel(next);
  return after === connectionLabel(state)
    ? next
    : { ...next, announcements: announce(next.announcements, [`Connection ${after}`]) };
}

export function reduceOverview(state: OverviewState, action: OverviewAction): OverviewState {
  switch (action.type) {
    case 'boardsLoaded': {
      const boards = sortBoards(action.boards);
      return {
        ...state,
        now: action.now,
        boards,
        announcements: announce(state.announcements, describeChanges(state.boards, boards)),
      };
    }
    case 'boardsRemoved': {
      const gone = new Set(action.boards);
      const removed = (state.boards ?? []).filter((board) => gone.has(board.name));
      if (removed.length === 0) return { ...state, now: action.now };
      return {
        ...state,
        now: action.now,
        boards: (state.boards ?? []).filter((board) => !gone.has(board.name)),
        announcements: announce(
          state.announcements,
          removed.map((board) => `${board.title} is no longer available`),
        ),
      };
    }
    case 'statusesReceived': {
      const newest = Math.max(...action.statuses.map((status) => status.ts));
      const lastEventTs =
        action.statuses.length === 0 ? state.lastEventTs : Math.max(state.lastEventTs ?? newest, newest);
      return { ...state, now: action.now, lastEventTs };
    }
    case 'streamStateChanged':
      if (action.state === state.stream.state) return { ...state, now: action.now };
      return withConnection(state, {
        ...state,
        now: action.now,
        stream: { state: action.state, since: action.now },
      });
    case 'browserOnlineChanged':
      return withConnection(state, { ...state, now: action.now, browserOnline: action.online });
    case 'streamAlive':
      return { ...heardFrom(state, action.receivedAt, action.heartbeatMs), now: action.now };
    case 'tick':
      return withConnection(state, { ...state, now: action.now });
  }
}
