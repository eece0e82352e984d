// The worker's metrics live in server/metrics/worker-metrics.ts. This path stays only while server/sse/,
// server/bus/ and server/api/ are being rewritten; they move to the new path, then this file goes.
export type { Metrics } from './metrics/worker-metrics.ts';
