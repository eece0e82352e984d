// `GET /api/session` (who am I, and the CSRF token after a reload) and `POST /api/logout`
// (docs/design.md, "Interfaces at a glance"). Both sit behind the session guard, so a request without a
// valid session has already been answered 401.
import type { Context } from 'koa';
import type { SessionResponse } from '../../shared/api.ts';
import type { RedisNames } from '../../shared/keys.ts';
import { getAuth } from '../auth/guard.ts';
import { deleteSessionByHandle, endSession } from '../auth/sessions.ts';
import { publishControl } from '../bus/control.ts';
import { UnauthorizedError } from '../http/errors.ts';
import type { RedisClient } from '../redis.ts';

function requireAuth(ctx: Context) {
  const auth = getAuth(ctx);
  if (!auth) throw new UnauthorizedError();
  return auth;
}

export function sessionRoute() {
  return async function currentSession(ctx: Context): Promise<void> {
    const auth = requireAuth(ctx);
    ctx.set('Cache-Control', 'no-store');
    const body: SessionResponse = { user: auth.user, csrfToken: auth.csrfToken };
    ctx.body = body;
  };
}

export function logoutRoute(options: { redis: RedisClient; names: RedisNames }) {
  return async function logout(ctx: Context): Promise<void> {
    const auth = requireAuth(ctx);
    // Gone from Redis first, so a stream that reconnects after the close below finds no session.
    await deleteSessionByHandle(options.redis, options.names, auth.sessionHandle);
    await publishControl(options.redis, options.names, {
      type: 'close-session',
      sessionHandle: auth.sessionHandle,
    });
    endSession(ctx);
    ctx.status = 204;
  };
}
