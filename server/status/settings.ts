// A worker's view of which boards have a public status page (docs/status-pages.md, "Turning it on"). Read
// from Redis on demand and kept for a few seconds; a `public-changed` or `board-removed` control message
// drops a board's entry at once and tells the public hub, so a page turned off or a service taken out
// takes effect on open streams within a second. The cache is bounded: names probed by anyone on the
// internet must not grow it.
import type { RedisNames } from '../../shared/keys.ts';
import type { PublicSettings } from '../../shared/status-page.ts';
import { readPublicSettings } from '../auth/boards.ts';
import { controlMessageSchema } from '../bus/control.ts';
import type { Logger } from '../log.ts';
import type { RedisClient } from '../redis.ts';

/** Most boards whose answer (public or not) a worker remembers. */
const MAX_CACHED_BOARDS = 1000;

interface CachedSettings {
  settings: PublicSettings | undefined;
  readAt: number;
}

export interface PublicSettingsCacheOptions {
  redis: Pick<RedisClient, 'get'>;
  names: RedisNames;
  log?: Logger;
  /**
   * How long an answer is trusted without a control message, in ms: bounds how long a lost message
   * (pub/sub is at most once) leaves a change unseen. Default 5000.
   */
  maxAgeMs?: number;
}

export class PublicSettingsCache {
  private readonly options: PublicSettingsCacheOptions;
  private readonly cached = new Map<string, CachedSettings>();
  private readonly reading = new Map<string, Promise<PublicSettings | undefined>>();
  private unsubscribe: (() => Promise<void>) | undefined;

  constructor(options: PublicSettingsCacheOptions) {
    this.options = options;
  }

  /** The board's settings when its page is on; undefined when off, unknown or never created. */
  async get(board: string): Promise<PublicSettings | undefined> {
    const entry = this.cached.get(board);
    if (entry && Date.now() - entry.readAt < (this.options.maxAgeMs ?? 5000)) return entry.settings;
    return this.read(board);
  }

  /** Reads the board's settings now (concurrent callers share the read). */
  read(board: string): Promise<PublicSettings | undefined> {
    const pending = this.reading.get(board);
    if (pending) return pending;
    const reading = readPublicSettings(this.options.redis, this.options.names, board)
      .then((settings) => {
        if (this.reading.get(board) === reading) this.remember(board, settings);
        return settings;
      })
      .finally(() => {
        if (this.reading.get(board) === reading) this.reading.delete(board);
      });
    this.reading.set(board, reading);
    return reading;
  }

  invalidate(board: string): void {
    this.cached.delete(board);
    this.reading.delete(board);
  }

  private remember(board: string, settings: PublicSettings | undefined): void {
    this.cached.delete(board);
    if (this.cached.size >= MAX_CACHED_BOARDS) {
      const oldest = this.cached.keys().next();
      if (!oldest.done) this.cached.delete(oldest.value);
    }
    this.cached.set(board, { settings, readAt: Date.now() });
  }

  /** Listens on the control channel; `onChange` hears every board whose page may have changed. */
  async listen(subscriber: RedisClient, onChange: (board: string) => void): Promise<void> {
    const channel = this.options.names.controlChannel;
    const listener = (raw: string) => {
      let value: unknown;
      try {
        value = JSON.parse(raw);
      } catch {
        return;
      }
      const parsed = controlMessageSchema.safeParse(value);
      if (!parsed.success) return;
      const message = parsed.data;
      if (message.type !== 'public-changed' && message.type !== 'board-removed') return;
      this.invalidate(message.board);
      onChange(message.board);
    };
    await subscriber.subscribe(channel, listener);
    this.unsubscribe = async () => {
      if (subscriber.isOpen) await subscriber.unsubscribe(channel, listener);
    };
  }

  async stop(): Promise<void> {
    await this.unsubscribe?.();
    this.unsubscribe = undefined;
  }
}
