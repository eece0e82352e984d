// Reading a board's log stream (`boardKeys(prefix, board).log`): the replay source for client resumes
// (Last-Event-ID) and for a worker's own gap after its subscriber reconnects. Entries logged before
// boards existed are on `main`'s log and carry no board: their envelopes get `main`.
import { compareStreamIds, parseEnvelope, type Envelope } from '../../shared/events.ts';
import { boardKeys, type RedisNames } from '../../shared/keys.ts';
import type { RedisClient } from '../redis.ts';
import type { BoardStart, EventLogReader, ReplayOutcome } from '../sse/delivery.ts';

/** Entries read per XRANGE round trip while replaying. */
export const REPLAY_BATCH = 500;

/** Rebuilds the envelope from a stream entry: the script stores the event without its id. */
export function envelopeFromEntry(id: string, entry: string | undefined): Envelope | undefined {
  if (!entry?.startsWith('{')) return undefined;
  const parsed = parseEnvelope(`{"id":"${id}",${entry.slice(1)}`);
  return parsed.ok ? parsed.value : undefined;
}

/** Events after `afterId` (exclusive), oldest first, at most `count`, and the id the read reached. */
async function readLogAfter(
  redis: RedisClient,
  log: string,
  afterId: string,
  count: number,
): Promise<{ events: Envelope[]; entries: number; lastId: string | undefined }> {
  const entries = await redis.xRange(log, `(${afterId}`, '+', { COUNT: count });
  const events: Envelope[] = [];
  for (const entry of entries ?? []) {
    const envelope = envelopeFromEntry(entry.id, entry.message.e);
    if (envelope) events.push(envelope);
  }
  return { events, entries: entries?.length ?? 0, lastId: entries?.at(-1)?.id };
}

export type { ReplayOutcome };

/** The log stream of `board`. */
function logOf(names: RedisNames, board: string): string {
  return boardKeys(names.prefix, board).log;
}

/** One read of a log after a cursor, and whether events after the cursor may have been trimmed by then. */
interface CheckedBatch {
  events: readonly Envelope[];
  entries: number;
  lastId: string | undefined;
  trimmed: boolean;
}

/**
 * Reads that are in flight, by board and cursor: a replay asking for one joins it instead of sending its
 * own (docs/architecture.md, "Replays from memory": a storm of resumes from ids older than the worker's
 * memory, mostly the same ids). Each read is shared with its trimming check, which must follow it.
 */
export type SharedLogReads = Map<string, Promise<CheckedBatch>>;

async function readChecked(
  redis: RedisClient,
  names: RedisNames,
  board: string,
  cursor: string,
  batchSize: number,
): Promise<CheckedBatch> {
  const batch = await readLogAfter(redis, logOf(names, board), cursor, batchSize);
  // After the read: an entry trimmed before it would otherwise be skipped silently.
  return { ...batch, trimmed: await isOlderThanLog(redis, names, board, cursor) };
}

/** A read, and whether it was joined (issued by another replay, perhaps before this one began). */
function readShared(
  redis: RedisClient,
  names: RedisNames,
  board: string,
  cursor: string,
  batchSize: number,
  shared: SharedLogReads | undefined,
): { read: Promise<CheckedBatch>; joined: boolean } {
  if (shared === undefined)
    return { read: readChecked(redis, names, board, cursor, batchSize), joined: false };
  const key = `${board}\n${cursor}\n${batchSize}`;
  const pending = shared.get(key);
  if (pending !== undefined) return { read: pending, joined: true };
  const read = readChecked(redis, names, board, cursor, batchSize);
  shared.set(key, read);
  const forget = () => shared.delete(key);
  read.then(forget, forget);
  return { read, joined: false };
}

/**
 * Hands every event of `board` after `afterId` to `onBatch`, oldest first, until the end of its log.
 * `onBatch` may be async (to wait for a slow socket) and returns false to stop. Trimming is checked after
 * each read. With `shared`, a read another replay has in flight for the same cursor is joined; such a
 * read may have run before this replay began (before its stream held live events), so it never ends the
 * replay: the end of the log is always found by a read of its own.
 */
