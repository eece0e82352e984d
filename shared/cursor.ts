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
  return formatCursorOver([...cursor.keys()].sort(), cursor);
}

/** `positions` as frame id text over `boards` (in name order) only; a board with no position is left out. */
export function formatCursorOver(boards: readonly string[], positions: Cursor): string {
  const ids: (string | undefined)[] = [];
  for (const board of boards) ids.push(positions.get(board));
  return formatPositions(boards, ids);
}

/** Millisecond parts with more digits are written in the plain form: ages are computed in doubles. */
const MAX_COMPACT_MS_DIGITS = 15;

/** The ms part of a stream id (`dash`: where its `-` is), digit by digit: no substring on the hot path. */
function msOf(id: string, dash: number): number {
  let ms = 0;
  for (let at = 0; at < dash; at += 1) ms = ms * 10 + id.charCodeAt(at) - 48;
  return ms;
}

/**
 * `ids[i]` is the position of `boards[i]` (boards in name order; undefined: no position, left out), as
 * frame id text. Called for every frame: once per event and group of streams on the live path, once per
 * event and stream on a replay.
 */
export function formatPositions(boards: readonly string[], ids: readonly (string | undefined)[]): string {
  let count = 0;
  let newest = -1;
  for (const id of ids) {
    if (id === undefined) continue;
    const dash = id.indexOf('-');
    if (dash > MAX_COMPACT_MS_DIGITS) return plainPositions(boards, ids);
    count += 1;
    newest = Math.max(newest, msOf(id, dash));
  }
  if (count <= 1) return plainPositions(boards, ids);
  let text = `${newest}~`;
  let first = true;
  for (let index = 0; index < boards.length; index += 1) {
    const id = ids[index];
    if (id === undefined) continue;
    const dash = id.indexOf('-');
    text += `${first ? '' : ','}${boards[index]}:${newest - msOf(id, dash)}`;
    first = false;
    // A sequence of 0, by far the most common, is left out.
    if (!id.endsWith('-0')) text += id.slice(dash);
  }
  return text;
}

function plainPositions(boards: readonly string[], ids: readonly (string | undefined)[]): string {
  let text = '';
  for (let index = 0; index < boards.length; index += 1) {
    const id = ids[index];
    if (id === undefined) continue;
    text += `${text === '' ? '' : ','}${boards[index]}:${id}`;
  }
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
