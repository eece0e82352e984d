// The browser's side of the HTTP API (docs/design.md, "Interfaces at a glance"). Every answer is parsed with
// the shared schemas before use; a 401 is its own outcome because it sends the user to the login page.
import {
  errorResponseSchema,
  sessionResponseSchema,
  snapshotSchema,
  type SessionResponse,
  type Snapshot,
} from '../../shared/api.ts';
import type { AccessCheck } from '../stream/stream-hub.ts';
import { boardsResponseSchema, type BoardsResponse } from '../state/boards.ts';

export type Result<T> =
  { kind: 'ok'; value: T } | { kind: 'unauthorized' } | { kind: 'failed'; message: string };

export type LoginResult =
  | { kind: 'ok'; session: SessionResponse }
  | { kind: 'wrongCredentials'; message: string }
  | { kind: 'throttled'; retryAfterSeconds: number }
  | { kind: 'failed'; message: string };

const JSON_HEADERS = { Accept: 'application/json' };

async function errorMessage(response: Response): Promise<string> {
  try {
    const parsed = errorResponseSchema.safeParse(await response.json());
    if (parsed.success) return parsed.data.error.message;
  } catch {
    // Not JSON: a proxy's error page, say.
  }
  return `the server answered ${response.status} ${response.statusText}`.trim();
}

async function request(input: string, init: RequestInit): Promise<Response | string> {
  try {
    return await fetch(input, { credentials: 'same-origin', cache: 'no-store', ...init });
  } catch {
    return 'cannot reach the server';
  }
}

async function getJson<T>(path: string, parse: (value: unknown) => T | undefined): Promise<Result<T>> {
  return parseJson(await request(path, { headers: JSON_HEADERS }), parse);
}

async function parseJson<T>(
  response: Response | string,
  parse: (value: unknown) => T | undefined,
): Promise<Result<T>> {
  if (typeof response === 'string') return { kind: 'failed', message: response };
  if (response.status === 401) return { kind: 'unauthorized' };
  if (!response.ok) return { kind: 'failed', message: await errorMessage(response) };
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    return { kind: 'failed', message: 'the server sent a malformed answer' };
  }
  const value = parse(body);
  return value === undefined
    ? { kind: 'failed', message: 'the server sent an unexpected answer' }
    : { kind: 'ok', value };
}

export function fetchSession(): Promise<Result<SessionResponse>> {
  return getJson('/api/session', (body) => sessionResponseSchema.safeParse(body).data);
}

/** A board's snapshot, or why not: the user may not see the board (403), or it does not exist (404). */
export type SnapshotResult = Result<Snapshot> | { kind: 'forbidden' | 'unknownBoard'; message: string };

export async function fetchSnapshot(board: string): Promise<SnapshotResult> {
  const path = `/api/snapshot?${new URLSearchParams({ board }).toString()}`;
  const response = await request(path, { headers: JSON_HEADERS });
  if (typeof response !== 'string' && (response.status === 403 || response.status === 404)) {
    const kind = response.status === 403 ? 'forbidden' : 'unknownBoard';
    return { kind, message: await errorMessage(response) };
  }
  return parseJson(response, (body) => snapshotSchema.safeParse(body).data);
}

/** The boards the user may see, with their worst state and counts. */
export function fetchBoards(): Promise<Result<BoardsResponse>> {
  return getJson('/api/boards', (body) => boardsResponseSchema.safeParse(body).data);
}

/** Seconds from a `Retry-After` header (delta-seconds or an HTTP date); at least 1. */
export function retryAfterSeconds(header: string | null, now = Date.now()): number {
  if (!header) return 1;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(1, Math.ceil(seconds));
  const date = Date.parse(header);
  return Number.isNaN(date) ? 1 : Math.max(1, Math.ceil((date - now) / 1000));
}

export async function postLogin(username: string, password: string): Promise<LoginResult> {
  const response = await request('/api/login', {
    method: 'POST',
    headers: { ...JSON_HEADERS, 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  if (typeof response === 'string') return { kind: 'failed', message: response };
  if (response.status === 401) return { kind: 'wrongCredentials', message: await errorMessage(response) };
  if (response.status === 429) {
    return { kind: 'throttled', retryAfterSeconds: retryAfterSeconds(response.headers.get('Retry-After')) };
  }
  if (!response.ok) return { kind: 'failed', message: await errorMessage(response) };
  const parsed = sessionResponseSchema.safeParse(await response.json().catch(() => undefined));
  return parsed.success
    ? { kind: 'ok', session: parsed.data }
    : { kind: 'failed', message: 'the server sent an unexpected answer' };
}

/** Ends the session; a 401 counts as done (it had already ended). */
export async function postLogout(csrfToken: string): Promise<Result<null>> {
  const response = await request('/api/logout', {
    method: 'POST',
    headers: { ...JSON_HEADERS, 'X-CSRF-Token': csrfToken },
  });
  if (typeof response === 'string') return { kind: 'failed', message: response };
  if (response.ok || response.status === 401) return { kind: 'ok', value: null };
  return { kind: 'failed', message: await errorMessage(response) };
}

/**
 * For the stream hub after the server refused the stream: is the session gone (401), or which boards may
 * the user still see (a stream naming any other is refused with 403)?
 */
export async function checkAccess(): Promise<AccessCheck> {
  const result = await fetchBoards();
  if (result.kind === 'unauthorized') return { kind: 'unauthorized' };
  if (result.kind === 'failed') return { kind: 'unknown' };
  return { kind: 'visible', boards: new Set(result.value.boards.map((board) => board.name)) };
}
