// Boards as the dashboard sees them: the answer of `GET /api/boards` (docs/events.md, "Boards"), parsed
// with a client-side schema, and the board a page shows, from its path (`/b/<board>`).
import * as z from 'zod';
import { boardSchema } from '../../shared/boards.ts';
import { STATUS_STATES } from '../../shared/events.ts';

const countSchema = z.number().int().nonnegative();

export const boardSummarySchema = z.object({
  name: boardSchema,
  title: z.string(),
  /** Worst current status (down > degraded > maintenance > ok); null while the board has none. */
  state: z.enum(STATUS_STATES).nullable(),
  counts: z.object({ ok: countSchema, degraded: countSchema, down: countSchema, maintenance: countSchema }),
});
export type BoardSummary = z.infer<typeof boardSummarySchema>;

export const boardsResponseSchema = z.object({ boards: z.array(boardSummarySchema) });
export type BoardsResponse = z.infer<typeof boardsResponseSchema>;

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
