// The SSE encoders are the last step before the wire; no input reaches a comment today, so only a unit
// test can notice the comment encoder letting CR, LF or NUL through (docs/security.md, "Hardening").
import { expect } from 'chai';
import fc from 'fast-check';
import { encodeComment } from '../../../server/sse/frame.ts';

describe('SSE frame encoders', function () {
  it('a comment is one line whatever its text: CR, LF and NUL cannot start a field', function () {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('a', ' ', ':', '\r', '\n', '\0', 'd', '=') }), (text) => {
        const frame = encodeComment(text).toString('utf8');
        expect(frame.startsWith(': ')).to.equal(true);
        expect(frame.endsWith('\n\n')).to.equal(true);
        expect(frame.slice(0, -2)).to.not.match(/[\r\n\0]/);
      }),
      { numRuns: 2000 },
    );
    expect(encodeComment('a\r\ndata: injected\0').toString()).to.equal(': a  data: injected \n\n');
  });
});
