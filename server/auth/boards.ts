// Boards and who may see them (docs/security.md, "Boards and access"; keys in docs/design.md, "Redis keys").
// A board exists once created (`pulseboard board add`): its meta hash `{<prefix>:<board>}:board` is what lets
// events in (the sequencing script checks it), and the registry hash `{<prefix>}:boards` lists it. `main`
// always exists and has neither. An admin sees every board; a viewer sees the boards granted in its user
// record that exist. Workers keep the registry in memory, re-read it on the control messages that change it
// and once on a miss, so a board created a moment ago on another host is never refused.
import * as z from 'zod';
import type { Role } from '../../shared/api.ts';
import { boardSchema, DEFAULT_BOARD } from '../../shared/boards.ts';
import { boardKeys, type RedisNames } from '../../shared/keys.ts';
import { publicSettingsSchema, type PublicSettings } from '../../shared/status-page.ts';
import { controlMessageSchema } from '../bus/control.ts';
import type { Logger } from '../log.ts';
import type { RedisClient } from '../redis.ts';
import { grantedBoards, type UserRecord } from './users.ts';

/** Title of `main`, which has no meta hash. */
export const MAIN_TITLE = 'Main';
/** Longest board title. */
export const MAX_TITLE_LENGTH = 200;

const registryEntrySchema = z.object({ title: z.string(), createdAt: z.number() });

export interface BoardInfo {
  name: string;
  title: string;
  /** Epoch ms; 0 for `main`. */
  createdAt: number;
}

/** Thrown for a bad board name or title, or a board that exists already or not at all (CLI shows it). */
export class BoardInputError extends Error {
  override readonly name = 'BoardInputError';
}

/** Checks a board name; throws BoardInputError naming the rule. */
export function parseBoardName(raw: string): string {
  const parsed = boardSchema.safeParse(raw);
  if (!parsed.success) throw new BoardInputError(`board ${JSON.stringify(raw)}: must be 1..64 of a-z 0-9 -`);
  return parsed.data;
}

function mainBoard(): BoardInfo {
  return { name: DEFAULT_BOARD, title: MAIN_TITLE, createdAt: 0 };
}

/** Decodes the registry hash; an entry that does not parse still names a board (title = its name). */
function fromRegistry(all: Record<string, string>): Map<string, BoardInfo> {
  const boards = new Map<string, BoardInfo>([[DEFAULT_BOARD, mainBoard()]]);
  for (const [name, raw] of Object.entries(all)) {
    if (!boardSchema.safeParse(name).success || name === DEFAULT_BOARD) continue;
    let entry: z.infer<typeof registryEntrySchema> | undefined;
    try {
      entry = registryEntrySchema.safeParse(JSON.parse(raw)).data;
    } catch {
      entry = undefined;
    }
    boards.set(name, { name, title: entry?.title ?? name, createdAt: entry?.createdAt ?? 0 });
  }
  return boards;
}

