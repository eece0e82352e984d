// `POST /api/login` (docs/design.md, "Interfaces at a glance"): `{username, password}` -> 200
// `{user:{name,role}, csrfToken}` and a fresh session cookie. Unknown users and wrong passwords answer
// alike (same status, body and cost); failures are throttled per IP and per username + IP, and
// successes per account (server/auth/throttle.ts).
import { bodyParser } from '@koa/bodyparser';
import type { Context } from 'koa';
import * as z from 'zod';
import type { SessionResponse } from '../../shared/api.ts';
import type { LoginThrottle } from '../auth/throttle.ts';
import { MAX_PASSWORD_LENGTH } from '../auth/passwords.ts';
import { newCsrfToken, startSession } from '../auth/sessions.ts';
import { tryNormalizeUsername, type UserStore } from '../auth/users.ts';
import { RateLimitedError, UnauthorizedError, ValidationError } from '../http/errors.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics/worker-metrics.ts';

const loginBodySchema = z.object({
  username: z.string().min(1).max(128),
  password: z.string().min(1).max(MAX_PASSWORD_LENGTH),
});

/** JSON bodies of the auth API are small; anything larger is refused (413) before parsing. */
export const readLoginBody = bodyParser({ enableTypes: ['json'], jsonLimit: '8kb' });

export interface LoginRouteOptions {
  users: UserStore;
  throttle: LoginThrottle;
  metrics: Metrics;
  log: Logger;
}

export function loginRoute(options: LoginRouteOptions) {
  const { users, throttle, metrics, log } = options;
  return async function login(ctx: Context): Promise<void> {
    const parsed = loginBodySchema.safeParse(ctx.request.body);
    if (!parsed.success) {
      const field = parsed.error.issues[0]?.path.map(String).join('.') || undefined;
      throw new ValidationError(
        `${field ?? 'body'}: expected {"username": string, "password": string}`,
        field,
      );
    }
    const { password } = parsed.data;
    // Throttle on what was typed (lowercased like usernames), valid or not, so guessing names costs too.
    const typed = parsed.data.username.trim().toLowerCase();
    const ip = ctx.ip;
    try {
      await throttle.reserve(typed, ip);
    } catch (error) {
      if (error instanceof RateLimitedError) {
        metrics.logins.inc({ result: 'throttled' });
        log.warn({ ip }, 'login throttled');
      }
      throw error;
    }
    const user = await users.verifyCredentials(typed, password);
    if (!user) {
      metrics.logins.inc({ result: 'failure' });
      log.info({ ip, username: tryNormalizeUsername(typed) }, 'login failed');
      throw new UnauthorizedError('invalid username or password');
    }
    await throttle.release(typed, ip);
    try {
      await throttle.admitSession(user.name);
    } catch (error) {
      if (error instanceof RateLimitedError) {
        metrics.logins.inc({ result: 'throttled' });
        log.warn({ ip, username: user.name }, 'login refused: too many sessions for this account');
      }
      throw error;
    }
    const csrfToken = newCsrfToken();
    await startSession(ctx, { user: user.name, stamp: user.stamp, csrf: csrfToken, createdAt: Date.now() });
    metrics.logins.inc({ result: 'success' });
    log.info({ ip, username: user.name }, 'login');
    ctx.set('Cache-Control', 'no-store');
    const body: SessionResponse = { user: { name: user.name, role: user.role }, csrfToken };
    ctx.body = body;
  };
}
