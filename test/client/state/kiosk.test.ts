import { expect } from 'chai';
import {
  DEFAULT_CYCLE_SECONDS,
  kioskFromQuery,
  kioskStops,
  kioskUrl,
  MIN_CYCLE_SECONDS,
  nextKioskStop,
} from '../../../client/state/kiosk.ts';

describe('kiosk mode: options and rotation', function () {
  it('is off without kiosk=1 (or true/on/yes)', function () {
    expect(kioskFromQuery('', false)).to.equal(undefined);
    expect(kioskFromQuery('?kiosk=0', false)).to.equal(undefined);
    expect(kioskFromQuery('?kiosk=on', false)).to.deep.equal({
      boards: undefined,
      cycleSeconds: DEFAULT_CYCLE_SECONDS,
      overview: false,
    });
  });

  it('reads boards (valid names, once each, in order), the cycle (bounded; 0 stays) and the overview', function () {
    expect(kioskFromQuery('?kiosk=1&boards=payments,main,payments,bad%20name&cycle=12', false)).to.deep.equal(
      {
        boards: ['payments', 'main'],
        cycleSeconds: 12,
        overview: false,
      },
    );
    expect(kioskFromQuery('?kiosk=1&cycle=1', false)?.cycleSeconds).to.equal(MIN_CYCLE_SECONDS);
    expect(kioskFromQuery('?kiosk=1&cycle=0', false)?.cycleSeconds).to.equal(0);
    expect(kioskFromQuery('?kiosk=1&cycle=soon', false)?.cycleSeconds).to.equal(DEFAULT_CYCLE_SECONDS);
    expect(kioskFromQuery('?kiosk=1', true)?.overview).to.equal(true);
    expect(kioskFromQuery('?kiosk=1&overview=1', false)?.overview).to.equal(true);
  });

  it('rotates through the chosen boards the user may see, after the overview when it is a stop', function () {
    const visible = ['main', 'edge', 'payments'];
    const chosen = { boards: ['payments', 'secret', 'main'], cycleSeconds: 30, overview: false };
    const stops = kioskStops(chosen, visible);
    expect(stops).to.deep.equal(['payments', 'main']);
    expect(nextKioskStop(stops, 'payments')).to.equal('main');
    expect(nextKioskStop(stops, 'main')).to.equal('payments');
    // A page not in the rotation goes to its first stop.
    expect(nextKioskStop(stops, 'edge')).to.equal('payments');
    const all = kioskStops({ boards: undefined, cycleSeconds: 30, overview: true }, visible);
    expect(all).to.deep.equal([undefined, 'main', 'edge', 'payments']);
    expect(nextKioskStop(all, 'payments')).to.equal(undefined);
    expect(nextKioskStop([], 'main')).to.equal('main');
  });

  it('builds each stop URL with the options carried on', function () {
    const options = { boards: ['main', 'payments'], cycleSeconds: 30, overview: false };
    expect(kioskUrl('payments', options)).to.equal('/b/payments?kiosk=1&boards=main,payments&cycle=30');
    expect(kioskUrl(undefined, { boards: undefined, cycleSeconds: 10, overview: true })).to.equal(
      '/?kiosk=1&cycle=10&overview=1',
    );
  });
});
