// Per-event receive spread (docs/performance.md, "How it measures"): for every measured event, how many
// clients got it and the earliest, mean and latest publish-to-receive latency. Where the histogram says how
// late deliveries were, this says why: a late first delivery is a delay before the server writes; a wide
// first-to-last spread is the fan-out itself; a mean that grows event after event is a backlog.
// Int32 slots in a SharedArrayBuffer shared by a driver process's client threads, updated with Atomics.

/** Slots per event: clients that got it, sum of their latencies (ms), earliest latency + 1 (0: none yet), latest. */
const SLOTS_PER_EVENT = 4;
const COUNT = 0;
const SUM_MS = 1;
const FIRST_MS = 2;
const LAST_MS = 3;
const INT32_MAX = 0x7fff_ffff;

export class EventTimeline {
  constructor(readonly slots: Int32Array) {}

  /** A timeline for events numbered 0..maxSeq, in a new SharedArrayBuffer. */
  static create(maxSeq: number): EventTimeline {
    const bytes = (maxSeq + 1) * SLOTS_PER_EVENT * Int32Array.BYTES_PER_ELEMENT;
    return new EventTimeline(new Int32Array(new SharedArrayBuffer(bytes)));
  }

  /** One client received event `seq`, `latencyMs` after it was published. */
  record(seq: number, latencyMs: number): void {
    const base = seq * SLOTS_PER_EVENT;
    if (seq < 0 || base + SLOTS_PER_EVENT > this.slots.length) return;
    const ms = Math.max(0, Math.min(INT32_MAX - 1, Math.round(latencyMs)));
    Atomics.add(this.slots, base + COUNT, 1);
    // A sum of up to 12,500 clients' latencies per driver process: saturates instead of wrapping.
    if (Atomics.load(this.slots, base + SUM_MS) < INT32_MAX - ms) Atomics.add(this.slots, base + SUM_MS, ms);
    let first = Atomics.load(this.slots, base + FIRST_MS);
    while (first === 0 || ms + 1 < first) {
      const previous = Atomics.compareExchange(this.slots, base + FIRST_MS, first, ms + 1);
      if (previous === first) break;
      first = previous;
    }
    let last = Atomics.load(this.slots, base + LAST_MS);
    while (ms > last) {
      const previous = Atomics.compareExchange(this.slots, base + LAST_MS, last, ms);
      if (previous === last) break;
      last = previous;
    }
  }

  /** A plain copy of the slots (for merging across driver processes). */
  snapshot(): number[] {
    return Array.from(this.slots);
  }
}

/** Events `firstSeq..` as the clients of every driver process got them; null where no client got one. */
export interface EventSpread {
  /** Clients that received the event. */
  count: number[];
  /** Latency (ms) of the first client to receive it. */
  firstMs: (number | null)[];
  /** Mean latency (ms) over the clients that received it. */
  meanMs: (number | null)[];
  /** Latency (ms) of the last client to receive it. */
  lastMs: (number | null)[];
}

/** Adds the snapshots of several driver processes, for events `firstSeq..lastSeq`. */
export function mergeTimelines(
  snapshots: readonly number[][],
  firstSeq: number,
  lastSeq: number,
): EventSpread {
  const spread: EventSpread = { count: [], firstMs: [], meanMs: [], lastMs: [] };
  for (let seq = firstSeq; seq <= lastSeq; seq += 1) {
    const base = seq * SLOTS_PER_EVENT;
    let count = 0;
    let sum = 0;
    let first = Number.POSITIVE_INFINITY;
    let last = 0;
    for (const slots of snapshots) {
      const clients = slots[base + COUNT] ?? 0;
      if (clients === 0) continue;
      count += clients;
      sum += slots[base + SUM_MS] ?? 0;
      first = Math.min(first, (slots[base + FIRST_MS] ?? 1) - 1);
      last = Math.max(last, slots[base + LAST_MS] ?? 0);
    }
    spread.count.push(count);
    spread.firstMs.push(count === 0 ? null : first);
    spread.meanMs.push(count === 0 ? null : Math.round(sum / count));
    spread.lastMs.push(count === 0 ? null : last);
  }
  return spread;
}

/** The median of the known values, or null. */
export function medianOf(values: readonly (number | null)[]): number | null {
  const known = values.filter((value): value is number => value !== null).sort((a, b) => a - b);
  if (known.length === 0) return null;
  const middle = Math.floor(known.length / 2);
  return known.length % 2 === 1 ? known[middle]! : Math.round((known[middle - 1]! + known[middle]!) / 2);
}
