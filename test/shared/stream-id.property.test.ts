// The id and name schemas are the last line between text from Redis or a publisher and an SSE frame or
// the dashboard's DOM: these properties pin their edges (docs/security.md, "Hardening").
import { expect } from 'chai';
import fc from 'fast-check';
import { nameSchema, streamIdSchema } from '../../shared/events.ts';

const MAX = (1n << 64n) - 1n;

/** What Redis can resume after: both parts in 0..2^64-1, and not the very last id. */
function resumable(ms: bigint, seq: bigint): boolean {
  return ms <= MAX && seq <= MAX && !(ms === MAX && seq === MAX);
}

describe('stream id and name schemas', function () {
  it('accepts an id exactly when both parts fit in 64 bits (property, leading zeros included)', function () {
    const part = fc.oneof(
      fc.bigInt({ min: 0n, max: 10n ** 20n - 1n }),
      fc.bigInt({ min: MAX - 3n, max: MAX + 3n }),
    );
    fc.assert(
      fc.property(part, part, fc.nat(3), fc.nat(3), (ms, seq, msZeros, seqZeros) => {
        const pad = (value: bigint, zeros: number) => '0'.repeat(zeros) + value.toString();
        const text = `${pad(ms, msZeros)}-${pad(seq, seqZeros)}`;
        const digitsOk = text.split('-').every((piece) => piece.length <= 20);
        expect(streamIdSchema.safeParse(text).success, text).to.equal(digitsOk && resumable(ms, seq));
      }),
      { numRuns: 5000 },
    );
  });

  it('refuses an id with anything before or after it (no CR, LF or field can ride along)', function () {
    const valid = fc.tuple(fc.bigInt({ min: 0n, max: MAX - 1n }), fc.bigInt({ min: 0n, max: MAX - 1n }));
    const extra = fc.oneof(
      fc.constantFrom('\n', '\r', '\0', '\n\ndata: injected', '\nevent: reset', ' ', 'x'),
      fc.string({ minLength: 1 }).filter((text) => /[^0-9]/.test(text)),
    );
    fc.assert(
      fc.property(valid, extra, fc.boolean(), ([ms, seq], suffix, before) => {
        const id = `${ms}-${seq}`;
        const text = before ? `${suffix}${id}` : `${id}${suffix}`;
        expect(streamIdSchema.safeParse(text).success, JSON.stringify(text)).to.equal(false);
      }),
      { numRuns: 3000 },
    );
  });

  it('names refuse the HTML-special characters < > " \' & and anything outside the charset', function () {
    for (const char of ['<', '>', '"', "'", '&', ' ', '\n', '\r', '\0', '\\', '%', '`']) {
      expect(nameSchema.safeParse(`api${char}x`).success, JSON.stringify(char)).to.equal(false);
    }
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 64, unit: 'binary' }), (name) => {
        expect(nameSchema.safeParse(name).success, JSON.stringify(name)).to.equal(
          /^[A-Za-z0-9._:/-]+$/.test(name),
        );
      }),
      { numRuns: 3000 },
    );
  });
});
