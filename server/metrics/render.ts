// One scrape's text (docs/design.md, "Health, metrics, logs"): the registries summed with
// `AggregatorRegistry.aggregate`, or labelled by worker, plus two gauges describing the scrape itself.
import { AggregatorRegistry, Gauge, Registry } from 'prom-client';
import type { MetricList } from './metric-list.ts';
import { withWorkerLabel } from './metric-list.ts';

export type MetricsScope = 'cluster' | 'workers';

export interface Scrape {
  contentType: string;
  text: string;
  answered: number;
  missing: string[];
}

/** Label given to the counters left behind by stopped workers in the per-worker breakdown. */
export const RETIRED_WORKER = 'retired';

export interface ScrapeParts {
  scope: MetricsScope;
  workerId: string;
  /** This worker's metrics. */
  local: MetricList;
  /** The other workers' metrics, by worker id. */
  answers: Map<string, MetricList>;
  /** Live workers that did not answer. */
  missing: string[];
  /** What stopped workers left behind. */
  retired: MetricList[];
  /** False when the other workers could not be asked (Redis away or stalled). */
  complete: boolean;
}

/**
 * `cluster`: every list summed. `workers`: the same series with a `worker` label (stopped workers as
 * worker="retired").
 */
export async function renderScrape(parts: ScrapeParts): Promise<Scrape> {
  const { answers, missing } = parts;
  const labelled = parts.scope === 'workers';
  const lists: MetricList[] = [labelled ? withWorkerLabel(parts.local, parts.workerId) : parts.local];
  for (const [worker, list] of answers) lists.push(labelled ? withWorkerLabel(list, worker) : list);
  for (const list of parts.retired) lists.push(labelled ? withWorkerLabel(list, RETIRED_WORKER) : list);

  const meta = new Registry();
  const workersGauge = new Gauge({
    name: 'pulseboard_cluster_workers',
    help: 'Workers in this scrape: answered (included) and missing (registered but silent, not included)',
    labelNames: ['state'],
    registers: [meta],
  });
  workersGauge.set({ state: 'answered' }, 1 + answers.size);
  workersGauge.set({ state: 'missing' }, missing.length);
  new Gauge({
    name: 'pulseboard_cluster_scrape_complete',
    help: '1 when every live worker answered this scrape, 0 when some did not or Redis was unreachable',
    registers: [meta],
  }).set(parts.complete && missing.length === 0 ? 1 : 0);

  const aggregated = AggregatorRegistry.aggregate(lists);
  const text = (await aggregated.metrics()) + (await meta.metrics());
  return { contentType: aggregated.contentType, text, answered: 1 + answers.size, missing };
}
