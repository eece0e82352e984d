// When each chart takes its turn to redraw (docs/dashboard.md, "Performance"). A chart redraws at most
// about once per pixel of time (every 2 s at 15 minutes, 10 s at 24 hours), and every chart has new points
// every few seconds: charts drawn together stayed due together, so at 24 hours all fifty-odd in view fell
// due at once every 10 s and were drawn in bursts of renders, a few charts each. Each chart instead has
// its own turn in the interval, its phase, and the charts in view take turns spread over it.

const GOLDEN_FRACTION = (Math.sqrt(5) - 1) / 2;

/**
 * The turn of the chart at `index` in page order, as a fraction of the redraw interval: multiples of the
 * golden ratio's fraction, which spread any run of consecutive charts (those in view) about evenly.
 */
export function chartPhase(index: number): number {
  return (index * GOLDEN_FRACTION) % 1;
}

/**
 * When a chart drawn at `drawnAt` (ms) may be drawn again: at its turn, `phase` of the way through an
 * interval of `redrawMs`, and no sooner than half an interval after its last draw. A chart drawn at its
 * turn is due again one interval later; one drawn off its turn (new, or quiet for longer than an interval
 * and drawn at once) is back on its turn at its next draw.
 */
export function nextDrawAt(drawnAt: number, phase: number, redrawMs: number): number {
  const earliest = drawnAt + redrawMs / 2;
  return (Math.ceil(earliest / redrawMs - phase) + phase) * redrawMs;
}
