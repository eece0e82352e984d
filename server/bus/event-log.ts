// Reading a board's log stream (`boardKeys(prefix, board).log`): the replay source for client resumes
// (Last-Event-ID) and for a worker's own gap after its subscriber reconnects. Entries logged before
// boards existed are on `main`'s log and carry no board: their envelopes get `main`.
import { compareStreamIds, parseEnvelope, type Envelope } from '../../shared/events.ts';
import { boardKeys, type RedisNames } from '../../shared/keys.ts';
import type { RedisClient } from '../redis.ts';
import type { EventLogReader, ReplayOutcome } from '../sse/delivery.ts';

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

/**
 * Hands every event of `board` after `afterId` to `onBatch`, oldest first, until the end of its log. `onBatch` may be
 * async (to wait for a slow socket) and returns false to stop. Trimming is checked after each read: an
 * entry trimmed before the read would otherwise be skipped silently.
 */
export async function replayLog(
  redis: RedisClient,
  names: RedisNames,
  board: string,
  afterId: string,
  onBatch: (events: Envelope[]) => unknown,
  batchSize = REPLAY_BATCH,
): Promise<ReplayOutcome> {
  const log = logOf(names, board);
  let cursor = afterId;
  let count = 0;
  for (;;) {
    const batch = await readLogAfter(redis, log, cursor, batchSize);
    if (await isOlderThanLog(redis, names, board, cursor)) return { kind: 'trimmed' };
    if (batch.lastId === undefined) {
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
    if (batch.entries < batchSize) return { kind: 'replayed', count };
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

/** The log as the `/events` route reads it (injected, so server/sse/ does not import server/bus/). */
export function createEventLogReader(redis: RedisClient, names: RedisNames): EventLogReader {
  return { replaySince: (board, afterId, onBatch) => replayLog(redis, names, board, afterId, onBatch) };
}
