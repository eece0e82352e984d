// The resume cursor of a stream that carries several boards (docs/events.md, "Resume"): each board's last
// id, as `<board>:<id>` pairs joined by `,` in board-name order, e.g. `edge:1700000000000-3,main:1700000000001-0`.
// It is the `id:` of every SSE frame, so the browser's Last-Event-ID resumes every board exactly; `?since=`
// takes the same text. A bare stream id (what clients before boards kept) is `main`'s cursor.
import { boardSchema, DEFAULT_BOARD, MAX_BOARDS_PER_STREAM } from './boards.ts';
import { streamIdSchema, type ParseResult } from './events.ts';

/** Board -> the last id the client has of it. */
export type Cursor = ReadonlyMap<string, string>;

/** Longest cursor text accepted: every pair at its longest, with separators. */
export const MAX_CURSOR_LENGTH = MAX_BOARDS_PER_STREAM * (64 + 1 + 41 + 1);

/** The cursor as frame id text: pairs in board-name order (the same boards and ids give the same text). */
export function formatCursor(cursor: Cursor): string {
  return [...cursor.keys()]
    .sort()
    .map((board) => `${board}:${cursor.get(board) ?? ''}`)
    .join(',');
}

/** Parses Last-Event-ID / `?since=`; a bare stream id is `main`'s. The message names what is wrong. */
export function parseCursor(text: string): ParseResult<Map<string, string>> {
  const invalid = (message: string): ParseResult<Map<string, string>> => ({
    ok: false,
    reason: 'invalid',
    field: 'since',
    message: `since: ${message}`,
  });
  if (text.length > MAX_CURSOR_LENGTH) return invalid(`must be at most ${MAX_CURSOR_LENGTH} characters`);
  const cursor = new Map<string, string>();
  for (const pair of text.split(',')) {
    const colon = pair.indexOf(':');
    const board = colon === -1 ? DEFAULT_BOARD : pair.slice(0, colon);
    const id = colon === -1 ? pair : pair.slice(colon + 1);
    if (!boardSchema.safeParse(board).success) return invalid(`"${board.slice(0, 64)}" is not a board name`);
    const parsedId = streamIdSchema.safeParse(id);
    if (!parsedId.success) return invalid(parsedId.error.issues[0]?.message ?? 'bad stream id');
    if (cursor.has(board)) return invalid(`names board ${board} twice`);
    cursor.set(board, id);
  }
  if (cursor.size > MAX_BOARDS_PER_STREAM) return invalid(`names more than ${MAX_BOARDS_PER_STREAM} boards`);
  return { ok: true, value: cursor };
}
