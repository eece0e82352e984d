// Annotation marks of one chart (docs/dashboard.md, "Annotations"). The dashed lines are drawn on the
// plot's canvas (from uPlot's `draw` hook), not as an element per annotation: a new annotation used to
// insert a button into each of the fifty-odd charts in view, and the style, layout and paint of those made
// the page's long frames (docs/dashboard.md, "Performance"). Annotations closer than MERGE_PX share one
// line. One button per chart takes hover and keyboard focus: it moves to the line under the pointer, or
// through the lines with the arrow keys, and shows their titles. While nothing is hovered or focused the
// chart's DOM is not written at all (only when its marks go from none to some, or back).
import type uPlot from 'uplot';
import type { LogEventEnvelope } from '../../shared/events.ts';
import { formatHourMinute } from '../state/format.ts';
import { element, setAttribute, setText } from './dom.ts';

/** Annotations whose lines would be closer than this (CSS px) are drawn as one and titled together. */
export const MERGE_PX = 4;
/** The pointer shows a line's titles within this distance of it (CSS px). */
const HIT_PX = 6;
/** Titles listed in one label; the rest are counted. */
const MAX_LISTED = 3;

/** One line on the chart: its x (CSS px from the chart's left edge) and the annotations it stands for. */
export interface Mark {
  x: number;
  events: LogEventEnvelope[];
}

/** Groups annotations (sorted by ts) into lines: one closer than `mergePx` to a line's first joins it. */
export function groupMarks(
  events: readonly LogEventEnvelope[],
  xOf: (event: LogEventEnvelope) => number,
  mergePx = MERGE_PX,
): Mark[] {
  const marks: Mark[] = [];
  let last: Mark | undefined;
  for (const event of events) {
    const x = xOf(event);
    if (last && x - last.x < mergePx) {
      last.events.push(event);
    } else {
      last = { x, events: [event] };
      marks.push(last);
    }
  }
  return marks;
}

/** What a label shows: each title after its time ("14:05 Deploy api v2"). */
export function markText(event: LogEventEnvelope): string {
  return `${formatHourMinute(event.ts)} ${event.title}`;
}

/** A line's visible label: its titles, the first MAX_LISTED of them, then how many more. */
export function markLabel(mark: Mark): string {
  const listed = mark.events.slice(0, MAX_LISTED).map(markText).join(' · ');
  const more = mark.events.length - MAX_LISTED;
  return more > 0 ? `${listed} · and ${more} more` : listed;
}

/** A line's accessible name: every title with its time, then where it is among the chart's lines. */
export function markName(mark: Mark, index: number, count: number): string {
  const titles = mark.events.map((event) => `${event.title}, ${formatHourMinute(event.ts)}`).join('; ');
  return `${titles} (annotation ${index + 1} of ${count}; arrow keys for the others)`;
}

export interface MarkColours {
  marker: string;
  markerError: string;
}

export class ChartMarks {
  /** The one element of the chart's marks: focusable, moved to the line shown. */
  readonly button: HTMLButtonElement;
  private readonly label: HTMLSpanElement;
  /** The lines as last drawn. */
  marks: Mark[] = [];
  /** The line the button shows (hover or focus) or last showed. */
  private current = 0;
  private hovered = false;
  private focused = false;
  /** The lines changed since the DOM last followed them (written by `sync`, outside the draws). */
  dirty = false;
  /** The plotting area (CSS px from the chart's edges), for the button's box. */
  private plotLeft = 0;
  private plotWidth = 0;
  private plotTop = 0;
  private plotHeight = 0;

  constructor(
    private readonly area: HTMLElement,
    chartName: string,
  ) {
    const button = element('button', 'chart-marker');
    button.type = 'button';
    button.hidden = true;
    button.setAttribute('aria-label', `Annotations on ${chartName}`);
    const label = element('span', 'chart-marker-label');
    label.setAttribute('aria-hidden', 'true');
    button.append(label);
    this.button = button;
    this.label = label;
    area.append(button);
    area.addEventListener('pointermove', (event) => this.hover(event.clientX));
    area.addEventListener('pointerdown', (event) => this.hover(event.clientX));
    area.addEventListener('pointerleave', () => {
      this.hovered = false;
      this.sync();
    });
    button.addEventListener('focus', () => {
      this.focused = true;
      // The keyboard enters at the first line (a click focuses the line it hit).
      if (!this.hovered) this.current = 0;
      this.sync();
    });
    button.addEventListener('blur', () => {
      this.focused = false;
      this.sync();
    });
    button.addEventListener('keydown', (event) => this.step(event));
  }

