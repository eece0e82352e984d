// JSON bodies of the HTTP API (docs/design.md, "Interfaces at a glance"), parsed by the browser and the tests.
import * as z from 'zod';
import { boardSchema, DEFAULT_BOARD } from './boards.ts';
import {
  STATUS_STATES,
  logEventEnvelopeSchema,
  metricEnvelopeSchema,
  nameSchema,
  statusEnvelopeSchema,
  streamIdSchema,
} from './events.ts';

export const ROLES = ['viewer', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** `POST /api/login` and `GET /api/session` answer this. */
export const sessionResponseSchema = z.object({
  user: z.object({ name: z.string(), role: z.enum(ROLES) }),
  csrfToken: z.string().min(16),
});
export type SessionResponse = z.infer<typeof sessionResponseSchema>;

/** Every error answer: `{ "error": { "code", "message", "field"? } }`. */
export const errorResponseSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), field: z.string().optional() }),
});
export type ErrorResponse = z.infer<typeof errorResponseSchema>;

/**
 * `GET /api/snapshot`: the current state, read consistently. A client renders it, then opens
 * `/events?since=<lastEventId>`; every event after `lastEventId` is then delivered exactly once.
 */
export const snapshotSchema = z.object({
  /** The board this snapshot is of (`GET /api/snapshot?board=`, default `main`). */
  board: boardSchema.default(DEFAULT_BOARD),
  /** Latest status per service. */
  statuses: z.array(statusEnvelopeSchema),
  /**
   * Recent points per metric series, oldest first. A list, not an object keyed by name: a metric may be
   * called `__proto__` or `constructor` (docs/security.md, "Hardening").
   */
  metrics: z.array(z.object({ name: nameSchema, points: z.array(metricEnvelopeSchema) })),
  /** Recent log events (`type: 'event'`), oldest first. */
  events: z.array(logEventEnvelopeSchema),
  /** Id of the newest entry in the board's log when the snapshot was read; `0-0` when empty. */
  lastEventId: streamIdSchema,
  /** Server time when the snapshot was read (epoch ms), to age `ttl`s against. */
  serverTime: z.number(),
});
export type Snapshot = z.infer<typeof snapshotSchema>;

/** `POST /api/publish` answers the ids given to the published events. */
export const publishResponseSchema = z.object({ ids: z.array(streamIdSchema) });

/** Worst first: a board shows the worst of its services' states (`down` > `degraded` > `maintenance` > `ok`). */
export const STATE_SEVERITY = ['down', 'degraded', 'maintenance', 'ok'] as const;

/** One board in `GET /api/boards`: its worst current status and how many services are in each state. */
export const boardSummarySchema = z.object({
  name: boardSchema,
  title: z.string(),
  /** Worst current status of the board's services; null while it has none. */
  state: z.enum(STATUS_STATES).nullable(),
  counts: z.object({
    ok: z.number().int().nonnegative(),
    degraded: z.number().int().nonnegative(),
    down: z.number().int().nonnegative(),
    maintenance: z.number().int().nonnegative(),
  }),
});
export type BoardSummary = z.infer<typeof boardSummarySchema>;

/** `GET /api/boards`: the boards the user may see, `main` first (when visible), then by name. */
export const boardsResponseSchema = z.object({ boards: z.array(boardSummarySchema) });
export type BoardsResponse = z.infer<typeof boardsResponseSchema>;
