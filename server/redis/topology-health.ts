// What Health checks beyond PING on each topology (docs/operations.md, "Health on Cluster and Sentinel").
import type { RedisClient } from '../redis.ts';
import { createClusterCheck, type TopologyReport } from './cluster-health.ts';
import { topologyOfClient } from './topology.ts';

export function topologyHealth(
  redis: RedisClient,
  prefix: string,
  boards: () => readonly string[],
): { topologyKind?: string; topology?: () => Promise<TopologyReport> } {
  const kind = topologyOfClient(redis);
  // One server: PING says it all (the body stays as it was before topologies).
  if (kind === 'standalone') return {};
  if (kind !== 'cluster') return { topologyKind: kind };
  return { topologyKind: kind, topology: createClusterCheck(redis, prefix, boards) };
}
