// The worker's users, sessions and boards (docs/security.md): the stores, the first admin, the board
// registry, control messages between workers, the watch that narrows or ends streams of changed users,
// and the stream quota. Part of startPulseboard (server/pulseboard.ts).
import type { RedisNames } from '../shared/keys.ts';
import { boardsVisibleTo, type BoardRegistry } from './auth/boards.ts';
import { ensureFirstAdmin } from './auth/first-admin.ts';
import { resolveSessionKeys } from './auth/session-keys.ts';
import { StreamQuota } from './auth/stream-quota.ts';
import { startStreamSessionWatch } from './auth/stream-sessions.ts';
import { FIRST_ADMIN_NAME, UserStore } from './auth/users.ts';
import { subscribeControl, type VisibleBoardsOf } from './bus/control.ts';
import type { IngestMetrics } from './bus/ingest-metrics.ts';
import type { Config } from './config.ts';
import type { Logger } from './log.ts';
import type { RedisClient } from './redis.ts';
import type { Hub } from './sse/hub.ts';

export interface AccessOptions {
  config: Config;
  log: Logger;
  redis: RedisClient;
  /** The request path's view of the command connection (server/redis.ts, withRequestDeadline). */
  requestRedis: RedisClient;
  subscriber: RedisClient;
  names: RedisNames;
  hub: Hub;
  ingestMetrics: IngestMetrics;
  /** The worker's board registry (created earlier: the public status pages use it). */
  boards: BoardRegistry;
  /** The public status pages: started once the registry listens. */
  publicStatus: { start(subscriber: RedisClient): Promise<void>; stop(): Promise<void> };
  /** What a failed start must undo (server/pulseboard.ts). */
  undo: (() => unknown)[];
}

export type Access = Awaited<ReturnType<typeof startAccess>>;

export async function startAccess(options: AccessOptions) {
  const { config, log, redis, requestRedis, subscriber, hub, ingestMetrics, boards, publicStatus, undo } =
    options;
  const sequencer = { names: options.names };
  const users = new UserStore(requestRedis, sequencer.names);
  const sessionKeys = await resolveSessionKeys(redis, sequencer.names, config.SESSION_KEYS, log);
  const firstAdmin = await ensureFirstAdmin(users, config.PULSEBOARD_ADMIN_PASSWORD);
  if (firstAdmin.generatedPassword) {
    // Shown once, by the one worker that created the user; only the hash is kept.
    log.warn(
      { username: FIRST_ADMIN_NAME, password: firstAdmin.generatedPassword },
      'no users yet: created the admin user with this random password (shown once; change it with `pulseboard user passwd admin`)',
    );
  } else if (firstAdmin.created) {
    log.info(
      { username: FIRST_ADMIN_NAME },
      'no users yet: created the admin user from PULSEBOARD_ADMIN_PASSWORD',
    );
  }
  await boards.listen(subscriber);
  undo.push(() => boards.stop());
  await publicStatus.start(subscriber);
  undo.push(() => publicStatus.stop());
  await boards.refresh();
  // What users may see now, from their records (read fresh) and the registry: streams are narrowed to it.
  const visibleBoardsOf: VisibleBoardsOf = async (userNames) => {
    const [records, existing] = await Promise.all([users.getMany(userNames), boards.names()]);
    return new Map(
      [...records].map(([name, record]) => [name, [...boardsVisibleTo(record, existing)].sort()]),
    );
  };
  const control = await subscribeControl({
    subscriber,
    names: sequencer.names,
    hub,
    log,
    visibleBoardsOf,
    // Board labels stay bounded by the boards that exist (docs/operations.md, "Metrics"): a removed
    // board's series goes, so boards created and removed over a worker's life do not pile up.
    onControl: (message) => {
      if (message.type === 'board-removed') ingestMetrics.boardEvents.remove({ board: message.board });
    },
  });
  undo.push(() => control.stop());
  const streamSessions = startStreamSessionWatch({
    hub,
    redis,
    names: sequencer.names,
    users,
    log,
    intervalMs: config.SESSION_CHECK_MS,
    visibleBoardsOf,
  });
  undo.push(() => streamSessions.stop());
  const streamQuota = new StreamQuota({
    redis: requestRedis,
    names: sequencer.names,
    limit: config.MAX_STREAMS_PER_SESSION,
    log,
  });
  streamQuota.start();
  undo.push(() => streamQuota.stop());
  return { users, sessionKeys, control, streamSessions, streamQuota };
}
