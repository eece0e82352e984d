// Acknowledged means durable (docs/events.md, "Acknowledged means on a replica"): after a write, WAIT on
// the node that took it until `replicas` replicas have it, or fail after `timeoutMs`.
import { sendFor, type RedisCommandSender } from './script-runner.ts';

/** How many replicas must have a write before it is acknowledged: a number, or `auto`. */
export type WaitReplicas = number | 'auto';

export interface ReplicaWaitOptions {
  /** A number, or `auto`: 1 when the node that took the write has a replica, else 0. Default `auto`. */
  replicas?: WaitReplicas;
  /** How long WAIT may block. Default 1000 ms. */
  timeoutMs?: number;
}

export const DEFAULT_WAIT_TIMEOUT_MS = 1000;
/** How long `auto` trusts a node's replica count (INFO replication) before asking again. */
const REPLICA_COUNT_TTL_MS = 5000;

/** Raised when a write did not reach enough replicas within the timeout: it is written, not acknowledged. */
export class ReplicationTimeout extends Error {
  readonly required: number;
  readonly acknowledged: number;
  readonly timeoutMs: number;
  constructor(required: number, acknowledged: number, timeoutMs: number) {
    super(
      `the write reached ${acknowledged} of ${required} required Redis replica(s) within ${timeoutMs} ms (WAIT); it may still be applied`,
    );
    this.name = 'ReplicationTimeout';
    this.required = required;
    this.acknowledged = acknowledged;
    this.timeoutMs = timeoutMs;
  }
}

/** The connected replicas a primary reports in INFO replication. */
export function connectedReplicas(info: string): number {
  const match = /^connected_slaves:(\d+)/m.exec(info);
  return match ? Number(match[1]) : 0;
}

/**
 * Returns `wait(keys)`: WAIT on the node of each key (one key per node or board the writes went to). It
 * must be called on the connection that sent the writes, before any other write of it.
 */
export function createReplicaWait(
  client: RedisCommandSender,
  options: ReplicaWaitOptions = {},
): (keys: readonly string[]) => Promise<void> {
  const replicas = options.replicas ?? 'auto';
  const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS;
  const counts = new Map<string, { replicas: Promise<number>; at: number }>();

  const required = (key: string): Promise<number> => {
    if (replicas !== 'auto') return Promise.resolve(replicas);
    const cached = counts.get(key);
    if (cached && Date.now() - cached.at < REPLICA_COUNT_TTL_MS) return cached.replicas;
    const asked = sendFor(client, key, ['INFO', 'replication']).then((info) =>
      Math.min(1, connectedReplicas(String(info))),
    );
    asked.catch(() => counts.delete(key));
    counts.set(key, { replicas: asked, at: Date.now() });
    return asked;
  };

  return async function wait(keys) {
    if (replicas === 0) return;
    await Promise.all(
      [...new Set(keys)].map(async (key) => {
        const needed = await required(key);
        if (needed === 0) return;
        let acked: number;
        try {
          acked = Number(await sendFor(client, key, ['WAIT', String(needed), String(timeoutMs)]));
        } catch (error) {
          counts.delete(key);
          throw error;
        }
        if (acked < needed) {
          // A failover may have left the key's new primary without a replica: `auto` asks again next time.
          counts.delete(key);
          throw new ReplicationTimeout(needed, acked, timeoutMs);
        }
      }),
    );
  };
}
