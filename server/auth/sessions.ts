// Sessions (docs/design.md, "Sessions, users, security"): koa-session with the state in Redis and only a
// random id in a signed, HttpOnly, SameSite=Lax cookie; Secure whenever the request is HTTPS (Koa's
// cookies follow `ctx.secure`, which honours X-Forwarded-Proto when TRUST_PROXY is set); rolling expiry.
// Redis keys hold the SHA-256 of the id, never the id itself, so a leaked dump holds no usable session.
import { createHash, randomBytes } from 'node:crypto';
import type Koa from 'koa';
import type { Context, Next } from 'koa';
import { createSession } from 'koa-session';
import * as z from 'zod';
import { sessionNames, type RedisNames } from '../../shared/keys.ts';
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

/**
 * The Redis key of a session. Only this module reads or writes session values: elsewhere use
 * readSessionsByHandle and deleteSessionByHandle (docs/design.md, "Redis keys").
 */
function sessionRedisKey(names: RedisNames, handle: string): string {
  return sessionNames(names.prefix).session(handle);
}

/**
 * The Redis key of the session with this handle, for a script that reads it with other keys in one round
 * trip (the stream fast path, server/auth/stream-quota.ts). Such a script only reads it.
 */
export function sessionKeyForScript(names: RedisNames, handle: string): string {
  return sessionRedisKey(names, handle);
}

/**
 * A stored session value as an object, or undefined when it is not one. A corrupt value is no session
 * (the request answers 401 and the stream check closes its streams), never an exception (docs/reliability.md).
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

/**
 * The logged-in fields of these sessions, read in one round trip, by handle. A session gone, past its
 * expiry or corrupt is absent: a corrupt value voids that one session, never the others.
 */
export async function readSessionsByHandle(
  redis: RedisClient,
  names: RedisNames,
  handles: readonly string[],
  now: number = Date.now(),
): Promise<Map<string, SessionFields>> {
  const sessions = new Map<string, SessionFields>();
  if (handles.length === 0) return sessions;
  const raws = await redis.mGet(handles.map((handle) => sessionRedisKey(names, handle)));
  raws.forEach((raw, index) => {
    const handle = handles[index];
    if (raw === null || handle === undefined) return;
    const data = parseStoredSession(String(raw));
    if (data === undefined) return;
    const expire = data._expire;
    if (typeof expire === 'number' && expire < now) return;
    const fields = sessionFieldsSchema.safeParse(data);
    if (fields.success) sessions.set(handle, fields.data);
  });
  return sessions;
}

/** Removes a session from Redis by its handle (a logout, heard on any worker). */
export async function deleteSessionByHandle(
  redis: RedisClient,
  names: RedisNames,
  handle: string,
): Promise<void> {
  await redis.del(sessionRedisKey(names, handle));
}

/** Session ids generated during a request (a new visitor, or a login's regenerate), by request. */
const freshIds = new WeakMap<object, string>();

/**
 * A `GET /events` whose session was renewed less than this long ago does not renew it again
 * (docs/security.md, "Sessions"): a reload or a reconnect storm opens many streams on one session, and
 * each rolling save would be one more Redis round trip and one more signed cookie (docs/performance.md).
 * At most a tenth of the TTL.
 */
export const STREAM_RENEWAL_QUIET_MS = 60_000;

/** The expiry (ms) a session with `maxAgeMs` to live has at least when it was renewed within the window. */
export function renewedAfter(maxAgeMs: number, now = Date.now()): number {
  const quietMs = Math.min(STREAM_RENEWAL_QUIET_MS, maxAgeMs / 10);
  return now + maxAgeMs - quietMs;
}

/** Whether a session that expires at `expire` (ms) with `maxAgeMs` to live was renewed within the window. */
export function renewedRecently(expire: unknown, maxAgeMs: number, now = Date.now()): boolean {
  return typeof expire === 'number' && expire >= renewedAfter(maxAgeMs, now);
}

/**
 * koa-session's external store on Redis; values are JSON with koa-session's own `_expire`.
 * Only an id generated by this very request may create a key; every other save (the rolling renewal at
 * the end of each request) is SET XX, which does nothing once the key is gone. A request still running
 * when the user logs out (on any worker) therefore cannot bring the session back (docs/security.md, "Hardening").
 */
function createSessionStore(redis: RedisClient, names: RedisNames) {
  const keyOf = (id: string) => sessionRedisKey(names, sessionHandle(id));
  return {
    async get(id: string): Promise<Record<string, unknown> | undefined> {
      const raw = await redis.get(keyOf(id));
      if (typeof raw !== 'string') return undefined;
      return parseStoredSession(raw);
    },
    // koa-session passes the cookie's maxAge + 10 s, so Redis forgets a session just after the browser does.
    async set(id: string, data: unknown, maxAgeMs: number, options: { ctx?: object } = {}): Promise<void> {
      const fresh = options.ctx !== undefined && freshIds.get(options.ctx) === id;
      await redis.set(keyOf(id), JSON.stringify(data), {
        expiration: { type: 'PX', value: Math.max(1000, Math.round(maxAgeMs)) },
        // A fresh id is saved twice in a login (regenerate, then the fields): a plain SET for it.
        ...(fresh ? {} : { condition: 'XX' as const }),
      });
    },
    async destroy(id: string): Promise<void> {
      await deleteSessionByHandle(redis, names, sessionHandle(id));
    },
  };
}

export interface SessionMiddlewareOptions {
  redis: RedisClient;
  names: RedisNames;
  ttlMs: number;
  /** Requests (`GET /events`) that renew the session only when it was not renewed recently. */
  quietRenewal?: (ctx: Context) => boolean;
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
      genid: (ctx: Context) => {
        const id = randomBytes(32).toString('base64url');
        freshIds.set(ctx, id);
        return id;
      },
    },
    app,
  );
  const { quietRenewal } = options;
  return async function loadSession(ctx: Context, next: Next): Promise<void> {
    if (isSessionless(ctx.path)) return next();
    if (quietRenewal?.(ctx) !== true) return session(ctx, next);
    return session(ctx, () => {
      // Renewed within the window: this request saves the session only if it changes it (no rolling
      // save, so no Redis write and no new cookie). It still lives at least the TTL minus the window.
      if (renewedRecently(koaSession(ctx)?._expire, options.ttlMs)) {
        Reflect.set(Reflect.get(ctx, 'sessionOptions') as object, 'rolling', false);
      }
      return next();
    });
  };
}

/** The parts of koa-session's Session object pulseboard uses. */
interface KoaSession {
  regenerate(): Promise<void>;
  readonly externalKey?: string;
  /** When the stored session expires (ms), as loaded or last saved. */
  readonly _expire?: number;
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
