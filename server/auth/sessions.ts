// Sessions (DESIGN.md, "Sessions, users, security"): koa-session with the state in Redis and only a
// random id in a signed, HttpOnly, SameSite=Lax cookie; Secure whenever the request is HTTPS (Koa's
// cookies follow `ctx.secure`, which honours X-Forwarded-Proto when TRUST_PROXY is set); rolling expiry.
// Redis keys hold the SHA-256 of the id, never the id itself, so a leaked dump holds no usable session.
import { createHash, randomBytes } from 'node:crypto';
import type Koa from 'koa';
import type { Context, Next } from 'koa';
import { createSession } from 'koa-session';
import * as z from 'zod';
import type { RedisNames } from '../../shared/keys.ts';
import type { RedisClient } from '../redis.ts';
import { isSessionless } from './paths.ts';

export const SESSION_COOKIE = 'pulseboard.sid';

/** What pulseboard keeps in a logged-in session. */
export const sessionFieldsSchema = z.object({
  user: z.string(),
  /** The user's security stamp when the session was issued; a password change or removal voids it. */
  stamp: z.string(),
  csrf: z.string().min(16),
  createdAt: z.number(),
});
export type SessionFields = z.infer<typeof sessionFieldsSchema>;

/** The public handle of a session: SHA-256 of its secret id. Streams, logs and control messages use it. */
export function sessionHandle(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

export function sessionRedisKey(names: RedisNames, handle: string): string {
  return names.key(`session:${handle}`);
}

/**
 * A stored session value as an object, or undefined when it is not one. A corrupt value is no session
 * (the request answers 401 and the stream check closes its streams), never an exception (issue 14).
 */
export function parseStoredSession(raw: string): Record<string, unknown> | undefined {
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    return undefined;
  }
  const parsed = z.record(z.string(), z.unknown()).safeParse(data);
  return parsed.success ? parsed.data : undefined;
}

/** koa-session's external store on Redis; values are JSON with koa-session's own `_expire`. */
export function createSessionStore(redis: RedisClient, names: RedisNames) {
  const keyOf = (id: string) => sessionRedisKey(names, sessionHandle(id));
  return {
    async get(id: string): Promise<Record<string, unknown> | undefined> {
      const raw = await redis.get(keyOf(id));
      if (typeof raw !== 'string') return undefined;
      return parseStoredSession(raw);
    },
    // koa-session passes the cookie's maxAge + 10 s, so Redis forgets a session just after the browser does.
    async set(id: string, data: unknown, maxAgeMs: number): Promise<void> {
      await redis.set(keyOf(id), JSON.stringify(data), {
        expiration: { type: 'PX', value: Math.max(1000, Math.round(maxAgeMs)) },
      });
    },
    async destroy(id: string): Promise<void> {
      await redis.del(keyOf(id));
    },
  };
}

export interface SessionMiddlewareOptions {
  redis: RedisClient;
  names: RedisNames;
  ttlMs: number;
}

/** The session middleware; skipped on paths that never use the cookie (no Redis read for an asset). */
export function sessionMiddleware(app: Koa, options: SessionMiddlewareOptions) {
  const session = createSession(
    {
      key: SESSION_COOKIE,
      maxAge: options.ttlMs,
      rolling: true,
      httpOnly: true,
      signed: true,
      sameSite: 'lax',
      store: createSessionStore(options.redis, options.names),
      // 256 bits from the CSPRNG (koa-session's default is a UUID).
      genid: () => randomBytes(32).toString('base64url'),
    },
    app,
  );
  return async function loadSession(ctx: Context, next: Next): Promise<void> {
    if (isSessionless(ctx.path)) return next();
    return session(ctx, next);
  };
}

/** The parts of koa-session's Session object pulseboard uses. */
interface KoaSession {
  regenerate(): Promise<void>;
  readonly externalKey?: string;
  toJSON(): Record<string, unknown>;
}

function isKoaSession(value: unknown): value is KoaSession {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { regenerate?: unknown }).regenerate === 'function' &&
    typeof (value as { toJSON?: unknown }).toJSON === 'function'
  );
}

/** The koa-session object of this request, or undefined on sessionless paths. */
function koaSession(ctx: Context): KoaSession | undefined {
  const value: unknown = Reflect.get(ctx, 'session');
  return isKoaSession(value) ? value : undefined;
}

/** The logged-in fields and handle of this request's session, or undefined. */
export function readSession(ctx: Context): { handle: string; fields: SessionFields } | undefined {
  const session = koaSession(ctx);
  if (!session?.externalKey) return undefined;
  const parsed = sessionFieldsSchema.safeParse(session.toJSON());
  return parsed.success ? { handle: sessionHandle(session.externalKey), fields: parsed.data } : undefined;
}

/** Login: a new id (session fixation), then the user's fields. The old session is destroyed. */
export async function startSession(ctx: Context, fields: SessionFields): Promise<void> {
  const session = koaSession(ctx);
  if (!session) throw new Error('session middleware is not installed on this path');
  await session.regenerate();
  Object.assign(session, fields);
}

/** Logout (or a voided session): removes it from Redis and expires the cookie. */
export function endSession(ctx: Context): void {
  Reflect.set(ctx, 'session', null);
}

export function newCsrfToken(): string {
  return randomBytes(32).toString('base64url');
}
