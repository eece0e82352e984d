// Users in Redis (docs/design.md, "Sessions, users, security"): one hash `{prefix}:users`, name -> JSON record
// with the scrypt hash, the role, a security stamp and the boards granted (docs/security.md, "Boards and
// access"). The stamp changes on every password change and on re-creation, which ends every session issued
// before (sessions carry the stamp they were issued with). Grants live in the same record so the checks
// that already read it (session guard, stream session check) learn them in the same round trip.
import { randomBytes } from 'node:crypto';
import * as z from 'zod';
import { ROLES, type Role } from '../../shared/api.ts';
import { boardSchema, DEFAULT_BOARD } from '../../shared/boards.ts';
import { authNames, type RedisNames } from '../../shared/keys.ts';
import type { RedisClient } from '../redis.ts';
import {
  DEFAULT_SCRYPT,
  hashPassword,
  passwordProblem,
  verifyPassword,
  type ScryptParams,
} from './passwords.ts';

export const FIRST_ADMIN_NAME = 'admin';

/** Usernames are case-insensitive (kept lowercase) so `Alice` and `alice` are one user and one throttle key. */
const USERNAME = /^[a-z0-9][a-z0-9._@-]{0,63}$/;

const userRecordSchema = z.object({
  name: z.string(),
  role: z.enum(ROLES),
  hash: z.string(),
  stamp: z.string(),
  createdAt: z.number(),
  /** Boards granted to a viewer; absent in records made before boards, which count as `['main']`. */
  boards: z.array(boardSchema).optional(),
});
export type UserRecord = z.infer<typeof userRecordSchema>;

/** The boards granted to a user: its record's list, or `main` for a record from before boards. */
export function grantedBoards(user: { boards?: readonly string[] | undefined }): string[] {
  return user.boards ? [...user.boards] : [DEFAULT_BOARD];
}
/** What may leave the store: a user without the hash. */
export type PublicUser = Omit<UserRecord, 'hash'>;

/** A stored record; a corrupt one throws (an operator problem, not a login failure). */
export function parseUserRecord(raw: string): UserRecord {
  return userRecordSchema.parse(JSON.parse(raw));
}

/** Thrown for bad input to the user store (CLI and first-admin paths show its message). */
export class UserInputError extends Error {
  override readonly name = 'UserInputError';
}

/** Lowercases and checks a username; throws UserInputError naming the rule. */
export function normalizeUsername(raw: string): string {
  const name = raw.trim().toLowerCase();
  if (!USERNAME.test(name)) {
    throw new UserInputError(
      'username must be 1..64 of a-z 0-9 . _ @ - (starting with a letter or digit; case-insensitive)',
    );
  }
  return name;
}

/** Same as normalizeUsername but returns undefined instead of throwing (login must not reveal rules). */
export function tryNormalizeUsername(raw: string): string | undefined {
  try {
    return normalizeUsername(raw);
  } catch {
    return undefined;
  }
}

function newStamp(): string {
  return randomBytes(12).toString('base64url');
}

// Creates the first user only while the hash is empty, atomically: several workers may start at once.
const CREATE_IF_EMPTY = `
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0`;

export interface UserStoreOptions {
  /** scrypt parameters for new hashes. Default DEFAULT_SCRYPT. */
  scrypt?: ScryptParams;
}

export interface AddUserOptions {
  /** Cheaper parameters for this one hash (tests); stored with the hash, so verification stays honest. */
  scrypt?: ScryptParams;
  /** Boards granted from the start. Default none (`pulseboard board grant` adds them). */
  boards?: readonly string[];
}

