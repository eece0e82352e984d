// API tokens for `POST /api/publish` (docs/design.md): created by an admin with `pulseboard token create`,
// shown once, stored only as SHA-256 (a token is 256 random bits, so a fast hash is enough: nothing to
// brute-force), revocable, optionally limited to boards (docs/security.md, "Boards and access").
// Hash `{prefix}:api-tokens`: sha256(token) -> JSON record.
import { createHash, randomBytes } from 'node:crypto';
import * as z from 'zod';
import { boardSchema } from '../../shared/boards.ts';
import { authNames, type RedisNames } from '../../shared/keys.ts';
import type { RedisClient } from '../redis.ts';

export const TOKEN_PREFIX = 'pb_';
export const TOKEN_ROLES = ['publisher'] as const;
export type TokenRole = (typeof TOKEN_ROLES)[number];

const TOKEN_NAME = /^[A-Za-z0-9._-]{1,64}$/;
/** `pb_` + 43 base64url characters (32 bytes). */
const TOKEN_SHAPE = /^pb_[A-Za-z0-9_-]{43}$/;

const tokenRecordSchema = z.object({
  id: z.string(),
  name: z.string(),
  role: z.enum(TOKEN_ROLES),
  createdAt: z.number(),
  /** The boards this token may publish to; absent: every board (tokens from before boards). */
  boards: z.array(boardSchema).min(1).optional(),
});
export type TokenRecord = z.infer<typeof tokenRecordSchema>;

/** Whether a token may publish to `board`. */
export function tokenAllowsBoard(record: Pick<TokenRecord, 'boards'>, board: string): boolean {
  return record.boards === undefined || record.boards.includes(board);
}

export class TokenInputError extends Error {
  override readonly name = 'TokenInputError';
}

function digest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export class TokenStore {
  private readonly redis: RedisClient;
  private readonly key: string;

  constructor(redis: RedisClient, names: RedisNames) {
    this.redis = redis;
    this.key = authNames(names.prefix).apiTokens;
  }

  private async entries(): Promise<[string, TokenRecord][]> {
    const all = await this.redis.hGetAll(this.key);
    return Object.entries(all).map(([hash, raw]) => [hash, tokenRecordSchema.parse(JSON.parse(String(raw)))]);
  }

  async list(): Promise<TokenRecord[]> {
    return (await this.entries()).map(([, record]) => record).sort((a, b) => a.createdAt - b.createdAt);
  }

  /**
   * Creates a token; returns the secret (shown once) and its record. Names are unique. `boards` limits it
   * to those boards (the caller checks they exist); none: every board.
   */
  async create(
    name: string,
    role: TokenRole = 'publisher',
    boards: readonly string[] = [],
  ): Promise<{ token: string; record: TokenRecord }> {
    if (!TOKEN_NAME.test(name)) throw new TokenInputError('token name must be 1..64 of A-Z a-z 0-9 . _ -');
    for (const board of boards) {
      if (!boardSchema.safeParse(board).success)
        throw new TokenInputError(`board ${JSON.stringify(board)}: must be 1..64 of a-z 0-9 -`);
    }
    if ((await this.list()).some((record) => record.name === name)) {
      throw new TokenInputError(`a token named ${name} already exists`);
    }
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const record: TokenRecord = {
      id: randomBytes(6).toString('hex'),
      name,
      role,
      createdAt: Date.now(),
      ...(boards.length > 0 ? { boards: [...new Set(boards)].sort() } : {}),
    };
    await this.redis.hSet(this.key, digest(token), JSON.stringify(record));
    return { token, record };
  }

  /** Revokes the tokens whose name or id is `nameOrId`; returns how many. */
  async revoke(nameOrId: string): Promise<number> {
    const matching = (await this.entries()).filter(
      ([, record]) => record.name === nameOrId || record.id === nameOrId,
    );
    if (matching.length === 0) return 0;
    return this.redis.hDel(
      this.key,
      matching.map(([hash]) => hash),
    );
  }

  /**
   * Takes a removed board out of the tokens limited to it, so a board created later under the same name
   * does not inherit them. A token left with no board is revoked: an empty limit must never read as "every
   * board". Returns the names of the tokens narrowed and revoked.
   */
  async removeBoard(board: string): Promise<{ narrowed: string[]; revoked: string[] }> {
    const narrowed: string[] = [];
    const revoked: string[] = [];
    for (const [hash, record] of await this.entries()) {
      if (!record.boards?.includes(board)) continue;
      const boards = record.boards.filter((name) => name !== board);
      if (boards.length === 0) {
        await this.redis.hDel(this.key, hash);
        revoked.push(record.name);
      } else {
        await this.redis.hSet(this.key, hash, JSON.stringify({ ...record, boards }));
        narrowed.push(record.name);
      }
    }
    return { narrowed, revoked };
  }

  /** The record of a presented token, or undefined when it is malformed, unknown or revoked. */
  async verify(token: string): Promise<TokenRecord | undefined> {
    if (!TOKEN_SHAPE.test(token)) return undefined;
    const raw = await this.redis.hGet(this.key, digest(token));
    if (raw === null || raw === undefined) return undefined;
    const parsed = tokenRecordSchema.safeParse(JSON.parse(String(raw)));
    return parsed.success ? parsed.data : undefined;
  }
}
