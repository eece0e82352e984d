// Boards as the dashboard sees them: the answer of `GET /api/boards` (shared/api.ts), the order they are
// listed in, and the board a page shows, from its path (`/b/<board>`).
import { boardSchema } from '../../shared/boards.ts';
import type { BoardSummary } from '../../shared/api.ts';

export { boardsResponseSchema, type BoardSummary, type BoardsResponse } from '../../shared/api.ts';

/** Path of a board's view. */
export function boardPath(board: string): string {
  return `/b/${board}`;
}

/** The board of a `/b/<board>` path; undefined for any other path (or an invalid name). */
export function boardFromPath(pathname: string): string | undefined {
  const match = /^\/b\/([^/]+)$/.exec(pathname);
  if (!match?.[1]) return undefined;
  return boardSchema.safeParse(match[1]).success ? match[1] : undefined;
}

/** Boards in the order the overview and the switcher list them: `main` first, then by title. */
export function sortBoards(boards: readonly BoardSummary[]): BoardSummary[] {
  return [...boards].sort((a, b) =>
    a.name === 'main'
      ? -1
      : b.name === 'main'
        ? 1
        : a.title.localeCompare(b.title) || a.name.localeCompare(b.name),
  );
}
