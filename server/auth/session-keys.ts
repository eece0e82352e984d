// Cookie signing keys (docs/design.md): SESSION_KEYS (first signs, all verify, so a new key can be put first
// and the old one dropped later), or, when unset, one key generated once and kept in Redis so every
// worker of every host signs and verifies alike.
import { randomBytes } from 'node:crypto';
import { sessionNames, type RedisNames } from '../../shared/keys.ts';
import type { Logger } from '../log.ts';
import type { RedisClient } from '../redis.ts';

export async function resolveSessionKeys(
  redis: RedisClient,
  names: RedisNames,
  configured: readonly string[] | undefined,
  log: Logger,
): Promise<string[]> {
  if (configured && configured.length > 0) return [...configured];
  const key = sessionNames(names.prefix).signingKeys;
  // SET NX: the first worker to start decides; the others read its key.
  await redis.set(key, randomBytes(32).toString('base64url'), { condition: 'NX' });
  const stored = await redis.get(key);
  if (typeof stored !== 'string' || stored.length < 16) throw new Error(`no session key at ${key}`);
  log.warn(
    { key },
    'SESSION_KEYS is not set: cookies are signed with a key generated once and kept in Redis; set SESSION_KEYS to control and rotate it',
  );
  return stored.split(',');
}
