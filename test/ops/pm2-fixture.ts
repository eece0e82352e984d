// The suites that run traffic through one PM2 cluster (reload, crash, /metrics) share this fixture: the
// cluster on the bed's Redis, logged-in clients on its shared port, everything stopped after each test.
// Kept apart from pm2-cluster.ts, which the benches import without mocha.
import { login } from '../helpers/auth.ts';
import type { TestBed } from '../helpers/test-bed.ts';
import { startPm2Cluster, type Pm2Cluster } from './pm2-cluster.ts';
import { openClients, type RecordingClient } from './traffic.ts';

export interface ClusterWithClients {
  cluster: Pm2Cluster;
  /** Logged-in EventSource clients on the cluster's shared port. */
  clients: RecordingClient[];
}

/**
 * A mocha fixture for the suites that run traffic through one PM2 cluster: `start` runs the cluster on
 * the bed's Redis and prefix and opens `clients` logged-in clients on its shared port; after each test
 * the clients are closed, the cluster's logs printed if the test failed, and the cluster killed.
 */
export function usePm2Cluster(bed: TestBed): {
  start(options: {
    instances?: number;
    clients: number;
    env?: Record<string, string>;
  }): Promise<ClusterWithClients>;
} {
  let cluster: Pm2Cluster | undefined;
  let clients: RecordingClient[] = [];
  afterEach(async function () {
    for (const recording of clients) recording.close();
    clients = [];
    if (this.currentTest?.state === 'failed' && cluster) console.log(await cluster.logs());
    await cluster?.kill();
    cluster = undefined;
  });
  return {
    async start(options) {
      const started = await startPm2Cluster({
        redisUrl: bed.redis.url,
        prefix: bed.prefix,
        instances: options.instances ?? 2,
        env: options.env,
      });
      cluster = started;
      const { headers } = await login(started.url, { redisUrl: bed.redis.url, prefix: bed.prefix });
      clients = await openClients(options.clients, `${started.url}/events`, headers);
      return { cluster: started, clients };
    },
  };
}
