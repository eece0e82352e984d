// The SharedArrayBuffer every client thread of one driver process writes into (Int32 slots, Atomics).
import { HISTOGRAM_SLOTS } from './histogram.ts';

/** Event frames received, duplicates included. */
export const DELIVERIES = 0;
/** When the last event frame arrived, ms after the run's epoch. */
export const LAST_RECEIVE_MS = 1;
/** Streams currently open (answered 200). */
export const OPEN = 2;
/** Streams the server closed or broke that the client reopened with Last-Event-ID. */
export const RECONNECTS = 3;
/** Failed connection attempts (refused, non-200, reset before headers). */
export const ERRORS = 4;
/** Storm: clients whose reopened stream delivered an event published after the drop. */
export const RESUMED = 5;
/** Every event frame, warm-up ones included: the drain watches it to tell a slow server from a stalled one. */
export const FRAMES = 6;
export const LATENCY_OFFSET = 8;
export const LAG_OFFSET = LATENCY_OFFSET + HISTOGRAM_SLOTS;
export const SLOT_COUNT = LAG_OFFSET + HISTOGRAM_SLOTS;
