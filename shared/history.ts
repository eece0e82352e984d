// `GET /api/history` (docs/dashboard.md, "Ranges and history"): the ranges a chart offers, which bucket
// level serves each, and the answer's schema, shared by the server, the browser and the tests.
import * as z from 'zod';
import { boardSchema, DEFAULT_BOARD } from './boards.ts';
import { logEventEnvelopeSchema, nameSchema, streamIdSchema } from './events.ts';
import { HISTORY_MINUTE, HISTORY_TEN_MINUTES, type HistoryLevel } from './history-script.ts';

export const CHART_RANGES = ['15m', '1h', '6h', '24h', '7d'] as const;
export type ChartRange = (typeof CHART_RANGES)[number];
export const DEFAULT_CHART_RANGE: ChartRange = '15m';

export const RANGE_MS: Record<ChartRange, number> = {
  '15m': 15 * 60_000,
  '1h': 3_600_000,
  '6h': 6 * 3_600_000,
  '24h': 24 * 3_600_000,
  '7d': 7 * 24 * 3_600_000,
};

/** The bucket level a range reads: 1-minute buckets up to 24 h, 10-minute buckets for 7 days. */
export function levelOf(range: ChartRange): HistoryLevel {
  return range === '7d' ? HISTORY_TEN_MINUTES : HISTORY_MINUTE;
}

export const chartRangeSchema = z.enum(CHART_RANGES);

/** A metric's buckets as columns, oldest first: `start` in epoch ms, the rest per bucket. */
export const bucketColumnsSchema = z.object({
  start: z.array(z.number()),
  min: z.array(z.number()),
  max: z.array(z.number()),
  sum: z.array(z.number()),
  count: z.array(z.number()),
  last: z.array(z.number()),
});
export type BucketColumns = z.infer<typeof bucketColumnsSchema>;

export const historyResponseSchema = z.object({
  board: boardSchema.default(DEFAULT_BOARD),
  /** The metric asked for; null when only annotations were asked for. */
  metric: nameSchema.nullable(),
  range: chartRangeSchema,
  /** Bucket width in ms. */
  bucketMs: z.number().int().positive(),
  /** Server time of the read (epoch ms); the range is [serverTime - range, serverTime]. */
  serverTime: z.number(),
  /**
   * Id of the newest entry in the board's log at the read: the buckets and annotations include every event
   * up to it and none after; the stream's events after it extend them (`0-0` when the log is empty).
   */
  lastEventId: streamIdSchema,
  buckets: bucketColumnsSchema,
  /** The board's annotations in the range, by ts. */
  annotations: z.array(logEventEnvelopeSchema),
});
export type HistoryResponse = z.infer<typeof historyResponseSchema>;
