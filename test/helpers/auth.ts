// Logging in from tests. Every test that talks to a route needing a session goes through here, so the
// session mechanics live in one place.
//
// TRANSITIONAL: until the accounts issue (#4) lands, routes need no session and this returns no headers.
// The accounts work replaces the body of `login` with a real user + POST /api/login; callers keep working.

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
  /** Redis URL and key prefix of the installation (needed to create the user). */
  redisUrl: string;
  prefix: string;
}

/** Creates a user (if missing) and logs in at `baseUrl`; returns the headers to send. */
export async function login(baseUrl: string, options: LoginOptions): Promise<TestSession> {
  const username = options.username ?? 'tester';
  return { headers: {}, csrfHeaders: { Origin: new URL(baseUrl).origin }, username };
}
