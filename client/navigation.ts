// Moving between the dashboard and the login page, carrying why (expired, logged out) and where to
// return to. `next` is only ever a path on this origin, so a crafted link cannot send anyone elsewhere.

export type LoginReason = 'expired' | 'logged-out';

export const LOGIN_MESSAGES: Record<LoginReason, string> = {
  expired: 'Your session has expired. Please log in again.',
  'logged-out': 'You have logged out.',
};

export function isLoginReason(value: string | null): value is LoginReason {
  return value === 'expired' || value === 'logged-out';
}

/** Stands for "this origin" while resolving `next`; never navigated to. */
const PROBE_ORIGIN = 'https://pulseboard.invalid';

/**
 * A same-origin path to return to after login, or `/`. The value is resolved the way the browser will
 * resolve it (the URL parser drops tabs and newlines, so `/\t/evil.example` is `//evil.example`) and
 * only a result on our own origin passes, in its normalized form (docs/security.md, "Hardening").
 */
export function safeNext(value: string | null): string {
  if (!value || !value.startsWith('/')) return '/';
  let resolved: URL;
  try {
    resolved = new URL(value, PROBE_ORIGIN);
  } catch {
    return '/';
  }
  if (resolved.origin !== PROBE_ORIGIN) return '/';
  const path = `${resolved.pathname}${resolved.search}${resolved.hash}`;
  // Belt and braces: what we hand to location.assign must itself be a plain absolute path.
  return path.startsWith('/') && !path.startsWith('//') && !path.startsWith('/\\') ? path : '/';
}

export function loginUrl(reason: LoginReason | undefined, next: string): string {
  const query = new URLSearchParams();
  if (reason) query.set('reason', reason);
  if (next !== '/') query.set('next', next);
  const text = query.toString();
  return text ? `/login?${text}` : '/login';
}

export function goToLogin(reason: LoginReason | undefined): void {
  location.assign(loginUrl(reason, `${location.pathname}${location.search}`));
}
