// Logging in from tests. Every test that talks to a route needing a session goes through here, so the
// session mechanics live in one place: the user is created in Redis (if missing) through the real user
// store, then logged in with a real `POST /api/login`; the cookie and CSRF token it answers are returned.
import { createClient } from 'redis';
import { sessionResponseSchema } from '../../shared/api.ts';
import { redisNames } from '../../shared/keys.ts';
import type { ScryptParams } from '../../server/auth/passwords.ts';
import { UserInputError, UserStore } from '../../server/auth/users.ts';
import type { RedisClient } from '../../server/redis.ts';

export interface TestSession {
  /** Headers that carry the session (Cookie). */
  headers: Record<string, string>;
  /** Headers for state-changing requests: the session plus Origin and X-CSRF-Token. */
  csrfHeaders: Record<string, string>;
  username: string;
}

export interface LoginOptions {
  username?: string;
  role?: 'viewer' | 'admin';
  /** Boards granted to a user the helper creates. Default `['main']`, what the suites before boards saw. */
  boards?: readonly string[];
  /** Redis URL and key prefix of the installation (needed to create the user). */
  redisUrl: string;
  prefix: string;
}

/** Password of every user the helper creates. */
export const TEST_PASSWORD = 'correct horse battery staple';
/**
 * Cheap scrypt parameters for test users, so a suite full of logins stays fast. They are stored with
 * the hash, so verification is the real code path; unknown users are still checked at the default cost.
 */
export const TEST_SCRYPT: ScryptParams = { N: 2 ** 12, r: 8, p: 1 };

/** The `name=value` pairs of a response's Set-Cookie headers, as one Cookie header (empty values dropped). */
export function cookieHeader(response: Response): string {
  return response.headers
    .getSetCookie()
    .map((line) => line.split(';')[0] ?? '')
    .filter((pair) => pair.includes('=') && !pair.endsWith('='))
    .join('; ');
}

/** Runs `work` with a user store on the installation's Redis. */
export async function withUsers<T>(
  redisUrl: string,
  prefix: string,
  work: (users: UserStore, redis: RedisClient) => Promise<T>,
): Promise<T> {
  const redis: RedisClient = createClient({ url: redisUrl });
  await redis.connect();
  try {
    return await work(new UserStore(redis, redisNames(prefix)), redis);
  } finally {
    await redis.quit();
  }
}

/** Creates the user with TEST_PASSWORD unless it exists (concurrent callers may race: both are fine). */
export async function ensureTestUser(
  redisUrl: string,
  prefix: string,
  username: string,
  role: 'viewer' | 'admin' = 'viewer',
  boards: readonly string[] = ['main'],
): Promise<void> {
  await withUsers(redisUrl, prefix, async (users) => {
    try {
      await users.add(username, TEST_PASSWORD, role, { scrypt: TEST_SCRYPT, boards });
    } catch (error) {
      if (!(error instanceof UserInputError && /already exists/.test(error.message))) throw error;
    }
  });
}

/** Creates a user (if missing) and logs in at `baseUrl`; returns the headers to send. */
export async function login(baseUrl: string, options: LoginOptions): Promise<TestSession> {
  const username = options.username ?? 'tester';
  await ensureTestUser(
    options.redisUrl,
    options.prefix,
    username,
    options.role ?? 'viewer',
    options.boards ?? ['main'],
  );
  const origin = new URL(baseUrl).origin;
  const response = await fetch(`${baseUrl}/api/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Origin: origin },
    body: JSON.stringify({ username, password: TEST_PASSWORD }),
  });
  if (response.status !== 200) {
    throw new Error(`login as ${username} failed: ${response.status} ${await response.text()}`);
  }
  const { csrfToken } = sessionResponseSchema.parse(await response.json());
  const cookie = cookieHeader(response);
  return {
    headers: { Cookie: cookie },
    csrfHeaders: { Cookie: cookie, Origin: origin, 'X-CSRF-Token': csrfToken },
    username,
  };
}
