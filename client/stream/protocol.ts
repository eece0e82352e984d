// Messages between a tab and the stream hub (in the SharedWorker, or in the tab itself as a fallback).
// Parsed on receipt like every other boundary: a port delivers whatever any same-origin script posts.
import * as z from 'zod';
import { boardSchema, MAX_BOARDS_PER_STREAM } from '../../shared/boards.ts';
import { envelopeSchema, streamIdSchema } from '../../shared/events.ts';
import { MAX_TOPICS } from '../../shared/topics.ts';

export const STREAM_STATES = ['connecting', 'live', 'reconnecting'] as const;

/** Topic patterns of one tab; null means every topic. */
const topicsSchema = z.array(z.string().min(1).max(80)).max(MAX_TOPICS).nullable();

/**
 * A board a tab shows, and the id its snapshot of that board was read at: events after it are delivered
 * exactly once. `since: null` (the overview, which reads no snapshot) means "from now on".
 */
export const boardSubscriptionSchema = z.object({ board: boardSchema, since: streamIdSchema.nullable() });
export type BoardSubscription = z.infer<typeof boardSubscriptionSchema>;

export const tabMessageSchema = z.discriminatedUnion('type', [
  /** Start (or change) this tab's subscription: events of `boards` after each one's `since`, on `topics`. */
  z.object({
    type: z.literal('subscribe'),
    boards: z.array(boardSubscriptionSchema).max(MAX_BOARDS_PER_STREAM),
    topics: topicsSchema,
  }),
  /** The user logged out in this tab: close the stream and send every tab to the login page. */
  z.object({ type: z.literal('logout') }),
  /** The tab is going away. */
  z.object({ type: z.literal('bye') }),
  /**
   * The tab woke up (phone resumed, back online, shown after a long while) and the stream looks stale:
   * reopen it from the positions it has, as a dead connection may not have noticed it is dead.
   */
  z.object({ type: z.literal('reconnect') }),
]);
export type TabMessage = z.infer<typeof tabMessageSchema>;

export const hubMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('state'), state: z.enum(STREAM_STATES) }),
  /**
   * The stream brought something (an event of any tab, a heartbeat, a (re)open) at `receivedAt` (epoch
   * ms; the worker and its tabs share a clock). Sent at most about once a second, and to a tab that
   * joins a live stream; `heartbeatMs` is the server's heartbeat period, once a heartbeat told it.
   */
  z.object({
    type: z.literal('alive'),
    receivedAt: z.number().nonnegative(),
    heartbeatMs: z.number().int().positive().max(3_600_000).optional(),
  }),
  z.object({ type: z.literal('events'), events: z.array(envelopeSchema) }),
  /** The server no longer has this board's history to resume from: refetch its snapshot, subscribe again. */
  z.object({ type: z.literal('reset'), board: boardSchema }),
  /** These boards left the stream (access revoked, board removed): the tab no longer gets their events. */
  z.object({ type: z.literal('boardsRemoved'), boards: z.array(boardSchema) }),
  /** The session is gone (expired, or logged out elsewhere). */
  z.object({ type: z.literal('unauthorized') }),
  /** The user logged out in another tab. */
  z.object({ type: z.literal('loggedOut') }),
]);
export type HubMessage = z.infer<typeof hubMessageSchema>;
