import { expect } from 'chai';
import {
  DEFAULT_SCRYPT,
  hashPassword,
  isPasswordHash,
  verifyPassword,
} from '../../../server/auth/passwords.ts';
import { TEST_SCRYPT } from '../../helpers/auth.ts';

describe('password hashing', function () {
  this.timeout(30_000);

  it('stores scrypt$N$r$p$salt$hash with OWASP parameters by default and a salt per hash', async function () {
    const [first, second] = await Promise.all([hashPassword('same password'), hashPassword('same password')]);
    const parts = first.split('$');
    expect(parts.slice(0, 4)).to.deep.equal(['scrypt', String(2 ** 17), '8', '1']);
    expect(DEFAULT_SCRYPT).to.deep.equal({ N: 2 ** 17, r: 8, p: 1 });
    expect(Buffer.from(parts[4]!, 'base64url')).to.have.length(16);
    expect(Buffer.from(parts[5]!, 'base64url')).to.have.length(32);
    expect(second).to.not.equal(first);
    expect(await verifyPassword('same password', first)).to.equal(true);
    expect(await verifyPassword('same password', second)).to.equal(true);
    expect(await verifyPassword('same passwore', first)).to.equal(false);
  });

  it('verifies with the parameters stored in the hash', async function () {
    const cheap = await hashPassword('pässword', TEST_SCRYPT);
    expect(cheap.startsWith(`scrypt$${2 ** 12}$8$1$`)).to.equal(true);
    expect(await verifyPassword('pässword', cheap)).to.equal(true);
    // NFC and NFD spellings of the same text are the same password.
    expect(await verifyPassword('pa\u0308ssword', cheap)).to.equal(true);
    expect(await verifyPassword('password', cheap)).to.equal(false);
  });

  it('treats a malformed or absurd hash as a failed check, never a crash', async function () {
    const good = await hashPassword('secret-password', TEST_SCRYPT);
    const [, , r, p, salt, key] = good.split('$');
    const bad = [
      '',
      'plain',
      good.replace('scrypt', 'bcrypt'),
      ['scrypt', 1000, r, p, salt, key].join('$'), // N not a power of two
      ['scrypt', 2 ** 30, r, p, salt, key].join('$'), // would need 128 GiB
      ['scrypt', 2 ** 12, r, p, salt, 'c2hvcnQ'].join('$'), // key too short
    ];
    for (const stored of bad) {
      expect(isPasswordHash(stored), stored).to.equal(false);
      expect(await verifyPassword('secret-password', stored), stored).to.equal(false);
    }
    const refused = await hashPassword('x', { N: 3, r: 8, p: 1 }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).to.be.instanceOf(RangeError);
  });
});
