// Session expiry for open streams (docs/design.md, "SSE stream"): an SSE stream outlives the request that
// checked its session, so each worker re-checks the sessions of its open streams every SESSION_CHECK_MS
// and closes the streams whose session expired, was destroyed, or whose user was removed or changed
// password, and narrows the others to the boards their user may still see (docs/events.md, "Boards"). The
// same check covers a control message lost while the subscriber was reconnecting.
// An open stream does not extend its session: only requests roll it (documented in docs/security.md).
import type { RedisNames } from '../../shared/keys.ts';
import { narrowUserStreams, type VisibleBoardsOf } from '../bus/control.ts';
import type { Logger } from '../log.ts';
import type { RedisClient } from '../redis.ts';
import type { Hub } from '../sse/hub.ts';
import { readSessionsByHandle } from './sessions.ts';
import type { UserStore } from './users.ts';

export interface StreamSessionWatchOptions {
  hub: Hub;
  redis: RedisClient;
  names: RedisNames;
  users: UserStore;
  log: Logger;
  intervalMs: number;
  /** What users may see now: streams lose the boards no longer visible. */
  visibleBoardsOf: VisibleBoardsOf;
}

/** The handles of the sessions that still hold a live stream, out of `handles`. */
async function liveSessions(options: StreamSessionWatchOptions, handles: string[]): Promise<Set<string>> {
  const { redis, names, users } = options;
  const sessions = await readSessionsByHandle(redis, names, handles);
  const candidates = [...sessions].map(([handle, fields]) => ({
    handle,
    user: fields.user,
    stamp: fields.stamp,
  }));
  const records = await users.getMany([...new Set(candidates.map((candidate) => candidate.user))]);
  return new Set(
    candidates
      .filter((candidate) => records.get(candidate.user)?.stamp === candidate.stamp)
      .map((candidate) => candidate.handle),
  );
}

/**
 * One pass: closes this worker's streams whose session is no longer valid and narrows the others to the
 * boards their user may still see; returns how many streams changed.
 */
export async function closeStaleStreams(options: StreamSessionWatchOptions): Promise<number> {
  const { hub } = options;
  const handles = new Set<string>();
  // The hub has no iterator; count() visits every connection, which is what we need here.
  hub.count((connection) => {
    if (connection.sessionHandle !== undefined) handles.add(connection.sessionHandle);
    return false;
  });
  if (handles.size === 0) return 0;
  const live = await liveSessions(options, [...handles]);
  const closed = hub.closeWhere(
    (connection) => connection.sessionHandle !== undefined && !live.has(connection.sessionHandle),
    'logout',
  );
  const userNames = new Set<string>();
  hub.count((connection) => {
    if (connection.userName !== undefined) userNames.add(connection.userName);
    return false;
  });
  return closed + (await narrowUserStreams(hub, options.visibleBoardsOf, [...userNames]));
}

export interface StreamSessionWatch {
  stop(): void;
}

export function startStreamSessionWatch(options: StreamSessionWatchOptions): StreamSessionWatch {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    closeStaleStreams(options)
      .then((closed) => {
        if (closed > 0)
          options.log.info({ closed }, 'closed or narrowed streams of voided sessions or grants');
      })
      // Redis away: keep the streams (they get no events either) and try again next tick.
      .catch((error: unknown) => options.log.warn({ err: error }, 'stream session check failed'))
      .finally(() => {
        running = false;
      });
  }, options.intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
