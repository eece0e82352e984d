// First start (docs/design.md, "Sessions, users, security"): with no users at all, create `admin` with
// PULSEBOARD_ADMIN_PASSWORD, or with a random password that is shown once.
import { randomInt } from 'node:crypto';
import type { UserStore } from './users.ts';

export interface FirstAdminResult {
  /** Whether this call created the admin (false when users exist or another worker did it). */
  created: boolean;
  /** The random password, when one was generated; shown once, stored only as a hash. */
  generatedPassword?: string;
}

const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';

/** 20 letters and digits (~115 bits), none that look alike or start a command-line option. */
function randomPassword(length = 20): string {
  return Array.from({ length }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
}

export async function ensureFirstAdmin(
  users: UserStore,
  configuredPassword?: string,
): Promise<FirstAdminResult> {
  if ((await users.count()) > 0) return { created: false };
  const generatedPassword = configuredPassword ? undefined : randomPassword();
  const created = await users.createFirstAdmin(configuredPassword ?? generatedPassword ?? '');
  if (!created) return { created: false };
  return generatedPassword ? { created, generatedPassword } : { created };
}
