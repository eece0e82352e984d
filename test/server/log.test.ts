// The demo's log lines are for people: one line per record, time, level, message, then the fields.
import { expect } from 'chai';
import { Writable } from 'node:stream';
import { createLogger, formatLogRecord, humanLogDestination } from '../../server/log.ts';

describe('human log lines (the demo)', function () {
  const at = new Date(2026, 0, 2, 3, 4, 5).getTime();
  const cases: [string, string][] = [
    [
      JSON.stringify({ level: 40, time: at, pid: 7, msg: 'SESSION_KEYS is not set' }),
      '03:04:05 WARN  SESSION_KEYS is not set\n',
    ],
    [
      JSON.stringify({
        level: 50,
        time: at,
        pid: 7,
        key: '{p}:session-keys',
        err: { message: 'boom at 3' },
        msg: 'x',
      }),
      '03:04:05 ERROR x  (key={p}:session-keys err="boom at 3")\n',
    ],
    [
      JSON.stringify({ level: 30, time: at, n: 3, where: 'two words', msg: 'ok' }),
      '03:04:05 INFO  ok  (n=3 where="two words")\n',
    ],
    ['not json\n', 'not json\n'],
  ];
  for (const [record, line] of cases) {
    it(`formats ${record.slice(0, 60)}`, function () {
      expect(formatLogRecord(record)).to.equal(line);
    });
  }

  it('is what a pino logger writes through humanLogDestination', function () {
    let written = '';
    const out = new Writable({
      write(chunk: Buffer, _encoding, done) {
        written += chunk.toString();
        done();
      },
    });
    createLogger('info', humanLogDestination(out)).warn({ key: 'k' }, 'hello');
    expect(written).to.match(/^\d\d:\d\d:\d\d WARN {2}hello {2}\(key=k\)\n$/);
  });
});
