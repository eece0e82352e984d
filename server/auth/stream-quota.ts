// MAX_STREAMS_PER_SESSION across the whole installation (docs/reliability.md, "Stream quota"): every open
// stream of a session is a member of one Redis sorted set, scored with the time its lease ends. The worker
// holding the stream renews the lease every third of its length; a worker that dies without closing
// (SIGKILL, host lost) stops renewing, and its streams stop counting when their lease runs out.
// Times come from Redis (TIME inside the scripts), so hosts with skewed clocks agree.
import type { ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { authNames, type RedisNames } from '../../shared/keys.ts';
import { createScriptRunner } from '../../shared/publisher.ts';
import { AppError } from '../http/errors.ts';
import type { Logger } from '../log.ts';
import type { RedisClient } from '../redis.ts';
import { parseUserRecord, tryNormalizeUsername, type UserRecord, type UserStore } from './users.ts';

/** Lease of one stream in the set; renewed every third of it while the stream is open. */
export const STREAM_LEASE_MS = 30_000;

// KEYS[1] the session's set; ARGV: limit, lease ms, member. Drops lapsed leases, then admits if below
// the limit. Returns 1 (admitted) or 0.
const ADMIT_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
`;

// KEYS[1] the users hash, KEYS[2] the session's set; ARGV: user name, the session's stamp, limit, lease ms,
// member. The session guard's user lookup and the admission in one round trip (docs/performance.md): reads
// the user's record and, only when its stamp is the session's, admits as ADMIT_SCRIPT does. Returns
// {record or nil, 1 admitted | 0 refused | -1 not tried (no such user, another stamp, a corrupt record)}.
const USER_ADMIT_SCRIPT = `
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return {false, -1} end
local ok, record = pcall(cjson.decode, raw)
if not ok or type(record) ~= 'table' or record.stamp ~= ARGV[2] then return {raw, -1} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return {raw, 0} end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[5])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]))
return {raw, 1}
`;

// KEYS[1] the session, KEYS[2] the users hash, KEYS[3] the session's set; ARGV: now (ms, the worker's clock,
// as koa-session's expiry check), the expiry a session renewed within the quiet window has at least (ms),
// limit, lease ms, member. The whole check of a stream request on the fast path (docs/architecture.md,
// "Stream fast path") in one round trip: the session exists, has not expired, was renewed within the
// window (so no rolling save is due) and has its logged-in fields; its user exists with the session's
// stamp; then admits as ADMIT_SCRIPT does. Returns {-2} (not decided here: the Koa path decides, nothing
// was written), or {record, 1 admitted | 0 refused}.
const SESSION_ADMIT_SCRIPT = `
local raw = redis.call('GET', KEYS[1])
if not raw then return {-2} end
local ok, session = pcall(cjson.decode, raw)
if not ok or type(session) ~= 'table' then return {-2} end
local expire = session._expire
if type(expire) ~= 'number' or expire < tonumber(ARGV[1]) or expire < tonumber(ARGV[2]) then return {-2} end
if type(session.user) ~= 'string' or type(session.stamp) ~= 'string' or type(session.csrf) ~= 'string'
  or #session.csrf < 16 or type(session.createdAt) ~= 'number' then return {-2} end
