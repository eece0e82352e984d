// Readiness on Redis Cluster (docs/operations.md, "Health on Cluster and Sentinel"): the slot of the
// installation's own keys (`{prefix}`: sessions, users, `main`) and the slots of the boards this worker
// serves must each have an online primary in the cluster's view (CLUSTER SHARDS). Without the
// installation's slot the worker can serve nothing: not ready. A board's slot without a primary (its shard
// failing over) makes the worker not ready for that board only: the other boards keep being served.
import { boardKeys } from '../../shared/keys.ts';
import type { RedisClient } from '../redis.ts';

export interface TopologyReport {
  /** Whether the installation's slot has an online primary. */
  ok: boolean;
  /** Boards whose slot has no online primary. */
  failedBoards: string[];
  /** Why not (fully) ready, for the health body. */
  reason?: string;
  /** Watched slots without an online primary. */
  failedSlots: number;
}

type Reply = unknown;

/** A flat [name, value, name, value…] reply (RESP2) or a map (RESP3) as a Map. */
function fields(reply: Reply): Map<string, Reply> {
  if (reply instanceof Map) return new Map([...reply].map(([key, value]) => [String(key), value as Reply]));
  if (Array.isArray(reply)) {
    const map = new Map<string, Reply>();
    for (let i = 0; i + 1 < reply.length; i += 2) map.set(String(reply[i]), reply[i + 1]);
    return map;
  }
  if (reply && typeof reply === 'object') return new Map(Object.entries(reply));
  return new Map();
}

/** Slot ranges served by an online primary, from CLUSTER SHARDS. */
export function onlineRanges(shards: Reply): [number, number][] {
  const ranges: [number, number][] = [];
  for (const shard of Array.isArray(shards) ? shards : []) {
    const info = fields(shard);
    const slots = (info.get('slots') as Reply[] | undefined) ?? [];
    const nodes = (info.get('nodes') as Reply[] | undefined) ?? [];
    const online = nodes.some((node) => {
      const described = fields(node);
      return described.get('role') === 'master' && described.get('health') === 'online';
    });
    if (!online) continue;
    for (let i = 0; i + 1 < slots.length; i += 2) ranges.push([Number(slots[i]), Number(slots[i + 1])]);
  }
  return ranges;
}

/**
 * Returns a check of the slots of `boards()` (plus the installation's own keys): which have no online
 * primary. Slots are asked once per board (CLUSTER KEYSLOT).
 */
export function createClusterCheck(
  redis: RedisClient,
  prefix: string,
  boards: () => readonly string[],
): () => Promise<TopologyReport> {
  const slots = new Map<string, number>();
  const slotOf = async (board: string): Promise<number> => {
    let slot = slots.get(board);
    if (slot === undefined) {
      slot = Number(await redis.sendCommand(['CLUSTER', 'KEYSLOT', boardKeys(prefix, board).log]));
      slots.set(board, slot);
    }
    return slot;
  };
  return async function check() {
    const watched = [...new Set(['main', ...boards()])];
    const [shards, boardSlots] = await Promise.all([
      redis.sendCommand(['CLUSTER', 'SHARDS']),
      Promise.all(watched.map(slotOf)),
    ]);
    const ranges = onlineRanges(shards);
    const failed = watched.filter((_board, index) => {
      const slot = boardSlots[index] ?? -1;
      return !ranges.some(([start, end]) => slot >= start && slot <= end);
    });
    if (failed.length === 0) return { ok: true, failedBoards: [], failedSlots: 0 };
    const failedSlots = new Set(failed.map((board) => slots.get(board))).size;
    return {
      ok: !failed.includes('main'),
      failedBoards: failed,
      failedSlots,
      reason: `Redis Cluster: no online primary for the slot(s) of board(s) ${failed.join(', ')}${failed.includes('main') ? ' (main: the installation slot)' : ''}`,
    };
  };
}
