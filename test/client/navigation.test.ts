import { expect } from 'chai';
import fc from 'fast-check';
import { safeNext } from '../../client/navigation.ts';

const ORIGIN = 'https://dashboard.example';

/** Where a browser on ORIGIN goes when the login page assigns `next`. */
function landsOn(next: string): URL {
  return new URL(next, ORIGIN);
}

describe('login next', function () {
  it('keeps same-origin paths with their query and fragment', function () {
    expect(safeNext('/?filter=db*')).to.equal('/?filter=db*');
    expect(safeNext('/board/ops#top')).to.equal('/board/ops#top');
  });

  it('refuses every way of naming another host, including tab and newline inside //', function () {
    const hostile = [
      null,
      '',
      'https://evil.example/',
      '//evil.example',
      '/\\evil.example',
      '/\t/evil.example',
      '/\n/evil.example',
      '/\r\n/evil.example',
      '\t//evil.example',
      '/\t\\evil.example',
      '/./\t/evil.example',
      '/.//evil.example',
      'javascript:alert(1)',
      '/%09/evil.example',
    ];
    for (const value of hostile) {
      const next = safeNext(value);
      expect(landsOn(next).origin, JSON.stringify(value)).to.equal(ORIGIN);
      expect(next, JSON.stringify(value)).to.match(/^\/(?![/\\])/);
    }
    expect(safeNext('/\t/evil.example')).to.equal('/');
  });

  it('whatever the text, the browser stays on our origin (property)', function () {
    const piece = fc.constantFrom(
      '/',
      '\\',
      '\t',
      '\n',
      '\r',
      ' ',
      '.',
      '..',
      '%2F',
      '%5C',
      ':',
      '@',
      'evil.example',
      '?',
      '#',
      'a',
    );
    fc.assert(
      fc.property(
        fc.array(piece, { maxLength: 8 }).map((parts) => parts.join('')),
        fc.string(),
        (built, any) => {
          for (const value of [built, any, `/${any}`]) {
            const next = safeNext(value);
            expect(landsOn(next).origin).to.equal(ORIGIN);
            expect(next.startsWith('//') || next.startsWith('/\\')).to.equal(false);
          }
        },
      ),
      { numRuns: 5000 },
    );
  });
});