local record = redis.call('HGET', KEYS[2], session.user)
if not record then return {-2} end
local decoded, user = pcall(cjson.decode, record)
if not decoded or type(user) ~= 'table' or user.stamp ~= session.stamp then return {-2} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[3]) then return {record, 0} end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), ARGV[5])
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[4]))
return {record, 1}
`;

// KEYS[1] the session's set; ARGV: lease ms, members… Renews the leases of members still present.
const RENEW_SCRIPT = `
local t = redis.call('TIME')
local until_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', until_ms, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
`;

/**
 * User records parsed lately, by their raw JSON: every stream of a session reads the same record, and
 * parsing it (JSON and the schema) was ~3 % of a worker's CPU per open (docs/performance.md, "Setup time
 * is CPU"). A changed record is another string, so it is parsed afresh. Bounded; emptied when full.
 */
const PARSED_RECORDS_SIZE = 256;

/** A stream counted in its session's set, kept on its response until it closes. */
interface Lease {
  readonly quota: StreamQuota;
  readonly sessionHandle: string;
  readonly member: string;
}

const LEASE = Symbol('pulseboard.streamLease');

/** The close listener of every counted response (`this` is the response). */
function releaseLeaseOf(this: ServerResponse): void {
  const lease = Reflect.get(this, LEASE) as Lease | undefined;
  if (lease === undefined) return;
  Reflect.set(this, LEASE, undefined);
  lease.quota.release(lease);
}

export interface StreamQuotaOptions {
  redis: RedisClient;
  names: RedisNames;
  /** Streams one session may hold across every worker (MAX_STREAMS_PER_SESSION). */
  limit: number;
  log: Logger;
  /** Lease length; default STREAM_LEASE_MS. */
  leaseMs?: number;
}

export class StreamQuota {
  private readonly options: StreamQuotaOptions;
  private readonly leaseMs: number;
  private readonly admitScript;
  private readonly renewScript;
  private readonly userAdmitScript;
  private readonly sessionAdmitScript;
  /** Admissions decided with the user lookup (admitWithUser), by response, until the route asks. */
  private readonly decided = new WeakMap<ServerResponse, { sessionHandle: string; admitted: boolean }>();
  /** This worker's open streams: session handle -> stream members. */
  private readonly held = new Map<string, Set<string>>();
  private readonly parsedRecords = new Map<string, UserRecord>();
  private readonly workerTag = randomBytes(6).toString('hex');
  private sequence = 0;
  private timer: NodeJS.Timeout | undefined;
  private renewing = false;
  /** The key of a session's stream set (built once: `authNames` makes its functions on every call). */
  private readonly streamsKeyOf: (sessionHandle: string) => string;

  constructor(options: StreamQuotaOptions) {
    this.options = options;
    this.streamsKeyOf = authNames(options.names.prefix).streams;
    this.leaseMs = options.leaseMs ?? STREAM_LEASE_MS;
    this.admitScript = createScriptRunner(options.redis, ADMIT_SCRIPT);
    this.renewScript = createScriptRunner(options.redis, RENEW_SCRIPT);
    this.userAdmitScript = createScriptRunner(options.redis, USER_ADMIT_SCRIPT);
    this.sessionAdmitScript = createScriptRunner(options.redis, SESSION_ADMIT_SCRIPT);
  }

  private nextMember(): string {
    this.sequence += 1;
    return `${this.workerTag}:${this.sequence}`;
  }

  private refuse(): AppError {
    return new AppError(429, 'too_many_streams', `at most ${this.options.limit} open streams per session`);
  }

  /**
   * Counts `member` until `response` closes. What it keeps per stream is small (an idle stream's memory,
   * docs/performance.md): the lease on the response and one shared listener, no closure per stream.
   */
  private hold(sessionHandle: string, member: string, response: ServerResponse): void {
    let members = this.held.get(sessionHandle);
    if (!members) this.held.set(sessionHandle, (members = new Set()));
    members.add(member);
    const lease: Lease = { quota: this, sessionHandle, member };
    if (response.destroyed || response.writableFinished) {
      this.release(lease);
      return;
    }
    Reflect.set(response, LEASE, lease);
    response.on('close', releaseLeaseOf);
  }

  /** The stream of `lease` closed: it no longer counts. */
  release(lease: Lease): void {
    const { sessionHandle, member } = lease;
    const members = this.held.get(sessionHandle);
    if (members?.delete(member) && members.size === 0) this.held.delete(sessionHandle);
    // Redis away: the lease runs out by itself.
    this.options.redis.zRem(this.keyOf(sessionHandle), member).catch(() => undefined);
  }

  /**
   * The session guard's user lookup for a stream request, with the admission in the same script: the
   * user's record (undefined when there is none), and, when its stamp is the session's, the stream is
   * admitted or refused at once; `admit` then answers for this response without asking Redis again. A
   * stream admitted here that the route refuses for another reason (a board it may not see) is released
   * when its response closes, like every other.
   */
  async admitWithUser(
    sessionHandle: string,
    response: ServerResponse,
    users: Pick<UserStore, 'hashKey' | 'get'>,
    user: { name: string; stamp: string },
  ): Promise<UserRecord | undefined> {
    // Already decided on the fast path, which handed the request on for another reason: no second lease.
    if (this.decided.get(response)?.sessionHandle === sessionHandle) return users.get(user.name);
    const name = tryNormalizeUsername(user.name);
    if (name === undefined) return undefined;
    const member = this.nextMember();
    const key = this.keyOf(sessionHandle);
    const reply = await this.userAdmitScript([
      '2',
      users.hashKey,
      key,
      name,
      user.stamp,
      String(this.options.limit),
      String(this.leaseMs),
      member,
    ]);
    const [raw, outcome] = Array.isArray(reply) ? (reply as unknown[]) : [];
    if (outcome === 1) this.hold(sessionHandle, member, response);
    if (outcome === 1 || outcome === 0)
      this.decided.set(response, { sessionHandle, admitted: outcome === 1 });
    return typeof raw === 'string' ? parseUserRecord(raw) : undefined;
  }

  /**
   * The fast path's check of a stream request (docs/architecture.md, "Stream fast path"): reads the
   * session at `sessionKey` and its user and admits the stream, in one script. Returns the user's record
   * when it decided (the stream admitted or refused; `admit` then answers for this response without asking
   * Redis again), or undefined when the session is missing, expired, due for its rolling renewal or not
   * logged in, or its user is gone or has another stamp: nothing was written, and the Koa path decides.
   */
  async admitSession(
    session: { handle: string; key: string },
    response: ServerResponse,
    users: Pick<UserStore, 'hashKey'>,
    expiry: { now: number; renewedAfter: number },
  ): Promise<UserRecord | undefined> {
    const member = this.nextMember();
    const key = this.keyOf(session.handle);
    const reply = await this.sessionAdmitScript([
      '3',
      session.key,
      users.hashKey,
      key,
      String(expiry.now),
      String(expiry.renewedAfter),
      String(this.options.limit),
      String(this.leaseMs),
      member,
    ]);
    const [raw, outcome] = Array.isArray(reply) ? (reply as unknown[]) : [];
    if (outcome !== 1 && outcome !== 0) return undefined;
    if (outcome === 1) this.hold(session.handle, member, response);
    this.decided.set(response, { sessionHandle: session.handle, admitted: outcome === 1 });
    return typeof raw === 'string' ? this.parseRecord(raw) : undefined;
  }

  /** `parseUserRecord`, once per distinct record (PARSED_RECORDS_SIZE); the record is shared, frozen. */
  private parseRecord(raw: string): UserRecord {
    let record = this.parsedRecords.get(raw);
    if (record === undefined) {
      record = parseUserRecord(raw);
      Object.freeze(record.boards);
      Object.freeze(record);
      if (this.parsedRecords.size >= PARSED_RECORDS_SIZE) this.parsedRecords.clear();
      this.parsedRecords.set(raw, record);
    }
    return record;
  }

  private keyOf(sessionHandle: string): string {
    return this.streamsKeyOf(sessionHandle);
  }

  /**
   * Counts a new stream of `sessionHandle` until `response` closes, or throws 429 when the session already
   * holds `limit` streams anywhere. Refused rather than closing an older stream: that tab would reconnect
   * and evict another, forever.
   */
  async admit(sessionHandle: string, response: ServerResponse): Promise<void> {
    const decided = this.decided.get(response);
    if (decided !== undefined && decided.sessionHandle === sessionHandle) {
      this.decided.delete(response);
      if (!decided.admitted) throw this.refuse();
      return;
    }
    const member = this.nextMember();
    const key = this.keyOf(sessionHandle);
    const admitted = await this.admitScript([
      '1',
      key,
      String(this.options.limit),
      String(this.leaseMs),
      member,
    ]);
    if (admitted !== 1) throw this.refuse();
    this.hold(sessionHandle, member, response);
  }

  /** Streams of this worker that hold a lease. */
  get size(): number {
    let count = 0;
    for (const members of this.held.values()) count += members.size;
    return count;
  }

  /** Starts renewing this worker's leases every third of the lease. */
  start(): void {
    this.timer = setInterval(() => void this.renew(), Math.max(100, Math.floor(this.leaseMs / 3)));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Stops counting every stream of this worker, at once (shutdown, after the hub closed them): their
   * clients reconnect to other workers within a second, and a lease still counted there would refuse
   * them with 429 until it lapsed, or until each response's close came round to releasing it.
   */
  async releaseAll(): Promise<void> {
    const held = [...this.held];
    this.held.clear();
    await Promise.all(
      held.map(([sessionHandle, members]) =>
        this.options.redis.zRem(this.keyOf(sessionHandle), [...members]).catch(() => undefined),
      ),
    );
  }

  /** One renewal pass (also called by tests). A failed pass is retried at the next tick. */
  async renew(): Promise<void> {
    if (this.renewing) return;
    this.renewing = true;
    try {
      await Promise.all(
        [...this.held].map(([sessionHandle, members]) =>
          this.renewScript(['1', this.keyOf(sessionHandle), String(this.leaseMs), ...members]),
        ),
      );
    } catch (error) {
      this.options.log.warn({ err: error }, 'stream lease renewal failed');
    } finally {
      this.renewing = false;
    }
  }
}