export async function replayLog(
  redis: RedisClient,
  names: RedisNames,
  board: string,
  afterId: string,
  onBatch: (events: readonly Envelope[]) => unknown,
  batchSize = REPLAY_BATCH,
  shared?: SharedLogReads,
): Promise<ReplayOutcome> {
  let cursor = afterId;
  let count = 0;
  let ownRead = false;
  for (;;) {
    const { read, joined } = readShared(redis, names, board, cursor, batchSize, ownRead ? undefined : shared);
    const batch = await read;
    if (batch.trimmed) return { kind: 'trimmed' };
    const atEnd = batch.entries < batchSize;
    if (batch.lastId === undefined) {
      if (joined) {
        ownRead = true;
        continue;
      }
      if (count === 0) {
        const lastId = await lastLogId(redis, names, board);
        if (compareStreamIds(afterId, lastId) > 0) return { kind: 'ahead', lastId };
      }
      return { kind: 'replayed', count };
    }
    if (batch.events.length > 0 && (await onBatch(batch.events)) === false) {
      return { kind: 'stopped', count: count + batch.events.length };
    }
    count += batch.events.length;
    cursor = batch.lastId;
    if (atEnd) {
      if (!joined) return { kind: 'replayed', count };
      ownRead = true;
    }
  }
}

interface StreamInfo {
  length: number;
  entriesAdded: number;
  firstId: string | undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

async function streamInfo(redis: RedisClient, log: string): Promise<StreamInfo | undefined> {
  let info: unknown;
  try {
    info = await redis.sendCommand(['XINFO', 'STREAM', log]);
  } catch (error) {
    if (error instanceof Error && /no such key/i.test(error.message)) return undefined;
    throw error;
  }
  if (!isRecord(info)) throw new Error('XINFO STREAM returned an unexpected reply');
  const first = info['first-entry'];
  return {
    length: Number(info.length),
    entriesAdded: Number(info['entries-added']),
    firstId: Array.isArray(first) && typeof first[0] === 'string' ? first[0] : undefined,
  };
}

/**
 * Whether events after `id` may have been trimmed away, so a replay from it would miss some: the id is
 * before the oldest retained entry and the log has trimmed entries. (Trimming does not update XINFO's
 * max-deleted-entry-id, so the exact boundary is unknown; a needless reset costs one snapshot fetch.)
 */
export async function isOlderThanLog(
  redis: RedisClient,
  names: RedisNames,
  board: string,
  id: string,
): Promise<boolean> {
  const info = await streamInfo(redis, logOf(names, board));
  if (!info?.firstId) return false;
  if (compareStreamIds(id, info.firstId) >= 0) return false;
  // Redis before 7.0 does not report entries-added: assume trimmed (a needless reset, never a silent loss).
  return Number.isNaN(info.entriesAdded) || info.entriesAdded > info.length;
}

/** Id of the newest event in `board`'s log, or `0-0` when it is empty. */
export async function lastLogId(redis: RedisClient, names: RedisNames, board: string): Promise<string> {
  const last = await redis.xRevRange(logOf(names, board), '+', '-', { COUNT: 1 });
  return last?.[0]?.id ?? '0-0';
}

/**
 * The newest events of `board`'s log, for the worker's memory when it starts following the board
 * (docs/architecture.md, "Replays from memory"): at most `count`, none sequenced more than `maxAgeMs`
 * before `now`. One `XREVRANGE` of `count + 1` entries: the oldest entry read and left out is the floor
 * (the log may be trimmed before it, never after), so every entry after the floor is returned.
 */
export async function readRecentEvents(
  redis: RedisClient,
  names: RedisNames,
  board: string,
  options: { count: number; maxAgeMs: number; now: number },
): Promise<BoardStart> {
  const entries = (await redis.xRevRange(logOf(names, board), '+', '-', { COUNT: options.count + 1 })) ?? [];
  const oldest = entries.at(-1);
  if (oldest === undefined) return { floor: '0-0', events: [] };
  const tooOld = options.now - options.maxAgeMs;
  let floor = oldest.id;
  const events: Envelope[] = [];
  // Newest first, down to the floor or the first entry past the age.
  for (let index = 0; index < entries.length - 1; index += 1) {
    const entry = entries[index];
    if (entry === undefined) break;
    if (Number(entry.id.slice(0, entry.id.indexOf('-'))) < tooOld) {
      floor = entry.id;
      break;
    }
    const envelope = envelopeFromEntry(entry.id, entry.message.e);
    // An entry that does not parse is skipped, as a replay from the log skips it.
    if (envelope?.board === board) events.push(envelope);
  }
  return { floor, events: events.reverse() };
}

/** The log as the `/events` route reads it (injected, so server/sse/ does not import server/bus/). */
export function createEventLogReader(redis: RedisClient, names: RedisNames): EventLogReader {
  const shared: SharedLogReads = new Map();
  return {
    replaySince: (board, afterId, onBatch) =>
      replayLog(redis, names, board, afterId, onBatch, REPLAY_BATCH, shared),
  };
}
