// Live metric charts (uPlot), last 15 minutes, y axis in the metric's unit. Each chart also states its
// latest value and range in text (a canvas says nothing to a screen reader). Charts off screen are not
// drawn until they scroll into view, and drawing stops for the frame when its time budget is spent, so
// a hundred charts never make one long frame.
import uPlot from 'uplot';
import { METRIC_WINDOW_MS, serverNow, type DashboardState, type Series } from '../state/dashboard.ts';
import { formatHourMinute, formatValue } from '../state/format.ts';
import { element, reconcileChildren, setText } from './dom.ts';

/** Time spent drawing charts per frame before the rest waits for the next one. */
const DRAW_BUDGET_MS = 8;
/** A chart redraws at most this often (its value text follows every point at once). */
const REDRAW_MIN_MS = 1000;
/** How often quiet charts slide their window forward. */
const SLIDE_MS = 10_000;
const PLOT_HEIGHT = 130;

interface ChartCard {
  readonly root: HTMLLIElement;
  readonly value: HTMLSpanElement;
  readonly range: HTMLSpanElement;
  readonly host: HTMLDivElement;
  series: Series;
  /** What the plot currently shows. */
  drawnSeries: Series | undefined;
  drawnWindowEnd: number;
  plot: uPlot | undefined;
  visible: boolean;
  drawnAt: number;
}

interface ChartColours {
  line: string;
  fill: string;
  grid: string;
  text: string;
}

function readColours(): ChartColours {
  const style = getComputedStyle(document.documentElement);
  const read = (name: string, fallback: string) => style.getPropertyValue(name).trim() || fallback;
  return {
    line: read('--chart-line', '#2563eb'),
    fill: read('--chart-fill', 'rgba(37, 99, 235, 0.12)'),
    grid: read('--chart-grid', '#d5d9e0'),
    text: read('--text-muted', '#5b6270'),
  };
}

function describeRange(series: Series): string {
  if (series.ys.length === 0) return '';
  let min = Infinity;
  let max = -Infinity;
  for (const value of series.ys) {
    if (value < min) min = value;
    if (value > max) max = value;
  }
  return `min ${formatValue(min, series.unit)} · max ${formatValue(max, series.unit)}`;
}

export class MetricCharts {
  private readonly cards = new Map<string, ChartCard>();
  /** Visibility by IntersectionObserver, where content-visibility cannot tell (see the constructor). */
  private readonly visibility: IntersectionObserver | undefined;
  private readonly resizing: ResizeObserver;
  private seriesMap: DashboardState['series'] | undefined;
  private colours: ChartColours | undefined;
  private windowEnd = 0;