  /**
   * Draws the lines of `events` (sorted by ts, inside the plot's window) on the plot's canvas; called from
   * its `draw` hook, so the lines move with every draw. Writes no DOM (see `sync`).
   */
  draw(plot: uPlot, events: readonly LogEventEnvelope[], colours: MarkColours, pxRatio: number): void {
    const marks = this.marksOf(plot, events, pxRatio);
    if (marks.length !== this.marks.length || this.shown) this.dirty = true;
    this.marks = marks;
    this.plotLeft = plot.bbox.left / pxRatio;
    this.plotWidth = plot.bbox.width / pxRatio;
    this.plotTop = plot.bbox.top / pxRatio;
    this.plotHeight = plot.bbox.height / pxRatio;
    if (marks.length === 0) return;
    const ctx = plot.ctx;
    const top = plot.bbox.top;
    const bottom = top + plot.bbox.height;
    ctx.save();
    ctx.lineWidth = 2 * pxRatio;
    ctx.setLineDash([4 * pxRatio, 3 * pxRatio]);
    // One path per colour: a stroke per line would cost more than the lines.
    for (const error of [false, true]) {
      ctx.beginPath();
      let any = false;
      for (const mark of marks) {
        if (mark.events.some((event) => event.level === 'error') !== error) continue;
        const x = Math.round(mark.x * pxRatio) + 0.5;
        ctx.moveTo(x, top);
        ctx.lineTo(x, bottom);
        any = true;
      }
      if (!any) continue;
      ctx.strokeStyle = error ? colours.markerError : colours.marker;
      ctx.stroke();
    }
    ctx.restore();
  }

  /** The lines of `events` at the plot's current scale. */
  private marksOf(plot: uPlot, events: readonly LogEventEnvelope[], pxRatio: number): Mark[] {
    const left = plot.bbox.left / pxRatio;
    const width = plot.bbox.width / pxRatio;
    // An event a few ms after the window's end (the tab's clock estimate lags) stands at its right edge.
    return groupMarks(events, (event) => Math.min(left + width, left + plot.valToPos(event.ts / 1000, 'x')));
  }

  /**
   * Takes new annotations without repainting when they draw the very lines already on the canvas (each
   * new one joins a line drawn, as at 24 hours, where a line spans minutes): only the titles change.
   * Returns false when the lines differ, and the plot must be repainted.
   */
  retitle(plot: uPlot, events: readonly LogEventEnvelope[], pxRatio: number): boolean {
    const marks = this.marksOf(plot, events, pxRatio);
    const isError = (mark: Mark) => mark.events.some((event) => event.level === 'error');
    const same =
      marks.length === this.marks.length &&
      marks.every((mark, index) => {
        const drawn = this.marks[index];
        return drawn !== undefined && drawn.x === mark.x && isError(drawn) === isError(mark);
      });
    if (!same) return false;
    this.marks = marks;
    if (this.shown) this.dirty = true;
    return true;
  }

  /** Forgets the lines (the plot is gone). */
  clear(): void {
    this.marks = [];
    this.hovered = false;
    this.dirty = true;
    this.sync();
  }

  private get shown(): boolean {
    return (this.hovered || this.focused) && this.marks.length > 0;
  }

  /** Makes the button follow the lines: focusable while there are some, placed and labelled while shown. */
  sync(): void {
    this.dirty = false;
    const button = this.button;
    const count = this.marks.length;
    if (button.hidden !== (count === 0)) button.hidden = count === 0;
    if (count === 0) return;
    this.current = Math.min(this.current, count - 1);
    button.classList.toggle('chart-marker-shown', this.shown);
    if (!this.shown) return;
    const mark = this.marks[this.current];
    if (!mark) return;
    const style = button.style;
    const left = `${mark.x}px`;
    if (style.left !== left) style.left = left;
    style.top = `${this.plotTop}px`;
    style.height = `${this.plotHeight}px`;
    setText(this.label, markLabel(mark));
    // The label opens away from the nearer edge.
    this.label.classList.toggle('chart-marker-label-left', mark.x - this.plotLeft > this.plotWidth / 2);
    setAttribute(button, 'aria-label', markName(mark, this.current, count));
    button.dataset.level = mark.events.some((event) => event.level === 'error') ? 'error' : 'info';
  }

  /** The pointer at `clientX`: shows the nearest line within HIT_PX, or none. */
  private hover(clientX: number): void {
    const x = clientX - this.area.getBoundingClientRect().left;
    let nearest = -1;
    let distance = HIT_PX;
    this.marks.forEach((mark, index) => {
      const off = Math.abs(mark.x - x);
      if (off <= distance) {
        nearest = index;
        distance = off;
      }
    });
    const hovered = nearest >= 0;
    if (hovered === this.hovered && (!hovered || nearest === this.current)) return;
    this.hovered = hovered;
    if (hovered) this.current = nearest;
    this.sync();
  }

  /** Arrow keys (and Home, End) move the focused button through the lines. */
  private step(event: KeyboardEvent): void {
    const count = this.marks.length;
    if (count === 0) return;
    const moves: Record<string, number> = {
      ArrowRight: this.current + 1,
      ArrowDown: this.current + 1,
      ArrowLeft: this.current - 1,
      ArrowUp: this.current - 1,
      Home: 0,
      End: count - 1,
    };
    const next = moves[event.key];
    if (next === undefined) return;
    event.preventDefault();
    this.current = Math.max(0, Math.min(count - 1, next));
    this.sync();
  }
}