// Replaces a record only if it is still the one read (compare and set): a grant must not undo a password
// change made meanwhile, nor bring back a user removed meanwhile.
const REPLACE_IF_UNCHANGED = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0`;

/** Attempts of a compare-and-set before giving up (only concurrent writers of one record retry). */
const CAS_ATTEMPTS = 10;

export class UserStore {
  private readonly redis: RedisClient;
  private readonly key: string;
  private readonly scrypt: ScryptParams;
  /** Hash checked for unknown usernames, so they cost as much as known ones (no enumeration by timing). */
  private dummyHash: Promise<string> | undefined;

  constructor(redis: RedisClient, names: RedisNames, options: UserStoreOptions = {}) {
    this.redis = redis;
    this.key = authNames(names.prefix).users;
    this.scrypt = options.scrypt ?? DEFAULT_SCRYPT;
  }

  /** The user's record, or undefined. A corrupt record throws: it is an operator problem, not a login failure. */
  async get(rawName: string): Promise<UserRecord | undefined> {
    const name = tryNormalizeUsername(rawName);
    if (name === undefined) return undefined;
    const raw = await this.redis.hGet(this.key, name);
    if (raw === null || raw === undefined) return undefined;
    return parseUserRecord(String(raw));
  }

  /** The Redis hash of the records, for scripts that read a record with other keys (stream admission). */
  get hashKey(): string {
    return this.key;
  }

  /** Records by name; used by the stream session check to validate many users in one round trip. */
  async getMany(names: readonly string[]): Promise<Map<string, UserRecord>> {
    const found = new Map<string, UserRecord>();
    if (names.length === 0) return found;
    const values = await this.redis.hmGet(this.key, [...names]);
    values.forEach((raw, index) => {
      const parsed = raw === null ? undefined : userRecordSchema.safeParse(JSON.parse(String(raw)));
      const name = names[index];
      if (parsed?.success && name !== undefined) found.set(name, parsed.data);
    });
    return found;
  }

  async list(): Promise<PublicUser[]> {
    const all = await this.redis.hGetAll(this.key);
    return Object.values(all)
      .map((raw) => userRecordSchema.parse(JSON.parse(String(raw))))
      .map(({ hash: _hash, ...user }) => user)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async count(): Promise<number> {
    return this.redis.hLen(this.key);
  }

  private async record(
    name: string,
    password: string,
    role: Role,
    params: ScryptParams,
  ): Promise<UserRecord> {
    const problem = passwordProblem(password);
    if (problem) throw new UserInputError(problem);
    return {
      name,
      role,
      hash: await hashPassword(password, params),
      stamp: newStamp(),
      createdAt: Date.now(),
    };
  }

  /** Adds a user; throws UserInputError when the name is taken or invalid. */
  async add(
    rawName: string,
    password: string,
    role: Role,
    options: AddUserOptions = {},
  ): Promise<PublicUser> {
    const name = normalizeUsername(rawName);
    const record = {
      ...(await this.record(name, password, role, options.scrypt ?? this.scrypt)),
      boards: [...new Set(options.boards ?? [])].sort(),
    };
    const added = await this.redis.hSetNX(this.key, name, JSON.stringify(record));
    if (!added) throw new UserInputError(`user ${name} already exists`);
    const { hash: _hash, ...user } = record;
    return user;
  }

  /** Sets a new password and a new stamp, which ends every session of the user. */
  async setPassword(rawName: string, password: string): Promise<void> {
    const existing = await this.get(rawName);
    if (!existing) throw new UserInputError(`no user ${rawName}`);
    const problem = passwordProblem(password);
    if (problem) throw new UserInputError(problem);
    const updated: UserRecord = {
      ...existing,
      hash: await hashPassword(password, this.scrypt),
      stamp: newStamp(),
    };
    await this.redis.hSet(this.key, existing.name, JSON.stringify(updated));
  }

  /**
   * Changes a user's granted boards with `change` (given the current grants, `['main']` for a record from
   * before boards); returns the new list. Throws UserInputError when there is no such user.
   */
  async updateBoards(rawName: string, change: (boards: string[]) => string[]): Promise<string[]> {
    const name = tryNormalizeUsername(rawName);
    for (let attempt = 0; name !== undefined && attempt < CAS_ATTEMPTS; attempt += 1) {
      const raw = await this.redis.hGet(this.key, name);
      if (raw === null || raw === undefined) break;
      const current = userRecordSchema.parse(JSON.parse(String(raw)));
      const boards = [...new Set(change(grantedBoards(current)))].sort();
      const updated: UserRecord = { ...current, boards };
      const replaced = await this.redis.eval(REPLACE_IF_UNCHANGED, {
        keys: [this.key],
        arguments: [name, String(raw), JSON.stringify(updated)],
      });
      if (replaced === 1) return boards;
    }
    if (name === undefined || !(await this.get(name))) throw new UserInputError(`no user ${rawName}`);
    throw new Error(`the record of user ${name} kept changing; try again`);
  }

  /** Takes `board` out of every user's grants (a removed board); returns the names of those who had it. */
  async revokeBoardFromAll(board: string): Promise<string[]> {
    const all = await this.redis.hGetAll(this.key);
    const holders: string[] = [];
    for (const raw of Object.values(all)) {
      const parsed = userRecordSchema.safeParse(JSON.parse(String(raw)));
      if (!parsed.success || !grantedBoards(parsed.data).includes(board)) continue;
      try {
        await this.updateBoards(parsed.data.name, (boards) => boards.filter((name) => name !== board));
        holders.push(parsed.data.name);
      } catch (error) {
        if (!(error instanceof UserInputError)) throw error; // removed meanwhile: nothing to revoke
      }
    }
    return holders;
  }

  /** Removes a user; false when there was none. */
  async remove(rawName: string): Promise<boolean> {
    const name = tryNormalizeUsername(rawName);
    if (name === undefined) return false;
    return (await this.redis.hDel(this.key, name)) === 1;
  }

  /**
   * Checks a login. Unknown users are verified against a dummy hash with the default parameters, so
   * both failures take about the same time and answer alike.
   */
  async verifyCredentials(rawName: string, password: string): Promise<UserRecord | undefined> {
    const user = await this.get(rawName);
    if (user) return (await verifyPassword(password, user.hash)) ? user : undefined;
    this.dummyHash ??= hashPassword(randomBytes(16).toString('hex'), this.scrypt);
    await verifyPassword(password, await this.dummyHash);
    return undefined;
  }

  /**
   * First start (docs/design.md): with no users at all, creates `admin` with `password`. Returns whether this
   * call created it; false when any user exists (or another worker won the race).
   */
  async createFirstAdmin(password: string): Promise<boolean> {
    if ((await this.count()) > 0) return false;
    const record = await this.record(FIRST_ADMIN_NAME, password, 'admin', this.scrypt);
    const created = await this.redis.eval(CREATE_IF_EMPTY, {
      keys: [this.key],
      arguments: [FIRST_ADMIN_NAME, JSON.stringify(record)],
    });
    return created === 1;
  }
}
