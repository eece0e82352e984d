// Which requests need a session (docs/design.md, "Sessions, users, security"). Everything not listed here does.

/** Paths that never use the session cookie: their own bearer token, or files of the public bundle. */
export function isSessionless(path: string): boolean {
  return (
    path === '/metrics' || path === '/api/publish' || path === '/favicon.ico' || path.startsWith('/assets/')
  );
}

/**
 * The dashboard's pages: the board overview `/` and a board's view `/b/<board>`. Asked for without a
 * session, they redirect to the login page (keeping where to return) rather than answer 401.
 */
export function isDashboardPage(path: string): boolean {
  return path === '/' || /^\/b\/[a-z0-9-]{1,64}$/.test(path);
}

/** Requests answered without a session: the login page and its assets, the login call, token paths. */
export function isPublic(method: string, path: string): boolean {
  if (isSessionless(path)) return true;
  if (path === '/login') return method === 'GET' || method === 'HEAD';
  if (path === '/api/login') return method === 'POST';
  return false;
}

/** Requests that change state, which CSRF protection covers (RFC 9110 safe methods are exempt). */
export function isStateChanging(method: string): boolean {
  return method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS';
}
