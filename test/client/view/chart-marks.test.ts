import { expect } from 'chai';
import type { LogEventEnvelope } from '../../../shared/events.ts';
import { groupMarks, markLabel, markName, MERGE_PX } from '../../../client/view/chart-marks.ts';

const T0 = 1_800_000_000_000;

function annotation(id: string, offsetSeconds: number, title = `deploy ${id}`): LogEventEnvelope {
  return {
    type: 'event',
    board: 'main',
    id,
    ts: T0 + offsetSeconds * 1000,
    level: 'info',
    title,
    annotate: true,
  };
}

/** One pixel a second from T0. */
const xOf = (event: LogEventEnvelope) => (event.ts - T0) / 1000;

describe('chart marks', function () {
  it('draws annotations apart by MERGE_PX or more as lines of their own, at their x', function () {
    const events = [annotation('a', 0), annotation('b', MERGE_PX), annotation('c', 100)];
    const marks = groupMarks(events, xOf);
    expect(marks.map((mark) => mark.x)).to.deep.equal([0, MERGE_PX, 100]);
    expect(marks.map((mark) => mark.events.map((event) => event.id))).to.deep.equal([['a'], ['b'], ['c']]);
  });

  it('draws annotations closer than MERGE_PX to a line as that line, titled together', function () {
    // One every 1.5 px: a, b, c within 4 px of a's line; d starts the next one.
    const events = ['a', 'b', 'c', 'd', 'e'].map((id, index) => annotation(id, index * 1.5));
    const marks = groupMarks(events, xOf);
    expect(marks.map((mark) => mark.events.map((event) => event.id))).to.deep.equal([
      ['a', 'b', 'c'],
      ['d', 'e'],
    ]);
    expect(marks.map((mark) => mark.x)).to.deep.equal([0, 4.5]);
    expect(markLabel(marks[0]!)).to.match(/^\d\d:\d\d deploy a · \d\d:\d\d deploy b · \d\d:\d\d deploy c$/);
    expect(markName(marks[1]!, 1, 2)).to.match(
      /^deploy d, \d\d:\d\d; deploy e, \d\d:\d\d \(annotation 2 of 2; arrow keys for the others\)$/,
    );
  });

  it('lists three titles in a label and counts the rest (the name lists them all)', function () {
    const events = ['a', 'b', 'c', 'd', 'e'].map((id) => annotation(id, 0));
    const [mark] = groupMarks(events, xOf);
    expect(markLabel(mark!)).to.match(/deploy c · and 2 more$/);
    expect(markName(mark!, 0, 1).match(/deploy [a-e], /g)).to.have.length(5);
  });
});
