import { expect } from 'chai';
import { formatDuration, formatNumber, formatValue } from '../../../client/state/format.ts';

describe('formatting for people', function () {
  it('durations use one or two units', function () {
    expect(formatDuration(45_000)).to.equal('45s');
    expect(formatDuration(12 * 60_000 + 5000)).to.equal('12m');
    expect(formatDuration(3 * 3_600_000 + 5 * 60_000)).to.equal('3h 5m');
    expect(formatDuration(2 * 86_400_000)).to.equal('2d');
    expect(formatDuration(-5)).to.equal('0s');
  });

  it('numbers keep three significant digits', function () {
    expect(formatNumber(12.345)).to.equal('12.3');
    expect(formatNumber(0.012345)).to.equal('0.0123');
    expect(formatNumber(1234.5)).to.equal('1235');
  });

  it('values are scaled in their unit', function () {
    expect(formatValue(120, 'ms')).to.equal('120 ms');
    expect(formatValue(1500, 'ms')).to.equal('1.5 s');
    expect(formatValue(90, 's')).to.equal('1.5 min');
    expect(formatValue(1536, 'B')).to.equal('1.5 KiB');
    expect(formatValue(3 * 1024 ** 3, 'bytes')).to.equal('3 GiB');
    expect(formatValue(45.25, '%')).to.equal('45.3%');
    expect(formatValue(1200, 'req/s')).to.equal('1.2k req/s');
    expect(formatValue(7, undefined)).to.equal('7');
  });
});
