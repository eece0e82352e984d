// The stream fast path's authentication (docs/architecture.md, "Stream fast path"): a `GET /events` whose
// signed session cookie verifies with the current signing key is checked straight from Node's request,
// without Koa, koa-session or the guard: the session, its user and the stream quota in one Redis script
// (StreamQuota.admitSession). It decides only the common case, with the same outcome the Koa path would
// reach; anything else (no cookie, a signature by an older key, a session due for its rolling renewal,
// gone or voided) is left to the Koa path, which then answers exactly as it always did.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RedisNames } from '../../shared/keys.ts';
import type { BoardUser } from './boards.ts';
import { renewedAfter, SESSION_COOKIE, sessionHandle, sessionKeyForScript } from './sessions.ts';
import type { StreamQuota } from './stream-quota.ts';
import type { UserStore } from './users.ts';

export interface StreamAuthOptions {
  /** Cookie signing keys (server/auth/session-keys.ts); only the first, the one that signs, is tried. */
  keys: readonly string[];
  names: RedisNames;
  quota: Pick<StreamQuota, 'admitSession'>;
  users: Pick<UserStore, 'hashKey'>;
  /** SESSION_TTL_MS: koa-session's maxAge. */
  ttlMs: number;
}

/** The `cookies` package's pattern for one cookie of a Cookie header (the first match wins there too). */
function cookiePattern(name: string): RegExp {
  return new RegExp(`(?:^|;) *${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}=([^;]*)`);
}

/** A cookie's value as the `cookies` package reads it: surrounding quotes taken off; '' when absent. */
function cookieValue(header: string, pattern: RegExp): string {
  const value = pattern.exec(header)?.[1] ?? '';
  return value.startsWith('"') ? value.slice(1, -1) : value;
}

/**
 * A request header as Node's `req.headers` gives it (repeats joined with `separator`: `; ` for Cookie,
 * `, ` for the others), '' when absent, read from `rawHeaders`: `req.headers` builds and keeps an object
 * of every header on the request for the stream's whole life (docs/performance.md, idle memory).
 */
export function rawHeader(req: IncomingMessage, lowerName: string, separator = ', '): string {
  const raw = req.rawHeaders;
  let value: string | undefined;
  for (let index = 0; index + 1 < raw.length; index += 2) {
    const name = raw[index];
    if (name === undefined || name.length !== lowerName.length || name.toLowerCase() !== lowerName) continue;
    const item = raw[index + 1] ?? '';
    value = value === undefined ? item : `${value}${separator}${item}`;
  }
  return value ?? '';
}

/** keygrip's signature (HMAC-SHA1, base64 with `/+=` made URL-safe), as koa-session's cookies carry it. */
function sign(data: string, key: string): string {
  return createHmac('sha1', key)
    .update(data)
    .digest('base64')
    .replace(/[/+=]/g, (char) => (char === '/' ? '_' : char === '+' ? '-' : ''));
}

/**
 * Session ids whose signature, handle and Redis key were computed lately: the streams of one session (a
 * browser's tabs, a reconnect storm) present the same cookie again and again, and an HMAC per stream was
 * ~4 % of a worker's CPU per open, the handle's SHA-256 and the key ~3 % (docs/performance.md, "Setup time
 * is CPU", "Setup at 2,000 streams"). Bounded; emptied when full.
 */
const SIGNATURE_CACHE_SIZE = 1024;

/** What a session id's cookie must carry and what the script needs, derived from the id alone. */
interface SessionIdFacts {
  signature: string;
  handle: string;
  key: string;
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** The authenticated requester of a stream. */
export interface StreamIdentity {
  /** Public handle of the session (server/auth/sessions.ts); absent for a sessionless requester. */
  sessionHandle?: string;
  user: BoardUser & { name: string };
}

export type StreamAuthenticator = (
  req: IncomingMessage,
  res: ServerResponse,
) => Promise<StreamIdentity | undefined>;

/**
 * Resolves the requester of a stream request when the fast path can decide it (the stream is then
 * admitted or refused under MAX_STREAMS_PER_SESSION, and the route's admission answers that), or
 * undefined when the Koa path must check it; a Redis error rejects (the Koa path answers it, 503).
 */
export function streamAuthenticator(options: StreamAuthOptions): StreamAuthenticator {
  const idPattern = cookiePattern(SESSION_COOKIE);
  const signaturePattern = cookiePattern(`${SESSION_COOKIE}.sig`);
  const [key] = options.keys;
  // By session id, for the one key this authenticator verifies with (`key`).
  const known = new Map<string, SessionIdFacts>();
  const factsOf = (id: string, signingKey: string): SessionIdFacts => {
    let facts = known.get(id);
    if (facts === undefined) {
      if (known.size >= SIGNATURE_CACHE_SIZE) known.clear();
      const handle = sessionHandle(id);
      facts = {
        signature: sign(`${SESSION_COOKIE}=${id}`, signingKey),
        handle,
        key: sessionKeyForScript(options.names, handle),
      };
      known.set(id, facts);
    }
    return facts;
  };
  return async function authenticate(req, res) {
    const header = rawHeader(req, 'cookie', '; ');
    if (key === undefined || header === '') return undefined;
    const id = cookieValue(header, idPattern);
    const signature = cookieValue(header, signaturePattern);
    if (id === '' || signature === '') return undefined;
    const facts = factsOf(id, key);
    if (!sameText(signature, facts.signature)) return undefined;
    const { handle } = facts;
    const now = Date.now();
    const record = await options.quota.admitSession({ handle, key: facts.key }, res, options.users, {
      now,
      renewedAfter: renewedAfter(options.ttlMs, now),
    });
    if (record === undefined) return undefined;
    return { sessionHandle: handle, user: { name: record.name, role: record.role, boards: record.boards } };
  };
}
