// `GET /api/history` from the browser (docs/dashboard.md, "Ranges and history"), parsed with the shared
// schema. A failure is only a chart without history for now: the chart asks again later.
import { historyResponseSchema, type ChartRange, type HistoryResponse } from '../../shared/history.ts';

export type HistoryResult =
  { kind: 'ok'; value: HistoryResponse } | { kind: 'unauthorized' } | { kind: 'failed' };

/** A board's history for a range: a metric's buckets when named, and always the board's annotations. */
export async function fetchHistory(
  board: string,
  range: ChartRange,
  metric?: string,
): Promise<HistoryResult> {
  const query = new URLSearchParams({ board, range });
  if (metric !== undefined) query.set('metric', metric);
  try {
    const response = await fetch(`/api/history?${query.toString()}`, {
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { Accept: 'application/json' },
    });
    if (response.status === 401) return { kind: 'unauthorized' };
    if (!response.ok) return { kind: 'failed' };
    const parsed = historyResponseSchema.safeParse(await response.json());
    return parsed.success ? { kind: 'ok', value: parsed.data } : { kind: 'failed' };
  } catch {
    return { kind: 'failed' };
  }
}
