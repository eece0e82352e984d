// Batches DOM work per animation frame: any number of `request()` calls before the next frame cost one
// render, so a burst of events is drawn once. Renders are also spaced by `minIntervalMs`: every frame
// that changes the page pays style, layout, paint and commit for the whole document, so at 50 events/s
// drawing a few batches a second instead of fifty is most of the saving (docs/dashboard.md, "Performance").
//
// A hidden page renders nothing (docs/dashboard.md, "Background tabs"): the state keeps up, the DOM
// waits; when the page is shown again, the current state is drawn in the next frame, without waiting
// for the interval.

export interface FrameScheduler {
  /** Asks for a render in an animation frame (once, however often it is called). */
  request(): void;
}

/** What the scheduler reads of the document: whether it is hidden, and when that changes. */
export type VisibilitySource = Pick<Document, 'hidden' | 'addEventListener'>;

export function createFrameScheduler(
  render: () => void,
  minIntervalMs = 0,
  visibility: VisibilitySource = document,
): FrameScheduler {
  let pending = false;
  /** A render was asked for while hidden: it runs as soon as the page is shown. */
  let waitingForShow = false;
  let lastRenderAt = -Infinity;
  const run = () => {
    if (visibility.hidden) {
      waitingForShow = true;
      return;
    }
    pending = false;
    lastRenderAt = performance.now();
    render();
  };
  visibility.addEventListener('visibilitychange', () => {
    if (visibility.hidden || !waitingForShow) return;
    waitingForShow = false;
    requestAnimationFrame(run);
  });
  return {
    request() {
      if (pending) return;
      pending = true;
      if (visibility.hidden) {
        waitingForShow = true;
        return;
      }
      const wait = lastRenderAt + minIntervalMs - performance.now();
      if (wait > 0) setTimeout(() => requestAnimationFrame(run), wait);
      else requestAnimationFrame(run);
    },
  };
}
