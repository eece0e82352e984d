// The public status page's state rules (client/status-state.ts): a snapshot replaces everything, a live
// change applies only to a shown service and only when newer, the overall state is the worst one.
import { expect } from 'chai';
import {
  agoText,
  applyStatus,
  fromSnapshot,
  overallOf,
  replaceWithSnapshot,
} from '../../client/status-state.ts';

describe('status page state', function () {
  const base = fromSnapshot({
    services: ['api', 'web'],
    statuses: [
      { service: 'api', state: 'ok', since: 1000, id: '1000-0' },
      { service: 'gone', state: 'down', since: 1000, id: '1000-1' },
    ],
  });

  it('keeps only shown services from a snapshot', function () {
    expect([...base.statuses.keys()]).to.deep.equal(['api']);
    expect(overallOf(base)).to.equal('ok');
  });

  it('applies a newer change and ignores an older or unshown one', function () {
    const newer = applyStatus(base, { service: 'api', state: 'down', since: 2000, id: '2000-0' });
    expect(newer.statuses.get('api')?.state).to.equal('down');
    expect(overallOf(newer)).to.equal('down');
    const older = applyStatus(newer, { service: 'api', state: 'ok', since: 1500, id: '1500-0' });
    expect(older).to.equal(newer);
    const unshown = applyStatus(newer, { service: 'secret', state: 'ok', since: 3000, id: '3000-0' });
    expect(unshown).to.equal(newer);
    const repeated = applyStatus(newer, {
      service: 'api',
      state: 'down',
      since: 2500,
      id: '2500-0',
      message: 'still',
    });
    expect(repeated.statuses.get('api')).to.deep.include({ since: 2000, message: 'still', id: '2500-0' });
    const web = applyStatus(newer, { service: 'web', state: 'maintenance', since: 3000, id: '3000-0' });
    expect(overallOf(web)).to.equal('down');
  });

  it('keeps when a state began across a snapshot with the same state', function () {
    const next = replaceWithSnapshot(base, {
      services: ['api'],
      statuses: [{ service: 'api', state: 'ok', since: 5000, id: '5000-0' }],
    });
    expect(next.statuses.get('api')?.since).to.equal(1000);
    const changed = replaceWithSnapshot(base, {
      services: ['api'],
      statuses: [{ service: 'api', state: 'down', since: 5000, id: '5000-0' }],
    });
    expect(changed.statuses.get('api')?.since).to.equal(5000);
  });

  it('says how long ago in words', function () {
    expect([0, 4_999, 12_000, 5 * 60_000, 3 * 3_600_000, 3 * 86_400_000].map(agoText)).to.deep.equal([
      'just now',
      'just now',
      '12 s ago',
      '5 min ago',
      '3 h ago',
      '3 d ago',
    ]);
    expect(overallOf(fromSnapshot({ services: [], statuses: [] }))).to.equal('unknown');
  });
});
