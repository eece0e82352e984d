// The resume cursor (docs/events.md, "Resume"): the compact text every frame of a many-board stream
// carries, read back exactly, and the forms written before it still read.
import { expect } from 'chai';
import fc from 'fast-check';
import { formatCursor, formatPositions, parseCursor } from '../../shared/cursor.ts';

function parsed(text: string): Record<string, string> {
  const result = parseCursor(text);
  if (!result.ok) throw new Error(`${text}: ${result.message}`);
  return Object.fromEntries(result.value);
}

describe('resume cursor', function () {
  it('writes several boards as the newest ms and each board age, leaving out a zero sequence', function () {
    const cursor = new Map([
      ['main', '1718000000003-0'],
      ['edge', '1718000000000-4'],
      ['payments', '1718000000001-2'],
    ]);
    expect(formatCursor(cursor)).to.equal('1718000000003~edge:3-4,main:0,payments:2-2');
    expect(parsed('1718000000003~edge:3-4,main:0,payments:2-2')).to.deep.equal(Object.fromEntries(cursor));
  });

  it('is about 40% of the plain text with 10 boards at 100 events/s', function () {
    const boards = Array.from({ length: 10 }, (_, index) => `b${String(index + 1).padStart(2, '0')}`);
    const ids = boards.map((_, index) => `${1764688888888 - index * 10}-0`);
    const plain = boards.map((board, index) => `${board}:${ids[index]}`).join(',');
    const compact = formatPositions(boards, ids);
    expect(compact).to.equal(
      '1764688888888~b01:0,b02:10,b03:20,b04:30,b05:40,b06:50,b07:60,b08:70,b09:80,b10:90',
    );
    expect(compact.length / plain.length).to.be.below(0.45);
  });

  it('writes one board, and ids beyond 15 ms digits, in the plain form', function () {
    expect(formatCursor(new Map([['main', '1718000000003-0']]))).to.equal('main:1718000000003-0');
    expect(formatPositions(['a', 'b'], [undefined, '5-1'])).to.equal('b:5-1');
    const huge = new Map([
      ['a', '18446744073709551614-0'],
      ['b', '1-0'],
    ]);
    expect(formatCursor(huge)).to.equal('a:18446744073709551614-0,b:1-0');
    expect(parsed(formatCursor(huge))).to.deep.equal(Object.fromEntries(huge));
  });

  it('still reads the plain form and a bare id (main)', function () {
    expect(parsed('edge:1718000000000-4,main:1718000000003-0')).to.deep.equal({
      edge: '1718000000000-4',
      main: '1718000000003-0',
    });
    expect(parsed('1718000000000-4')).to.deep.equal({ main: '1718000000000-4' });
  });

  for (const [text, message] of [
    ['17x~a:0', 'before "~"'],
    ['5~a:6', 'beyond its time'],
    ['5~a', 'is not a <board>:<age>'],
    ['5~a:1-2-3', 'is not a <board>:<age>'],
    ['5~a:0,a:1', 'twice'],
    ['5~A:0', 'is not a board name'],
    ['18446744073709551615~a:0-18446744073709551615', "Redis' 64-bit range"],
  ]) {
    it(`refuses ${JSON.stringify(text)}, naming what is wrong`, function () {
      const result = parseCursor(text!);
      expect(result.ok).to.equal(false);
      if (!result.ok) expect(result.message).to.contain(message);
    });
  }

  it('reads back every cursor it writes (property)', function () {
    const board = fc.stringMatching(/^[a-z][a-z0-9-]{0,11}$/);
    const id = fc.oneof(
      fc.tuple(fc.bigInt({ min: 1700000000000n, max: 1700000100000n }), fc.bigInt({ min: 0n, max: 3n })),
      fc.tuple(fc.bigInt({ min: 0n, max: (1n << 64n) - 2n }), fc.bigInt({ min: 0n, max: 10n ** 6n })),
    );
    fc.assert(
      fc.property(fc.dictionary(board, id, { minKeys: 1, maxKeys: 12 }), (entries) => {
        const cursor = new Map(Object.entries(entries).map(([name, [ms, seq]]) => [name, `${ms}-${seq}`]));
        const text = formatCursor(cursor);
        expect(parsed(text), text).to.deep.equal(Object.fromEntries(cursor));
      }),
      { numRuns: 3000 },
    );
  });
});
