// Control messages between workers on `<prefix>:control` (docs/design.md, "SSE stream"): logout closes a
// session's streams, user removal or a password change closes a user's streams, a changed grant or a
// removed board narrows the streams that carry it (docs/events.md, "Boards"), on every worker of every
// host. Pub/sub is at-most-once: a message lost while a worker's subscriber reconnects is covered by the
// periodic stream session check (server/auth/stream-sessions.ts), which sees the session gone and
// narrows streams to the boards their user may still see.
import * as z from 'zod';
import { boardSchema } from '../../shared/boards.ts';
import type { RedisNames } from '../../shared/keys.ts';
import type { Logger } from '../log.ts';
import type { RedisClient } from '../redis.ts';
import type { Hub } from '../sse/hub.ts';

export const controlMessageSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('close-session'), sessionHandle: z.string().min(1).max(128) }),
  z.strictObject({ type: z.literal('close-user'), userName: z.string().min(1).max(64) }),
  // A user's board grants changed (docs/events.md, "Boards"): their streams lose the boards no longer granted.
  z.strictObject({ type: z.literal('access-changed'), userName: z.string().min(1).max(64) }),
  // A board was removed: no stream carries it any more.
  z.strictObject({ type: z.literal('board-removed'), board: boardSchema }),
  // A board was created or retitled: workers refresh what they know of the board list.
  z.strictObject({ type: z.literal('boards-changed') }),
  // A board's public status page was turned on, off or changed (docs/status-pages.md).
  z.strictObject({ type: z.literal('public-changed'), board: boardSchema }),
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

/**
 * The boards each user may see now (admin: every existing board; others: the granted ones that exist);
 * a user missing from the answer no longer exists.
 */
export type VisibleBoardsOf = (
  userNames: readonly string[],
) => Promise<ReadonlyMap<string, readonly string[]>>;

/** Takes from a user's streams the boards they may no longer see; closes them all when the user is gone. */
export async function narrowUserStreams(
  hub: Hub,
  visibleBoardsOf: VisibleBoardsOf,
  userNames: readonly string[],
): Promise<number> {
  if (userNames.length === 0) return 0;
  const visible = await visibleBoardsOf(userNames);
  const closed = hub.closeWhere(
    (connection) =>
      connection.userName !== undefined &&
      userNames.includes(connection.userName) &&
      !visible.has(connection.userName),
    'logout',
  );
  return (
    closed +
    hub.narrowWhere((connection) => {
      const boards = connection.userName === undefined ? undefined : visible.get(connection.userName);
      return boards === undefined ? undefined : connection.boards.filter((board) => !boards.includes(board));
    })
  );
}

/**
 * A worker of the previous release (still running during a rolling `pm2 reload`) names the session handle
 * `sessionId` in `close-session`; read it as `sessionHandle` so its logouts still close streams here.
 */
function fromEarlierRelease(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const { type, sessionId, ...rest } = value as Record<string, unknown>;
  if (type !== 'close-session' || sessionId === undefined || 'sessionHandle' in rest) return value;
  return { type, sessionHandle: sessionId, ...rest };
}

/** Closes or narrows this worker's streams that a control message names; returns how many. */
export async function applyControl(
  hub: Hub,
  message: ControlMessage,
  visibleBoardsOf: VisibleBoardsOf,
): Promise<number> {
  switch (message.type) {
    case 'close-session':
      return hub.closeWhere((connection) => connection.sessionHandle === message.sessionHandle, 'logout');
    case 'close-user':
      return hub.closeWhere((connection) => connection.userName === message.userName, 'logout');
    case 'access-changed':
      if (hub.count((connection) => connection.userName === message.userName) === 0) return 0;
      return narrowUserStreams(hub, visibleBoardsOf, [message.userName]);
    case 'board-removed':
      return hub.dropBoard(message.board);
    case 'boards-changed':
    case 'public-changed':
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
  /** What users may see now, for `access-changed`. */
  visibleBoardsOf: VisibleBoardsOf;
  /** Also told every valid message, after the hub (e.g. the board registry cache, on `boards-changed`). */
  onControl?: (message: ControlMessage) => void;
}): Promise<ControlSubscription> {
  const { subscriber, names, hub, log } = options;
  const listener = (raw: string) => {
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      value = undefined;
    }
    const parsed = controlMessageSchema.safeParse(fromEarlierRelease(value));
    if (!parsed.success) {
      log.warn({ channel: names.controlChannel }, 'ignored an invalid control message');
      return;
    }
    const message = parsed.data;
    options.onControl?.(message);
    applyControl(hub, message, options.visibleBoardsOf).then(
      (changed) => {
        if (changed > 0)
          log.info({ control: message.type, changed }, 'closed or narrowed streams on a control message');
      },
      // Redis away while reading the user: the periodic stream session check narrows instead.
      (error: unknown) => log.warn({ err: error, control: message.type }, 'control message not applied'),
    );
  };
  await subscriber.subscribe(names.controlChannel, listener);
  return {
    async stop() {
      if (subscriber.isOpen) await subscriber.unsubscribe(names.controlChannel, listener);
    },
  };
}
