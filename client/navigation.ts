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

/** A same-origin path to return to after login, or `/`. */
export function safeNext(value: string | null): string {
  if (!value || !value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\')) return '/';
  return value;
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
