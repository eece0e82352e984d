import { expect } from 'chai';
import { boardFromPath, sortBoards, type BoardSummary } from '../../../client/state/boards.ts';
import { initialOverviewState, reduceOverview } from '../../../client/state/overview.ts';
import { parseBoardsFrame, parseResetFrame } from '../../../client/stream/frames.ts';
import { describeCounts } from '../../../client/view/board-cards.ts';

const counts = (ok = 0, degraded = 0, down = 0, maintenance = 0) => ({ ok, degraded, down, maintenance });

function summary(name: string, title: string, state: BoardSummary['state'], ok = 1): BoardSummary {
  return { name, title, state, counts: counts(ok, 0, state === 'down' ? 1 : 0) };
}

describe('boards in the browser', function () {
  it('reads the board of a /b/<board> path, and nothing else', function () {
    expect(boardFromPath('/b/payments')).to.equal('payments');
    expect(boardFromPath('/b/edge-2')).to.equal('edge-2');
    for (const path of ['/', '/b/', '/b/Payments', '/b/a_b', '/b/x/y', `/b/${'a'.repeat(65)}`, '/login']) {
      expect(boardFromPath(path), path).to.equal(undefined);
    }
  });

  it('lists main first, then the boards by title', function () {
    const sorted = sortBoards([
      summary('zeta', 'Alpha team', 'ok'),
      summary('edge', 'Edge', 'ok'),
      summary('main', 'Main', null),
    ]);
    expect(sorted.map((board) => board.name)).to.deep.equal(['main', 'zeta', 'edge']);
  });

  it('says the counts in words, worst first', function () {
    expect(describeCounts(counts())).to.equal('No services yet');
    expect(describeCounts(counts(2, 0, 1))).to.equal('3 services: 1 down, 2 ok');
    expect(describeCounts(counts(0, 0, 0, 1))).to.equal('1 service: 1 maintenance');
  });

  it('parses the stream control frames, ignoring what does not parse', function () {
    expect(parseResetFrame('{"reason":"history-trimmed","board":"payments"}')).to.equal('payments');
    expect(parseResetFrame('{"reason":"unknown-id"}')).to.equal(undefined);
    expect(parseResetFrame('{"board":"Not A Board"}')).to.equal(undefined);
    expect(parseBoardsFrame('{"removed":["payments","edge"]}')).to.deep.equal(['payments', 'edge']);
    expect(parseBoardsFrame('not json')).to.deep.equal([]);
    expect(parseBoardsFrame('{"removed":["__proto__"]}')).to.deep.equal([]);
  });
});

describe('the overview reducer', function () {
  it('announces a board whose worst state changed between two answers, not the first answer', function () {
    let state = initialOverviewState(0);
    state = reduceOverview(state, {
      type: 'boardsLoaded',
      boards: [summary('payments', 'Payments', 'ok'), summary('edge', 'Edge', 'ok')],
      now: 1,
    });
    expect(state.announcements).to.deep.equal([]);
    expect(state.boards?.map((board) => board.name)).to.deep.equal(['edge', 'payments']);
    state = reduceOverview(state, {
      type: 'boardsLoaded',
      boards: [summary('payments', 'Payments', 'down'), summary('edge', 'Edge', 'ok')],
      now: 2,
    });
    expect(state.announcements.map((said) => said.text)).to.deep.equal(['Payments is down']);
  });

  it('drops a board that left the stream and says so', function () {
    let state = reduceOverview(initialOverviewState(0), {
      type: 'boardsLoaded',
      boards: [summary('payments', 'Payments', 'ok'), summary('edge', 'Edge', null)],
      now: 1,
    });
    state = reduceOverview(state, { type: 'boardsRemoved', boards: ['payments', 'unknown'], now: 2 });
    expect(state.boards?.map((board) => board.name)).to.deep.equal(['edge']);
    expect(state.announcements.map((said) => said.text)).to.deep.equal(['Payments is no longer available']);
  });

  it('keeps the newest status time for the header, and says connection changes', function () {
    let state = initialOverviewState(0);
    state = reduceOverview(state, { type: 'streamStateChanged', state: 'live', now: 1 });
    expect(state.announcements.map((said) => said.text)).to.deep.equal(['Connection live']);
    const status = { type: 'status', board: 'edge', service: 'api', state: 'ok', id: '5-0' } as const;
    state = reduceOverview(state, { type: 'statusesReceived', statuses: [{ ...status, ts: 500 }], now: 2 });
    state = reduceOverview(state, { type: 'statusesReceived', statuses: [{ ...status, ts: 300 }], now: 3 });
    expect(state.lastEventTs).to.equal(500);
  });
});
