// Reading the `{prefix}:log` stream: the replay source for client resumes (Last-Event-ID) and for a
// worker's own gap after its subscriber reconnects.
import { compareStreamIds, parseEnvelope, type Envelope } from '../../shared/events.ts';
import type { RedisNames } from '../../shared/keys.ts';
import type { RedisClient } from '../redis.ts';

/** Entries read per XRANGE round trip while replaying. */
export const REPLAY_BATCH = 500;

/** Rebuilds the envelope from a stream entry: the script stores the event without its id. */
export function envelopeFromEntry(id: string, entry: string | undefined): Envelope | undefined {
  if (!entry?.startsWith('{')) return undefined;
  const parsed = parseEnvelope(`{"id":"${id}",${entry.slice(1)}`);
  return parsed.ok ? parsed.value : undefined;
}

/** Events after `afterId` (exclusive), oldest first, at most `count`. */
export async function readLogAfter(
  redis: RedisClient,
  names: RedisNames,
  afterId: string,
  count = REPLAY_BATCH,
): Promise<Envelope[]> {
  const entries = await redis.xRange(names.log, `(${afterId}`, '+', { COUNT: count });
  const envelopes: Envelope[] = [];
  for (const entry of entries ?? []) {
    const envelope = envelopeFromEntry(entry.id, entry.message.e);
    if (envelope) envelopes.push(envelope);
  }
  return envelopes;
}

/** Calls `onBatch` with every event after `afterId` until the end of the log; returns how many. */
export async function replayLog(
  redis: RedisClient,
  names: RedisNames,
  afterId: string,
  onBatch: (events: Envelope[]) => void,
): Promise<number> {
  let cursor = afterId;
  let total = 0;
  for (;;) {
    const batch = await readLogAfter(redis, names, cursor);
    if (batch.length === 0) return total;
    onBatch(batch);
    total += batch.length;
    cursor = batch[batch.length - 1]?.id ?? cursor;
    if (batch.length < REPLAY_BATCH) return total;
  }
}

interface StreamInfo {
  length: number;
  entriesAdded: number;
  firstId: string | undefined;
}

async function streamInfo(redis: RedisClient, names: RedisNames): Promise<StreamInfo | undefined> {
  let info: Record<string, unknown>;
  try {
    info = (await redis.sendCommand(['XINFO', 'STREAM', names.log])) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof Error && /no such key/i.test(error.message)) return undefined;
    throw error;
  }
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
export async function isOlderThanLog(redis: RedisClient, names: RedisNames, id: string): Promise<boolean> {
  const info = await streamInfo(redis, names);
  if (!info?.firstId) return false;
  return compareStreamIds(id, info.firstId) < 0 && info.entriesAdded > info.length;
}

/** Id of the newest event in the log, or `0-0` when it is empty. */
export async function lastLogId(redis: RedisClient, names: RedisNames): Promise<string> {
  const last = await redis.xRevRange(names.log, '+', '-', { COUNT: 1 });
  return last?.[0]?.id ?? '0-0';
}
