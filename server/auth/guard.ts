// The session guard (docs/design.md, "Sessions, users, security"): every request but the public ones needs a
// valid session. API paths answer 401 JSON, the dashboard page redirects to /login. A session is valid
// while it exists in Redis, its user exists and the user's security stamp is the one it was issued with.
import type { Context, Next } from 'koa';
import type { Role } from '../../shared/api.ts';
import { UnauthorizedError } from '../http/errors.ts';
import { isDashboardPage, isPublic, isSessionless } from './paths.ts';
import { endSession, readSession } from './sessions.ts';
import type { UserRecord, UserStore } from './users.ts';

export interface Auth {
  /** Public handle of the session (SHA-256 of its id): tags SSE streams, names it in control messages. */
  sessionHandle: string;
  user: { name: string; role: Role };
  /** Boards granted in the user record, read with it; absent for a record from before boards (= main). */
  boards: readonly string[] | undefined;
  csrfToken: string;
}

const authByContext = new WeakMap<Context, Auth>();

/** Who made this request, when it carries a valid session. */
export function getAuth(ctx: Context): Auth | undefined {
  return authByContext.get(ctx);
}

export interface AuthGuardOptions {
  users: UserStore;
  /**
   * How the session's user is read; default `users.get`. Stream requests read it with their stream
   * admission in one round trip (StreamQuota.admitWithUser). The stamp is compared here either way.
   */
  lookupUser?: (
    ctx: Context,
    session: { handle: string; fields: { user: string; stamp: string } },
  ) => Promise<UserRecord | undefined>;
}

export function authGuard(options: AuthGuardOptions) {
  const lookupUser = options.lookupUser ?? ((_ctx, session) => options.users.get(session.fields.user));
  return async function requireSession(ctx: Context, next: Next): Promise<void> {
    if (isSessionless(ctx.path)) return next();
    const session = readSession(ctx);
    if (session) {
      const user = await lookupUser(ctx, session);
      if (user && user.stamp === session.fields.stamp) {
        authByContext.set(ctx, {
          sessionHandle: session.handle,
          user: { name: user.name, role: user.role },
          boards: user.boards,
          csrfToken: session.fields.csrf,
        });
      } else {
        // The user was removed or changed password: this session is void; forget it and its cookie.
        endSession(ctx);
      }
    }
    if (authByContext.has(ctx) || isPublic(ctx.method, ctx.path)) return next();
    if ((ctx.method === 'GET' || ctx.method === 'HEAD') && isDashboardPage(ctx.path)) {
      // Keep the page's URL (its board and filter) to return to after login.
      ctx.redirect(ctx.url === '/' ? '/login' : `/login?next=${encodeURIComponent(ctx.url)}`);
      return;
    }
    throw new UnauthorizedError();
  };
}
