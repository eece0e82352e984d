import { expect } from 'chai';
import { chartPhase, nextDrawAt } from '../../../client/view/chart-turns.ts';

const REDRAW_MS = 10_000;

/** Simulates charts redrawn whenever due, with new points all the time: the draw times of each. */
function drawTimes(phases: readonly number[], untilMs: number, stepMs = 200): number[][] {
  const drawnAt = phases.map(() => -Infinity);
  const times: number[][] = phases.map(() => []);
  for (let now = 0; now <= untilMs; now += stepMs) {
    phases.forEach((phase, chart) => {
      if (now < nextDrawAt(drawnAt[chart]!, phase, REDRAW_MS)) return;
      drawnAt[chart] = now;
      times[chart]!.push(now);
    });
  }
  return times;
}

describe('chart turns', function () {
  it('spreads the redraws of fifty charts drawn together over the interval instead of all at once', function () {
    const phases = Array.from({ length: 56 }, (_, index) => chartPhase(index + 20));
    const times = drawTimes(phases, 60_000);
    // After the first draw (all at 0), the draws of each 200-ms step after the first interval.
    const perStep = new Map<number, number>();
    for (const chart of times)
      for (const at of chart) if (at >= REDRAW_MS) perStep.set(at, (perStep.get(at) ?? 0) + 1);
    expect(Math.max(...perStep.values())).to.be.at.most(3);
    expect(perStep.size).to.be.at.least(40);
  });

  it('redraws each chart once an interval at its turn, never sooner than half an interval apart', function () {
    const phases = [0, 0.3, 0.95];
    const times = drawTimes(phases, 60_000);
    phases.forEach((phase, chart) => {
      const draws = times[chart]!;
      for (let index = 1; index < draws.length; index += 1) {
        const gap = draws[index]! - draws[index - 1]!;
        expect(gap)
          .to.be.at.least(REDRAW_MS / 2)
          .and.at.most(1.5 * REDRAW_MS);
      }
      // From the second draw after the first one, each falls on its turn (to the step) every interval.
      for (const at of draws.slice(2)) {
        const offset = (((at / REDRAW_MS - phase) % 1) + 1) % 1;
        expect(Math.min(offset, 1 - offset) * REDRAW_MS).to.be.below(200);
      }
      expect(
        draws.slice(2).every((at, index) => index === 0 || at - draws[index + 1]! === REDRAW_MS),
      ).to.equal(true);
    });
  });

  it('draws a new chart, or one quiet for longer than an interval, at once', function () {
    expect(nextDrawAt(-Infinity, 0.5, REDRAW_MS)).to.equal(-Infinity);
    // Turns at 5 s, 15 s, 25 s…: drawn at 0 (its first draw), next at 5 s; drawn at 1 s, next at 15 s.
    expect(nextDrawAt(0, 0.5, REDRAW_MS)).to.equal(5000);
    expect(nextDrawAt(1000, 0.5, REDRAW_MS)).to.equal(15_000);
    // Drawn at its turn (25 s), quiet until 40 s: due since 35 s, so drawn at once when a point comes.
    expect(nextDrawAt(25_000, 0.5, REDRAW_MS)).to.equal(35_000);
  });

  it('gives consecutive charts turns apart by about a third of the interval or more in any three', function () {
    for (let start = 0; start < 100; start += 1) {
      const turns = [0, 1, 2].map((offset) => chartPhase(start + offset)).sort((a, b) => a - b);
      const gaps = [turns[1]! - turns[0]!, turns[2]! - turns[1]!, 1 + turns[0]! - turns[2]!];
      expect(Math.min(...gaps)).to.be.above(0.2);
    }
  });
});
