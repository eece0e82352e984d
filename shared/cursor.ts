// The resume cursor of a stream that carries several boards (docs/events.md, "Resume"): each board's last
// id. It is the `id:` of every SSE frame, so the browser's Last-Event-ID resumes every board exactly;
// `?since=` takes the same text. Written compactly, since every frame of a many-board stream carries it:
// `<newest ms>~` then `<board>:<age>[-<seq>]` pairs in board-name order, where a pair's id is
// (newest ms - age)-seq, seq 0 when left out: `1700000000003~edge:3-4,main:0` is edge 1700000000000-4 and
// main 1700000000003-0. One board is written `<board>:<id>`. Also read: the plain form from before
// (`edge:1700000000000-4,main:1700000000003-0`), and a bare stream id, `main`'s cursor.
import { boardSchema, DEFAULT_BOARD, MAX_BOARDS_PER_STREAM } from './boards.ts';
import { streamIdSchema, type ParseResult } from './events.ts';

/** Board -> the last id the client has of it. */
export type Cursor = ReadonlyMap<string, string>;

/** Longest cursor text accepted: every pair at its longest, with separators. */
export const MAX_CURSOR_LENGTH = MAX_BOARDS_PER_STREAM * (64 + 1 + 41 + 1);

/** The cursor as frame id text: the same boards and ids always give the same text. */
export function formatCursor(cursor: Cursor): string {
  const boards = [...cursor.keys()].sort();
  return formatPositions(
    boards,
    boards.map((board) => cursor.get(board)),
  );
}

/** Millisecond parts above this are written in the plain form: ages are computed in doubles. */
const MAX_COMPACT_MS_DIGITS = 15;

/**
 * `ids[i]` is the position of `boards[i]` (boards in name order; undefined: no position, left out), as
 * frame id text. The fan-out's own entry point: one call per event and group of boards, not per stream.
 */
export function formatPositions(boards: readonly string[], ids: readonly (string | undefined)[]): string {
  let count = 0;
  let newest = -1;
  let plain = false;
  for (const id of ids) {
    if (id === undefined) continue;
    count += 1;
    const dash = id.indexOf('-');
    if (dash > MAX_COMPACT_MS_DIGITS) plain = true;
    else newest = Math.max(newest, Number(id.slice(0, dash)));
  }
  if (count <= 1 || plain) {
    const pairs: string[] = [];
    boards.forEach((board, index) => {
      const id = ids[index];
      if (id !== undefined) pairs.push(`${board}:${id}`);
    });
    return pairs.join(',');
  }
  let text = `${newest}~`;
  let first = true;
  boards.forEach((board, index) => {
    const id = ids[index];
    if (id === undefined) return;
    const dash = id.indexOf('-');
    const seq = id.slice(dash + 1);
    text += `${first ? '' : ','}${board}:${newest - Number(id.slice(0, dash))}${seq === '0' ? '' : `-${seq}`}`;
    first = false;
  });
  return text;
}

const COMPACT_PAIR = /^(\d{1,20})(?:-(\d{1,20}))?$/;

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
  const tilde = text.indexOf('~');
  let newest: bigint | undefined;
  if (tilde !== -1) {
    const base = text.slice(0, tilde);
    if (!/^\d{1,20}$/.test(base)) return invalid('the part before "~" must be a time in ms');
    newest = BigInt(base);
  }
  for (const pair of text.slice(tilde + 1).split(',')) {
    const colon = pair.indexOf(':');
    const board = colon === -1 ? DEFAULT_BOARD : pair.slice(0, colon);
    let id = colon === -1 ? pair : pair.slice(colon + 1);
    if (newest !== undefined) {
      const [, age, seq = '0'] = COMPACT_PAIR.exec(id) ?? [];
      if (colon === -1 || age === undefined)
        return invalid(`"${pair.slice(0, 80)}" is not a <board>:<age>[-<seq>] pair`);
      const ms = newest - BigInt(age);
      if (ms < 0n) return invalid(`the age of ${board} is beyond its time`);
      id = `${ms}-${seq}`;
    }
    if (!boardSchema.safeParse(board).success) return invalid(`"${board.slice(0, 64)}" is not a board name`);
    const parsedId = streamIdSchema.safeParse(id);
    if (!parsedId.success) return invalid(parsedId.error.issues[0]?.message ?? 'bad stream id');
    if (cursor.has(board)) return invalid(`names board ${board} twice`);
    cursor.set(board, id);
  }
  if (cursor.size > MAX_BOARDS_PER_STREAM) return invalid(`names more than ${MAX_BOARDS_PER_STREAM} boards`);
  return { ok: true, value: cursor };
}
