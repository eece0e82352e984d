// Public status pages of one worker (docs/status-pages.md): the settings cache, the public hub and the
// routes, built from the worker's connections. `startPulseboard` creates it, hands `hub` to the event bus
// (through `alsoDeliverTo`), starts it once the subscriber is connected and mounts `routes` in the app.
import { boardKeys, type RedisNames } from '../../shared/keys.ts';
import { statusEnvelopeSchema } from '../../shared/events.ts';
import type { PublicStatus } from '../../shared/status-page.ts';
import type { BoardRegistry } from '../auth/boards.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { RedisClient } from '../redis.ts';
import { publicStatusOf } from './frames.ts';
import { PublicStatusHub } from './hub.ts';
import { statusRoutes } from './route.ts';
import { PublicSettingsCache } from './settings.ts';

/** How often boards with open public streams have their settings re-read (a lost control message). */
const SETTINGS_CHECK_MS = 5000;

export interface PublicStatusOptions {
  /** The request path's Redis connection. */
  redis: RedisClient;
  names: RedisNames;
  boards: BoardRegistry;
  log: Logger;
  config: Pick<
    Config,
    'HEARTBEAT_MS' | 'SSE_MAX_BUFFER_BYTES' | 'SSE_RETRY_MS' | 'STATUS_RATE_PER_MINUTE' | 'STATUS_MAX_STREAMS'
  >;
}

export interface PublicStatusPages {
  hub: PublicStatusHub;
  settings: PublicSettingsCache;
  /** Koa middleware answering /status/*; `followBoards` is the bus's. */
  routes(followBoards: (boards: readonly string[]) => Promise<void>): ReturnType<typeof statusRoutes>;
  /** Listens for settings changes on the worker's subscriber connection; starts heartbeats. */
  start(subscriber: RedisClient): Promise<void>;
  /** Ends every public stream and stops listening. */
  stop(): Promise<void>;
}

/** The current states of `services` of `board`, public fields only, in the order asked. */
async function readStatuses(
  redis: RedisClient,
  names: RedisNames,
  board: string,
  services: readonly string[],
): Promise<PublicStatus[]> {
  if (services.length === 0) return [];
  const raw = await redis.hmGet(boardKeys(names.prefix, board).status, [...services]);
  const statuses: PublicStatus[] = [];
  for (const [index, value] of raw.entries()) {
    if (value === null || value === undefined) continue;
    let decoded: unknown;
    try {
      decoded = JSON.parse(String(value));
    } catch {
      continue;
    }
    const parsed = statusEnvelopeSchema.safeParse(decoded);
    // The hash is keyed by service; a value naming another one is not trusted.
    if (parsed.success && parsed.data.service === services[index]) statuses.push(publicStatusOf(parsed.data));
  }
  return statuses;
}

export function createPublicStatus(options: PublicStatusOptions): PublicStatusPages {
  const { redis, names, log, config } = options;
  const settings = new PublicSettingsCache({ redis, names, log });
  const read = (board: string, services: readonly string[]) => readStatuses(redis, names, board, services);
  const hub = new PublicStatusHub({
    readStatuses: read,
    readSettings: (board) => settings.read(board),
    heartbeatMs: config.HEARTBEAT_MS,
    maxBufferBytes: config.SSE_MAX_BUFFER_BYTES,
    log,
  });
  const refresh = (board: string) =>
    hub.refreshBoard(board).catch((error: unknown) => {
      log.warn({ err: error, board }, 'could not re-read public status settings');
    });
  let timer: NodeJS.Timeout | undefined;

  return {
    hub,
    settings,
    routes: (followBoards) =>
      statusRoutes({
        settings,
        hub,
        readStatuses: read,
        boardTitle: async (board) => (await options.boards.all()).get(board)?.title ?? board,
        followBoards,
        ratePerMinute: config.STATUS_RATE_PER_MINUTE,
        maxStreams: config.STATUS_MAX_STREAMS,
        retryMs: config.SSE_RETRY_MS,
      }),
    async start(subscriber) {
      await settings.listen(subscriber, (board) => void refresh(board));
      hub.startHeartbeats();
      timer = setInterval(() => {
        for (const board of hub.openBoards()) void refresh(board);
      }, SETTINGS_CHECK_MS);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      hub.stopHeartbeats();
      hub.closeAll();
      await settings.stop();
    },
  };
}
