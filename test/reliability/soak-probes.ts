// Probes shared by the soak (soak.ts) and the storm-memory run (storm-memory.ts): each worker's memory and
// event-loop lag, read from the cluster view of /metrics (docs/operations.md, "Metrics").

/** The workers' METRICS_TOKEN in these runs (production mode requires one). */
export const SOAK_METRICS_TOKEN = 'soak-metrics-token-0123456789';

export interface WorkerSample {
  worker: string;
  rssMb: number;
  lagP99Ms: number;
  /** V8's heap (reserved, used) and memory held outside it for JS objects (Buffers): with RSS, they
   * tell a heap leak from retained native memory (docs/reliability.md, "Soak"). */
  heapTotalMb: number;
  heapUsedMb: number;
  externalMb: number;
}

/** Per worker (label `worker`, retired ones left out): RSS and event-loop lag p99 since the last scrape. */
export async function sampleWorkers(url: string): Promise<WorkerSample[]> {
  const response = await fetch(`${url}/metrics?scope=workers`, {
    headers: { Authorization: `Bearer ${SOAK_METRICS_TOKEN}` },
    signal: AbortSignal.timeout(5000),
  });
  const text = await response.text();
  const byWorker = new Map<string, WorkerSample>();
  for (const line of text.split('\n')) {
    const match =
      /^(process_resident_memory_bytes|nodejs_eventloop_lag_p99_seconds|nodejs_heap_size_total_bytes|nodejs_heap_size_used_bytes|nodejs_external_memory_bytes)\{(?:[^}]*,)?worker="([^"]+)"[^}]*\} (\S+)$/.exec(
        line,
      );
    if (!match || match[2] === 'retired') continue;
    const worker = match[2]!;
    const entry = byWorker.get(worker) ?? {
      worker,
      rssMb: NaN,
      lagP99Ms: NaN,
      heapTotalMb: NaN,
      heapUsedMb: NaN,
      externalMb: NaN,
    };
    const mb = Math.round(Number(match[3]) / 1e6);
    if (match[1] === 'process_resident_memory_bytes') entry.rssMb = mb;
    else if (match[1] === 'nodejs_heap_size_total_bytes') entry.heapTotalMb = mb;
    else if (match[1] === 'nodejs_heap_size_used_bytes') entry.heapUsedMb = mb;
    else if (match[1] === 'nodejs_external_memory_bytes') entry.externalMb = mb;
    else entry.lagP99Ms = Math.round(Number(match[3]) * 1000);
    byWorker.set(worker, entry);
  }
  return [...byWorker.values()];
}

/**
 * Resumes replayed, by kind, over the installation's life (retired workers included):
 * `pulseboard_replays_total` (`memory`: from a worker's memory, `client`: from the log, `gap`: a worker's
 * own gap fill).
 */
export async function replaysByKind(url: string): Promise<Record<string, number>> {
  const response = await fetch(`${url}/metrics`, {
    headers: { Authorization: `Bearer ${SOAK_METRICS_TOKEN}` },
    signal: AbortSignal.timeout(5000),
  });
  const byKind: Record<string, number> = {};
  for (const line of (await response.text()).split('\n')) {
    const match = /^pulseboard_replays_total\{(?:[^}]*,)?kind="([^"]+)"[^}]*\} (\S+)$/.exec(line);
    if (match) byKind[match[1]!] = (byKind[match[1]!] ?? 0) + Number(match[2]);
  }
  return byKind;
}
