// Batches DOM work per animation frame: any number of `request()` calls before the next frame cost one
// render, so a burst of events is drawn once. Renders are also spaced by `minIntervalMs`: every frame
// that changes the page pays style, layout, paint and commit for the whole document, so at 50 events/s
// drawing ten batches a second instead of fifty is most of the saving (docs/dashboard.md, "Performance").

export interface FrameScheduler {
  /** Asks for a render in an animation frame (once, however often it is called). */
  request(): void;
}

export function createFrameScheduler(render: () => void, minIntervalMs = 0): FrameScheduler {
  let pending = false;
  let lastRenderAt = -Infinity;
  const run = () => {
    pending = false;
    lastRenderAt = performance.now();
    render();
  };
  return {
    request() {
      if (pending) return;
      pending = true;
      const wait = lastRenderAt + minIntervalMs - performance.now();
      if (wait > 0) setTimeout(() => requestAnimationFrame(run), wait);
      else requestAnimationFrame(run);
    },
  };
}
