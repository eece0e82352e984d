// Messages between a tab and the stream hub (in the SharedWorker, or in the tab itself as a fallback).
// Parsed on receipt like every other boundary: a port delivers whatever any same-origin script posts.
import * as z from 'zod';
import { envelopeSchema, streamIdSchema } from '../../shared/events.ts';
import { MAX_TOPICS } from '../../shared/topics.ts';

export const STREAM_STATES = ['connecting', 'live', 'reconnecting'] as const;

/** Topic patterns of one tab; null means every topic. */
const topicsSchema = z.array(z.string().min(1).max(80)).max(MAX_TOPICS).nullable();

export const tabMessageSchema = z.discriminatedUnion('type', [
  /** Start (or change) this tab's subscription: events after `since` that match `topics`. */
  z.object({ type: z.literal('subscribe'), topics: topicsSchema, since: streamIdSchema }),
  /** The user logged out in this tab: close the stream and send every tab to the login page. */
  z.object({ type: z.literal('logout') }),
  /** The tab is going away. */
  z.object({ type: z.literal('bye') }),
]);
export type TabMessage = z.infer<typeof tabMessageSchema>;

export const hubMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('state'), state: z.enum(STREAM_STATES) }),
  z.object({ type: z.literal('events'), events: z.array(envelopeSchema) }),
  /** The server no longer has the history to resume from: refetch the snapshot and subscribe again. */
  z.object({ type: z.literal('reset') }),
  /** The session is gone (expired, or logged out elsewhere). */
  z.object({ type: z.literal('unauthorized') }),
  /** The user logged out in another tab. */
  z.object({ type: z.literal('loggedOut') }),
]);
export type HubMessage = z.infer<typeof hubMessageSchema>;
