// Login throttling (docs/security.md, docs/reliability.md "Login limits"): failed logins are counted in
// Redis per client IP and per username + IP (rate-limiter-flexible), in a fixed window. Once either count
// is used up, logins from there answer 429 with Retry-After until the window ends. A success clears its
// username + IP failure count, so a team behind one NAT address logging in all day is never throttled
// for failures. Successes are counted per account, from any address: one account may mint at most
// LOGIN_MAX_SESSIONS_PER_USER sessions per window, so a leaked password or a script in a loop cannot fill
// Redis with sessions.
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { throttleNames, type RedisNames } from '../../shared/keys.ts';
import { RateLimitedError } from '../http/errors.ts';
import type { RedisClient } from '../redis.ts';

export interface LoginThrottleOptions {
  redis: RedisClient;
  names: RedisNames;
  /** Failed logins allowed per IP within the window. */
  maxFailuresPerIp: number;
  /** Failed logins allowed per username + IP within the window. */
  maxFailuresPerUserIp: number;
  /** Successful logins (new sessions) allowed per account within the window. */
  maxSessionsPerUser: number;
  /** Window length in ms (rounded up to whole seconds). */
  windowMs: number;
}

export class LoginThrottle {
  private readonly perIp: RateLimiterRedis;
  private readonly perUserIp: RateLimiterRedis;
  private readonly sessionsPerUser: RateLimiterRedis;

  constructor(options: LoginThrottleOptions) {
    const duration = Math.max(1, Math.ceil(options.windowMs / 1000));
    // node-redis 4+ is not detected by rate-limiter-flexible; without this flag its commands fail.
    const common = { storeClient: options.redis, useRedisPackage: true, duration };
    const names = throttleNames(options.names.prefix);
    this.perIp = new RateLimiterRedis({
      ...common,
      keyPrefix: names.failuresByIp,
      points: options.maxFailuresPerIp,
    });
    this.perUserIp = new RateLimiterRedis({
      ...common,
      keyPrefix: names.failuresByUserIp,
      points: options.maxFailuresPerUserIp,
    });
    this.sessionsPerUser = new RateLimiterRedis({
      ...common,
      keyPrefix: names.loginsByUser,
      points: options.maxSessionsPerUser,
    });
  }

  private static userIpKey(username: string, ip: string): string {
    return `${username}|${ip}`;
  }

  /**
   * Reserves one failure on both counts before the password is checked, so a burst of parallel guesses
   * cannot all pass a check made before any of them failed. Throws RateLimitedError (and gives back
   * the reservation it did get) when either count is used up.
   */
  async reserve(username: string, ip: string): Promise<void> {
    const userIp = LoginThrottle.userIpKey(username, ip);
    const [ipResult, userIpResult] = await Promise.allSettled([
      this.perIp.consume(ip),
      this.perUserIp.consume(userIp),
    ]);
    const rejections = [ipResult, userIpResult].flatMap((result) =>
      result.status === 'rejected' ? [result.reason] : [],
    );
    if (rejections.length === 0) return;
    const redisError = rejections.find((reason) => reason instanceof Error);
    if (redisError) throw redisError;
    // The attempt does not happen: undo the count that was taken.
    if (ipResult.status === 'fulfilled') await this.perIp.reward(ip);
    if (userIpResult.status === 'fulfilled') await this.perUserIp.reward(userIp);
    const waitMs = Math.max(
      ...rejections.map((reason) => (reason instanceof RateLimiterRes ? reason.msBeforeNext : 1000)),
    );
    throw new RateLimitedError(waitMs / 1000, 'too many failed logins; try again later');
  }

  /**
   * Counts a new session of `user` (after its password was verified); throws RateLimitedError when the
   * account has used up its sessions for the window. The caller then issues no session.
   */
  async admitSession(user: string): Promise<void> {
    try {
      await this.sessionsPerUser.consume(user);
    } catch (rejection) {
      if (rejection instanceof Error) throw rejection;
      const waitMs = rejection instanceof RateLimiterRes ? rejection.msBeforeNext : 1000;
      throw new RateLimitedError(waitMs / 1000, 'too many logins for this account; try again later');
    }
  }

  /**
   * A success gives back its reservation and clears the username + IP count. The per-IP failures stay:
   * they bound guessing across many usernames.
   */
  async release(username: string, ip: string): Promise<void> {
    await Promise.all([this.perIp.reward(ip), this.perUserIp.delete(LoginThrottle.userIpKey(username, ip))]);
  }
}
