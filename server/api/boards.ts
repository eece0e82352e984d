// `GET /api/boards` and the board checks of the other routes (docs/security.md, "Boards and access"):
// a board the user may not see, or that does not exist, is 403 `forbidden_board` for a viewer (names do not
// leak); an admin asking for a board that does not exist gets 404 `unknown_board`; a malformed name is 400.
import type { Context } from 'koa';
import { STATE_SEVERITY, type BoardSummary, type BoardsResponse } from '../../shared/api.ts';
import { boardSchema, DEFAULT_BOARD } from '../../shared/boards.ts';
import { statusEnvelopeSchema } from '../../shared/events.ts';
import { boardKeys, type RedisNames } from '../../shared/keys.ts';
import type { BoardRegistry, BoardUser } from '../auth/boards.ts';
import { getAuth } from '../auth/guard.ts';
import { AppError, UnauthorizedError, ValidationError } from '../http/errors.ts';
import type { RedisClient } from '../redis.ts';

/** 403: the user may not see this board (or, for a viewer, it does not exist). Nothing else is answered. */
export class ForbiddenBoardError extends AppError {
  constructor(board: string) {
    super(403, 'forbidden_board', `you may not see board ${board}`, { field: 'board' });
  }
}

/** 404, for admins only: the board does not exist. */
export class UnknownBoardError extends AppError {
  constructor(board: string) {
    super(404, 'unknown_board', `no board ${board}`, { field: 'board' });
  }
}

/** Parses a board name from the query (400 naming `field` when malformed); absent: `main`. */
export function boardParam(raw: unknown, field = 'board'): string {
  if (raw === undefined) return DEFAULT_BOARD;
  const parsed = boardSchema.safeParse(raw);
  if (!parsed.success) throw new ValidationError(`${field}: must be a board name: 1..64 of a-z 0-9 -`, field);
  return parsed.data;
}

/** The session's user as access sees it; 401 without a session. */
export function boardUserOf(ctx: Context): BoardUser & { name: string } {
  const auth = getAuth(ctx);
  if (!auth) throw new UnauthorizedError();
  return { name: auth.user.name, role: auth.user.role, boards: auth.boards };
}

/** Throws the 403 / 404 the user gets for `board`, or returns when they may read it. */
export async function requireBoardAccess(
  registry: BoardRegistry,
  user: BoardUser,
  board: string,
): Promise<void> {
  const access = await registry.access(user, board);
  if (access === 'forbidden') throw new ForbiddenBoardError(board);
  if (access === 'unknown') throw new UnknownBoardError(board);
}

/** A board's current status counts and worst state, from its status hash. */
export function summarize(name: string, title: string, statuses: readonly string[]): BoardSummary {
  const counts = { ok: 0, degraded: 0, down: 0, maintenance: 0 };
  for (const raw of statuses) {
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      continue;
    }
    const parsed = statusEnvelopeSchema.safeParse(value);
    if (parsed.success) counts[parsed.data.state] += 1;
  }
  const state = STATE_SEVERITY.find((candidate) => counts[candidate] > 0) ?? null;
  return { name, title, state, counts };
}

export interface BoardsRouteOptions {
  redis: RedisClient;
  names: RedisNames;
  registry: BoardRegistry;
}

/** `GET /api/boards`: the boards the user may see, each with its worst current state and counts. */
export function boardsRoute(options: BoardsRouteOptions) {
  const { redis, names, registry } = options;
  return async function listBoards(ctx: Context): Promise<void> {
    const user = boardUserOf(ctx);
    const visible = await registry.visibleBoards(user);
    const all = await registry.all();
    const boards = [...visible].sort((a, b) =>
      a === DEFAULT_BOARD ? -1 : b === DEFAULT_BOARD ? 1 : a.localeCompare(b),
    );
    // One HVALS per board, sent together (node-redis pipelines commands of one tick).
    const statuses = await Promise.all(
      boards.map((board) => redis.hVals(boardKeys(names.prefix, board).status)),
    );
    const body: BoardsResponse = {
      boards: boards.map((board, index) =>
        summarize(board, all.get(board)?.title ?? board, (statuses[index] ?? []).map(String)),
      ),
    };
    ctx.set('Cache-Control', 'no-store');
    ctx.body = body;
  };
}
