// Splitting ingested messages or entries into their boards' parts (docs/events.md, "Atomic per board"):
// each board's part is sequenced by one script call on the board's slot, so a message naming several
// boards is one atomic step per board. A message with no valid events (invalid input) is a part of
// `main` with no events: its place is still recorded there, so exactly one worker counts it.
import { boardOf, type SingleEventInput } from '../../shared/events.ts';
import { eventArgs } from '../../shared/publisher.ts';
import { ALREADY_SEQUENCED, TS_REJECTED, UNKNOWN_BOARD } from '../../shared/sequence-script.ts';

/** One item's events for one board. */
export interface Part {
  /** Index of the message or entry in its batch. */
  item: number;
  events: SingleEventInput[];
}

/** Board -> the parts of the batch's items, in item order. `undefined`: an invalid item. */
export function partsByBoard(
  items: readonly (readonly SingleEventInput[] | undefined)[],
): Map<string, Part[]> {
  const boards = new Map<string, Part[]>();
  const add = (board: string, part: Part) => {
    let parts = boards.get(board);
    if (!parts) boards.set(board, (parts = []));
    parts.push(part);
  };
  items.forEach((events, item) => {
    if (events === undefined || events.length === 0) {
      add('main', { item, events: [] });
      return;
    }
    const own = new Map<string, SingleEventInput[]>();
    for (const event of events) {
      const board = boardOf(event);
      let list = own.get(board);
      if (!list) own.set(board, (list = []));
      list.push(event);
    }
    for (const [board, list] of own) add(board, { item, events: list });
  });
  return boards;
}

/** The ARGV of a part: its identity (index or entry id), its number of events, the events. */
export function partArgs(identity: string, part: Part): string[] {
  return [identity, String(part.events.length), ...part.events.flatMap(eventArgs)];
}

/** What happened to one item, from its parts' replies. */
export interface ItemOutcome {
  /** Events of the item this call sequenced (other parts may have been sequenced by another worker). */
  sequenced: SingleEventInput[];
  /** A part was refused: its board does not exist, or a ts is too far ahead. */
  refused: 'unknown_board' | 'ts' | undefined;
  /** A part of the item was handled by this call (not by another worker before it). */
  handled: boolean;
}

/** Combines the per-board replies (one number per part) into one outcome per item. */
export function itemOutcomes(
  count: number,
  replies: readonly { parts: readonly Part[]; reply: readonly unknown[] }[],
): ItemOutcome[] {
  const outcomes: ItemOutcome[] = Array.from({ length: count }, () => ({
    sequenced: [],
    refused: undefined,
    handled: false,
  }));
  for (const { parts, reply } of replies) {
    parts.forEach((part, k) => {
      const result = Number(reply[k]);
      const outcome = outcomes[part.item];
      if (!outcome) return;
      if (result === ALREADY_SEQUENCED) return;
      outcome.handled = true;
      if (result === UNKNOWN_BOARD) outcome.refused = 'unknown_board';
      else if (result === TS_REJECTED) outcome.refused ??= 'ts';
      else outcome.sequenced.push(...part.events);
    });
  }
  return outcomes;
}