  constructor(
    private readonly container: HTMLElement,
    private readonly empty: HTMLElement,
    private readonly requestFrame: () => void,
  ) {
    // Cards are `content-visibility: auto`: the browser already tracks which are near the viewport and
    // says so with an event, which costs nothing extra (a second observer over 100 cards did, each frame).
    this.visibility =
      'ContentVisibilityAutoStateChangeEvent' in globalThis
        ? undefined
        : new IntersectionObserver(
            (entries) => {
              for (const entry of entries) this.setVisible(entry.target, entry.isIntersecting);
            },
            { rootMargin: '200px 0px' },
          );
    this.resizing = new ResizeObserver((entries) => {
      for (const entry of entries) {
        const card = this.cardOf(entry.target);
        const width = Math.floor(entry.contentRect.width);
        if (card?.plot && width > 0 && width !== card.plot.width) {
          card.plot.setSize({ width, height: PLOT_HEIGHT });
        }
      }
    });
    // Canvas colours come from CSS variables: redraw everything when the colour scheme flips.
    matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
      this.colours = undefined;
      for (const card of this.cards.values()) this.destroyPlot(card);
      this.requestFrame();
    });
  }

  /** Draws what changed, within the frame's budget; asks for another frame when work is left. */
  render(state: DashboardState): void {
    if (state.series !== this.seriesMap) this.renderCards(state);
    const end = serverNow(state) / 1000;
    const slide = end - this.windowEnd >= SLIDE_MS / 1000;
    if (slide || this.windowEnd === 0) this.windowEnd = end;
    const deadline = performance.now() + DRAW_BUDGET_MS;
    let waiting = false;
    // Charts with new points first, then those whose window has to slide.
    let nextRedrawAt = Infinity;
    const now = performance.now();
    for (const pass of ['data', 'window'] as const) {
      for (const card of this.cards.values()) {
        if (!card.visible) continue;
        const due =
          pass === 'data' ? card.drawnSeries !== card.series : card.drawnWindowEnd !== this.windowEnd;
        if (!due) continue;
        // A chart that has a plot waits its turn; a new one is drawn at once.
        if (card.plot && now - card.drawnAt < REDRAW_MIN_MS) {
          nextRedrawAt = Math.min(nextRedrawAt, card.drawnAt + REDRAW_MIN_MS);
          continue;
        }
        if (performance.now() > deadline) {
          waiting = true;
          break;
        }
        this.draw(card);
      }
    }
    if (waiting) this.requestFrame();
    else if (nextRedrawAt < Infinity) this.requestFrameAt(nextRedrawAt);
  }

  private setVisible(target: Element, visible: boolean): void {
    const card = this.cardOf(target);
    if (!card || card.visible === visible) return;
    card.visible = visible;
    if (visible) this.requestFrame();
  }

  private redrawTimer: ReturnType<typeof setTimeout> | undefined;

  /** Asks for a frame at a later time (one timer for all charts). */
  private requestFrameAt(time: number): void {
    if (this.redrawTimer !== undefined) return;
    this.redrawTimer = setTimeout(
      () => {
        this.redrawTimer = undefined;
        this.requestFrame();
      },
      Math.max(0, time - performance.now()),
    );
  }

  private cardOf(target: Element): ChartCard | undefined {
    const name = target.closest('[data-metric]')?.getAttribute('data-metric');
    return name === null || name === undefined ? undefined : this.cards.get(name);
  }

  private renderCards(state: DashboardState): void {
    this.seriesMap = state.series;
    let added = false;
    for (const [name, series] of state.series) {
      let card = this.cards.get(name);
      if (!card) {
        card = this.createCard(series);
        this.cards.set(name, card);
        added = true;
      }
      if (card.series !== series || card.drawnSeries === undefined) {
        if (card.plot && card.series.unit !== series.unit) this.destroyPlot(card);
        card.series = series;
        const latest = series.ys.at(-1);
        setText(card.value, latest === undefined ? '–' : formatValue(latest, series.unit));
        setText(card.range, describeRange(series));
      }
    }
    let removed = false;
    for (const [name, card] of this.cards) {
      if (state.series.has(name)) continue;
      this.destroyPlot(card);
      this.visibility?.unobserve(card.root);
      this.resizing.unobserve(card.host);
      this.cards.delete(name);
      removed = true;
    }
    if (added || removed) {
      const names = [...this.cards.keys()].sort();
      reconcileChildren(
        this.container,
        names.flatMap((name) => this.cards.get(name)?.root ?? []),
      );
    }
    this.empty.hidden = state.series.size > 0 || !state.loaded;
    setText(
      this.empty,
      state.filter.text ? `No metric matches “${state.filter.text}”.` : 'No metric has reported yet.',
    );
  }

  private createCard(series: Series): ChartCard {
    const root = element('li', 'chart-card');
    root.setAttribute('data-metric', series.name);
    const figure = element('figure', 'chart');
    const caption = element('figcaption', 'chart-caption');
    const name = element('span', 'chart-name', series.name);
    const value = element('span', 'chart-value');
    const range = element('span', 'chart-range');
    caption.append(name, value, range);
    const host = element('div', 'chart-plot');
    host.setAttribute('role', 'img');
    host.setAttribute('aria-label', `${series.name}, last 15 minutes`);
    figure.append(caption, host);
    root.append(figure);
    if (this.visibility) this.visibility.observe(root);
    else {
      root.addEventListener('contentvisibilityautostatechange', (event) => {
        if (event instanceof ContentVisibilityAutoStateChangeEvent) this.setVisible(root, !event.skipped);
      });
    }
    this.resizing.observe(host);
    return {
      root,
      value,
      range,
      host,
      series,
      drawnSeries: undefined,
      drawnWindowEnd: 0,
      plot: undefined,
      visible: false,
      drawnAt: -Infinity,
    };
  }

  private draw(card: ChartCard): void {
    const data: uPlot.AlignedData = [card.series.xs.slice(), card.series.ys.slice()];
    if (card.plot) {
      card.plot.setData(data);
    } else {
      const width = Math.floor(card.host.clientWidth);
      if (width <= 0) return;
      card.plot = new uPlot(this.options(card.series, width), data, card.host);
    }
    card.drawnSeries = card.series;
    card.drawnWindowEnd = this.windowEnd;
    card.drawnAt = performance.now();
    // How many points the chart shows: for people debugging, and for the browser tests.
    card.root.dataset.points = String(card.series.xs.length);
  }

  private destroyPlot(card: ChartCard): void {
    card.plot?.destroy();
    card.plot = undefined;
    card.drawnSeries = undefined;
    card.drawnWindowEnd = 0;
  }

  private options(series: Series, width: number): uPlot.Options {
    this.colours ??= readColours();
    const colours = this.colours;
    const { unit } = series;
    const axis = {
      stroke: colours.text,
      grid: { stroke: colours.grid, width: 1 },
      ticks: { stroke: colours.grid, width: 1 },
    };
    return {
      width,
      height: PLOT_HEIGHT,
      legend: { show: false },
      cursor: { show: false },
      scales: {
        // The window always ends now, so quiet charts still show how long they have been quiet.
        x: { time: true, range: () => [this.windowEnd - METRIC_WINDOW_MS / 1000, this.windowEnd] },
      },
      series: [{}, { label: series.name, stroke: colours.line, fill: colours.fill, width: 1.5 }],
      axes: [
        {
          ...axis,
          size: 32,
          values: (_plot, splits) => splits.map((seconds) => formatHourMinute(seconds * 1000)),
        },
        {
          ...axis,
          size: 72,
          values: (_plot, splits) => splits.map((value) => formatValue(value, unit)),
        },
      ],
    };
  }
}
