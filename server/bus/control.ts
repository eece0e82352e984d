// Control messages between workers on `<prefix>:control` (docs/design.md, "SSE stream"): logout closes a
// session's streams, user removal or a password change closes a user's streams, on every worker of every
// host. Pub/sub is at-most-once: a message lost while a worker's subscriber reconnects is covered by the
// periodic stream session check (server/auth/stream-sessions.ts), which sees the session gone.
import * as z from 'zod';
import { boardSchema } from '../../shared/boards.ts';
import type { RedisNames } from '../../shared/keys.ts';
import type { Logger } from '../log.ts';
import type { RedisClient } from '../redis.ts';
import type { Hub } from '../sse/hub.ts';

export const controlMessageSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('close-session'), sessionId: z.string().min(1).max(128) }),
  z.strictObject({ type: z.literal('close-user'), userName: z.string().min(1).max(64) }),
  // A user's board grants changed (docs/events.md, "Boards"): their streams lose the boards no longer granted.
  z.strictObject({ type: z.literal('access-changed'), userName: z.string().min(1).max(64) }),
  // A board was removed: no stream carries it any more.
  z.strictObject({ type: z.literal('board-removed'), board: boardSchema }),
  // A board was created or retitled: workers refresh what they know of the board list.
  z.strictObject({ type: z.literal('boards-changed') }),
]);
export type ControlMessage = z.infer<typeof controlMessageSchema>;

/** The one Redis capability publishing needs; any node-redis client (server or CLI) has it. */
export interface ControlPublisher {
  publish(channel: string, message: string): Promise<number>;
}

export async function publishControl(
  redis: ControlPublisher,
  names: RedisNames,
  message: ControlMessage,
): Promise<void> {
  await redis.publish(names.controlChannel, JSON.stringify(controlMessageSchema.parse(message)));
}

/** Closes this worker's streams that a control message names; returns how many. */
export function applyControl(hub: Hub, message: ControlMessage): number {
  switch (message.type) {
    case 'close-session':
      return hub.closeWhere((connection) => connection.sessionId === message.sessionId, 'logout');
    case 'close-user':
      return hub.closeWhere((connection) => connection.userName === message.userName, 'logout');
    // Until streams track their boards, a change of access closes the streams it may concern; the
    // browser reconnects and is authorised again.
    case 'access-changed':
      return hub.closeWhere((connection) => connection.userName === message.userName, 'logout');
    case 'board-removed':
      return hub.closeWhere(() => true, 'logout');
    case 'boards-changed':
      return 0;
  }
}

export interface ControlSubscription {
  stop(): Promise<void>;
}

/** Subscribes the worker's subscriber connection to the control channel. */
export async function subscribeControl(options: {
  subscriber: RedisClient;
  names: RedisNames;
  hub: Hub;
  log: Logger;
}): Promise<ControlSubscription> {
  const { subscriber, names, hub, log } = options;
  const listener = (raw: string) => {
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      value = undefined;
    }
    const parsed = controlMessageSchema.safeParse(value);
    if (!parsed.success) {
      log.warn({ channel: names.controlChannel }, 'ignored an invalid control message');
      return;
    }
    const closed = applyControl(hub, parsed.data);
    if (closed > 0) log.info({ control: parsed.data.type, closed }, 'closed streams on a control message');
  };
  await subscriber.subscribe(names.controlChannel, listener);
  return {
    async stop() {
      if (subscriber.isOpen) await subscriber.unsubscribe(names.controlChannel, listener);
    },
  };
}
