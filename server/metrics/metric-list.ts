// A registry in prom-client's JSON form (`getMetricsAsJSON()`): what workers write into Redis for one
// another and what `AggregatorRegistry.aggregate` sums (docs/design.md, "Health, metrics, logs").
import * as z from 'zod';

const metricValueSchema = z.looseObject({
  value: z.number().nullable(),
  labels: z.record(z.string(), z.union([z.string(), z.number()])),
  metricName: z.string().optional(),
});
const metricSchema = z.looseObject({
  name: z.string(),
  help: z.string(),
  type: z.string(),
  aggregator: z.string(),
  values: z.array(metricValueSchema),
});
const metricListSchema = z.array(metricSchema);
export type MetricList = z.infer<typeof metricListSchema>;

/** Parses a registry's JSON (from Redis or from this worker); values that JSON cannot carry (NaN) go. */
export function parseMetricList(json: string): MetricList {
  const list = metricListSchema.parse(JSON.parse(json));
  return list.map((metric) => ({ ...metric, values: metric.values.filter((value) => value.value !== null) }));
}

/** Only what keeps growing over a worker's life makes sense to keep once it is gone. */
export function retainable(list: MetricList): MetricList {
  return list.filter((metric) => metric.type === 'counter' || metric.type === 'histogram');
}

export function withWorkerLabel(list: MetricList, worker: string): MetricList {
  return list.map((metric) => ({
    ...metric,
    values: metric.values.map((value) => ({ ...value, labels: { ...value.labels, worker } })),
  }));
}