// KEYS: 1 meta hash. ARGV: 1 title, 2 createdAt. The registry entry (installation slot) follows in a
// second step (Redis Cluster cannot run one script across both slots).
const ADD_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'title', ARGV[1], 'createdAt', ARGV[2])
return 1`;

// KEYS: 1 meta, 2 log, 3 status, 4 metric index, 5 recent events, 6 public status settings, 7 annotations
// (all in the board's slot). ARGV: 1 series prefix, 2 history prefix (a series' rings: `<prefix>1m:<name>`,
// `…10m:<name>`). The meta goes first in the same atomic step, so no event can be sequenced into a
// half-removed board; the registry entry (installation slot) is removed after it (two steps on Redis
// Cluster).
const REMOVE_SCRIPT = `
local existed = redis.call('EXISTS', KEYS[1])
redis.call('DEL', KEYS[1])
for _, name in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  redis.call('UNLINK', ARGV[1] .. name, ARGV[2] .. '1m:' .. name, ARGV[2] .. '10m:' .. name)
end
redis.call('UNLINK', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7])
return existed`;

/** The boards of an installation in Redis: create, retitle, remove, list. */
export class BoardStore {
  private readonly redis: RedisClient;
  private readonly names: RedisNames;

  constructor(redis: RedisClient, names: RedisNames) {
    this.redis = redis;
    this.names = names;
  }

  /** Every board, `main` first, then by name. */
  async list(): Promise<BoardInfo[]> {
    const boards = fromRegistry(await this.redis.hGetAll(this.names.boards));
    return [...boards.values()].sort((a, b) =>
      a.name === DEFAULT_BOARD ? -1 : b.name === DEFAULT_BOARD ? 1 : a.name.localeCompare(b.name),
    );
  }

  async get(board: string): Promise<BoardInfo | undefined> {
    if (board === DEFAULT_BOARD) return mainBoard();
    const raw = await this.redis.hGet(this.names.boards, board);
    if (raw === null || raw === undefined) return undefined;
    return fromRegistry({ [board]: String(raw) }).get(board);
  }

  async exists(board: string): Promise<boolean> {
    return (
      board === DEFAULT_BOARD || (await this.redis.exists(boardKeys(this.names.prefix, board).meta)) === 1
    );
  }

  /** Creates a board; throws BoardInputError for `main`, a bad name or title, or a board that exists. */
  async add(rawName: string, title?: string): Promise<BoardInfo> {
    const name = parseBoardName(rawName);
    if (name === DEFAULT_BOARD) throw new BoardInputError('board main always exists; it cannot be added');
    const text = (title ?? name).trim();
    const control = [...text].some((char) => (char.codePointAt(0) ?? 0) < 0x20 || char === '\u007f');
    if (text.length === 0 || text.length > MAX_TITLE_LENGTH || control)
      throw new BoardInputError(`title: must be 1..${MAX_TITLE_LENGTH} characters, no control characters`);
    const info: BoardInfo = { name, title: text, createdAt: Date.now() };
    // Two steps, each in one slot (the board's, then the installation's), so it works on Redis Cluster.
    const added = await this.redis.eval(ADD_SCRIPT, {
      keys: [boardKeys(this.names.prefix, name).meta],
      arguments: [info.title, String(info.createdAt)],
    });
    if (added !== 1) throw new BoardInputError(`board ${name} already exists`);
    await this.redis.hSet(
      this.names.boards,
      name,
      JSON.stringify({ title: info.title, createdAt: info.createdAt }),
    );
    return info;
  }

  /**
   * Removes a board and every key of it (log, status, metric index, series and their history rings, recent
   * events, annotations, meta) and
   * its registry entry; false when there was no such board. Grants are the caller's (UserStore).
   */
  async remove(rawName: string): Promise<boolean> {
    const name = parseBoardName(rawName);
    if (name === DEFAULT_BOARD) throw new BoardInputError('board main cannot be removed');
    const keys = boardKeys(this.names.prefix, name);
    const existed = await this.redis.eval(REMOVE_SCRIPT, {
      keys: [
        keys.meta,
        keys.log,
        keys.status,
        keys.metricIndex,
        keys.recentEvents,
        keys.publicStatus,
        keys.annotations,
      ],
      arguments: [keys.metricPrefix, keys.historyPrefix],
    });
    const listed = await this.redis.hDel(this.names.boards, name);
    return Number(existed) + Number(listed) > 0;
  }

  /**
   * Turns the board's public status page on with these settings (docs/status-pages.md); throws
   * BoardInputError for a board that does not exist.
   */
  async setPublic(rawName: string, settings: Omit<PublicSettings, 'updatedAt'>): Promise<PublicSettings> {
    const name = parseBoardName(rawName);
    if (!(await this.exists(name))) throw new BoardInputError(`no board ${name}`);
    const parsed = publicSettingsSchema.safeParse({ ...settings, updatedAt: Date.now() });
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new BoardInputError(`${issue?.path.join('.') ?? 'settings'}: ${issue?.message ?? 'invalid'}`);
    }
    // Only while the board still exists: a concurrent `board remove` must not leave a page behind.
    const keys = boardKeys(this.names.prefix, name);
    const written = await this.redis.eval(SET_PUBLIC_SCRIPT, {
      keys: [keys.meta, keys.publicStatus],
      arguments: [name === DEFAULT_BOARD ? '1' : '0', JSON.stringify(parsed.data)],
    });
    if (written !== 1) throw new BoardInputError(`no board ${name}`);
    return parsed.data;
  }

  /** Turns the board's public status page off; false when it was not on. */
  async clearPublic(rawName: string): Promise<boolean> {
    const name = parseBoardName(rawName);
    return (await this.redis.del(boardKeys(this.names.prefix, name).publicStatus)) > 0;
  }

  /** The board's public settings; undefined when its page is off (or the stored value does not parse). */
  async getPublic(rawName: string): Promise<PublicSettings | undefined> {
    return readPublicSettings(this.redis, this.names, parseBoardName(rawName));
  }
}

// KEYS: 1 meta, 2 public settings. ARGV: 1 '1' for `main` (no meta), 2 settings JSON.
const SET_PUBLIC_SCRIPT = `
if ARGV[1] ~= '1' and redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
return 1`;

/** A board's public status settings from Redis; undefined when off or unreadable. */
export async function readPublicSettings(
  redis: Pick<RedisClient, 'get'>,
  names: RedisNames,
  board: string,
): Promise<PublicSettings | undefined> {
  const raw = await redis.get(boardKeys(names.prefix, board).publicStatus);
  if (raw === null || raw === undefined) return undefined;
  try {
    return publicSettingsSchema.safeParse(JSON.parse(String(raw))).data;
  } catch {
    return undefined;
  }
}

/** The user fields access depends on (a session's user, a stream's user). */
export interface BoardUser {
  role: Role;
  /** As in the user record: absent for a record from before boards (counts as `['main']`). */
  boards?: readonly string[] | undefined;
}

/** Boards a user may see, given the boards that exist: admin: all of them; viewer: granted ∩ existing. */
export function boardsVisibleTo(user: BoardUser, existing: ReadonlySet<string>): Set<string> {
  if (user.role === 'admin') return new Set(existing);
  return new Set(grantedBoards(user).filter((board) => existing.has(board)));
}

/** What a request for one board may get. */
export type BoardAccess = 'ok' | 'forbidden' | 'unknown';

export interface BoardRegistryOptions {
  redis: RedisClient;
  names: RedisNames;
  log?: Logger;
  /**
   * How long the list is trusted without a control message, in ms: covers one lost while the subscriber
   * reconnected (pub/sub is at most once). Default 10000.
   */
  maxAgeMs?: number;
}

/**
 * A worker's view of the registry: read once, then re-read on `boards-changed` / `board-removed` control
 * messages and on a miss (a board asked for and not known is re-read once before it is refused).
 */
export class BoardRegistry {
  private readonly options: BoardRegistryOptions;
  private boards: Map<string, BoardInfo> | undefined;
  private readAt = 0;
  private reading: Promise<Map<string, BoardInfo>> | undefined;
  /** Bumped by every invalidation: a read that started before it must not be kept. */
  private generation = 0;
  private unsubscribe: (() => Promise<void>) | undefined;

  constructor(options: BoardRegistryOptions) {
    this.options = options;
  }

  /** Re-reads the registry (concurrent callers share one read). */
  refresh(): Promise<Map<string, BoardInfo>> {
    if (this.reading) return this.reading;
    const generation = this.generation;
    const reading = this.options.redis
      .hGetAll(this.options.names.boards)
      .then((all) => {
        const boards = fromRegistry(all);
        if (generation === this.generation) {
          this.boards = boards;
          this.readAt = Date.now();
        }
        return boards;
      })
      .finally(() => {
        if (this.reading === reading) this.reading = undefined;
      });
    this.reading = reading;
    return reading;
  }

  /** Forgets what is known; the next question reads the registry again. */
  invalidate(): void {
    this.generation += 1;
    this.boards = undefined;
    this.reading = undefined;
  }

  /** Every board that exists, by name (`main` included). */
  async all(): Promise<ReadonlyMap<string, BoardInfo>> {
    const fresh = Date.now() - this.readAt < (this.options.maxAgeMs ?? 10_000);
    return (fresh ? this.boards : undefined) ?? (await this.refresh());
  }

  async names(): Promise<Set<string>> {
    return new Set((await this.all()).keys());
  }

  /** Whether a board exists; a board not known is looked up again once. */
  async has(board: string): Promise<boolean> {
    if (board === DEFAULT_BOARD) return true;
    if ((await this.all()).has(board)) return true;
    return (await this.refresh()).has(board);
  }

  /** The boards `user` may see, in name order (`main` among them when visible). */
  async visibleBoards(user: BoardUser): Promise<Set<string>> {
    const known = await this.all();
    const missing = user.role !== 'admin' && grantedBoards(user).some((board) => !known.has(board));
    // A granted board not known yet may have been created a moment ago on another host: read again once.
    const existing = missing ? await this.refresh() : known;
    return boardsVisibleTo(user, new Set(existing.keys()));
  }

  /**
   * Whether `user` may read `board`: `unknown` only for an admin asking for a board that does not exist
   * (404); a viewer gets `forbidden` for both, so board names do not leak (403).
   */
  async access(user: BoardUser, board: string): Promise<BoardAccess> {
    const exists = await this.has(board);
    if (user.role === 'admin') return exists ? 'ok' : 'unknown';
    return exists && boardsVisibleTo(user, new Set([board])).has(board) ? 'ok' : 'forbidden';
  }

  /** Listens on the control channel (the worker's subscriber connection) for registry changes. */
  async listen(subscriber: RedisClient): Promise<void> {
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
      if (parsed.data.type === 'boards-changed' || parsed.data.type === 'board-removed') {
        this.invalidate();
        this.refresh().catch((error: unknown) =>
          this.options.log?.warn({ err: error }, 'could not re-read the board registry'),
        );
      }
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

/** What boards-aware routes ask about users by name (the stream route, the stream session check). */
export interface UserBoards {
  /** The boards the user may see now; empty for a user that does not exist (any more). */
  visibleBoards(userName: string): Promise<Set<string>>;
}

export function userBoards(options: {
  users: { get(name: string): Promise<UserRecord | undefined> };
  registry: BoardRegistry;
}): UserBoards {
  return {
    async visibleBoards(userName) {
      const user = await options.users.get(userName);
      return user ? options.registry.visibleBoards(user) : new Set();
    },
  };
}
