// Metric charts (uPlot), y axis in the metric's unit, over a range the user picks (docs/dashboard.md,
// "Ranges and history"): 15 minutes of raw points from the snapshot and the stream, or 1 h to 7 d of
// buckets from `GET /api/history` extended by the live points after its id. Annotations are dashed lines
// on the plot's canvas, with one button per chart for hover and keyboard focus (./chart-marks.ts). Each
// chart also states its latest value
// and range in text (a canvas says nothing to a screen reader). Charts off screen are neither fetched nor
// drawn until they scroll into view, and drawing stops for the frame when its time budget is spent, so a
// hundred charts never make one long frame.
import uPlot from 'uplot';
import type { LogEventEnvelope } from '../../shared/events.ts';
import { RANGE_MS, type ChartRange, CHART_RANGES } from '../../shared/history.ts';
import { fetchHistory } from '../http/history.ts';
import { serverNow, type DashboardState, type Series } from '../state/dashboard.ts';
import { formatHourMinute, formatValue } from '../state/format.ts';
import {
  annotates,
  chartData,
  foldSeries,
  historyFrom,
  mergeAnnotations,
  rangeFromSearch,
  trimHistory,
  type BucketHistory,
} from '../state/history.ts';
import { ChartMarks, markText } from './chart-marks.ts';
import { chartPhase, nextDrawAt } from './chart-turns.ts';
import { element, reconcileChildren, setText } from './dom.ts';
import '../styles/history.css';

/** Time spent drawing charts per frame before the rest waits for the next one. */
const DRAW_BUDGET_MS = 8;
/**
 * A chart redraws at most this often (its value text follows every point at once): about the time one
 * pixel of a 400-pixel chart spans, 2 s at least (15 minutes: 2.25 s a pixel). Redrawing a dozen canvases
 * (axes text included) every second was most of the page's cost with charts in view (docs/dashboard.md,
 * "Performance").
 */
const REDRAW_MIN_MS: Record<ChartRange, number> = {
  '15m': 2000,
  '1h': 4000,
  '6h': 5000,
  '24h': 10_000,
  '7d': 10_000,
};
/** How often quiet charts slide their window forward: about a pixel's worth of time, 10 s at least. */
const SLIDE_MS: Record<ChartRange, number> = {
  '15m': 10_000,
  '1h': 10_000,
  '6h': 30_000,
  '24h': 60_000,
  '7d': 300_000,
};
/**
 * Charts redrawn in one frame only because the annotations changed (a new one reaches every chart in view
 * and near it, fifty-odd): their canvases are repainted a few a frame, inside the draw budget.
 */
const MARKED_CHARTS_PER_FRAME = 8;
const PLOT_HEIGHT = 130;
/** A failed history read is asked again after this long. */
const HISTORY_RETRY_MS = 5000;

const RANGE_LABELS: Record<ChartRange, string> = {
  '15m': 'last 15 minutes',
  '1h': 'last hour',
  '6h': 'last 6 hours',
  '24h': 'last 24 hours',
  '7d': 'last 7 days',
};

/** A chart's buckets for the current range, while they load, or after a failed read. */
type HistoryState =
  | { kind: 'none' }
  | { kind: 'loading' }
  | { kind: 'failed'; retryAt: number }
  | { kind: 'loaded'; history: BucketHistory };

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
  /** Buckets of the current range (ranges other than 15 minutes). */
  history: HistoryState;
  /** Something other than the series changed what the chart shows (its history arrived). */
  stale: boolean;
  /** The annotations changed: the plot is repainted (its paths kept) to draw their lines. */
  marksStale: boolean;
  readonly marks: ChartMarks;
  /** Where in each redraw interval this chart takes its turn, as a fraction of it (./chart-turns.ts). */
  phase: number;
  /** The range and bucket counts of the last draw (for the probe). */
  drawnRange: ChartRange | undefined;
  drawnCounts: number[] | undefined;
}

interface ChartColours {
  line: string;
  fill: string;
  grid: string;
  text: string;
  marker: string;
  markerError: string;
}

function readColours(): ChartColours {
  const style = getComputedStyle(document.documentElement);
  const read = (name: string, fallback: string) => style.getPropertyValue(name).trim() || fallback;
  return {
    line: read('--chart-line', '#2563eb'),
    fill: read('--chart-fill', 'rgba(37, 99, 235, 0.12)'),
    grid: read('--chart-grid', '#d5d9e0'),
    text: read('--text-muted', '#5b6270'),
    marker: read('--chart-marker', '#c2410c'),
    markerError: read('--chart-marker-error', '#b91c1c'),
  };
}

function describeRange(lows: readonly number[], highs: readonly number[], unit: string | undefined): string {
  if (lows.length === 0) return '';
  let min = Infinity;
  let max = -Infinity;
  for (const value of lows) if (value < min) min = value;
  for (const value of highs) if (value > max) max = value;
  return `min ${formatValue(min, unit)} · max ${formatValue(max, unit)}`;
}

const twoDigits = (value: number) => String(value).padStart(2, '0');

/** Axis text of the 7-day range: day and month ("2/12"), with the time when not midnight. */
function formatDayTime(epochMs: number): string {
  const date = new Date(epochMs);
  const day = `${date.getDate()}/${date.getMonth() + 1}`;
  return date.getHours() === 0 && date.getMinutes() === 0
    ? day
    : `${day} ${twoDigits(date.getHours())}:${twoDigits(date.getMinutes())}`;
}

/** What the test hook (and anyone debugging) reads of a chart: exactly the arrays given to uPlot. */
export interface ChartProbe {
  range: ChartRange;
  xs: number[];
  ys: number[];
  /** Points per bucket (bucketed ranges), for checking that no point is missing or counted twice. */
  counts: number[] | undefined;
  /**
   * Each annotation drawn: its ts, its label text ("14:05 Deploy api v2") and the x of the line that
   * shows it (CSS px from the chart's left edge; annotations closer than a few px share one line).
   */
  markers: { ts: number; title: string; x: number }[];
  /** The plotting area (CSS px from the chart's left edge) and the window it shows (epoch ms). */
  plot: { left: number; width: number; from: number; to: number };
}

export class MetricCharts {
  private readonly cards = new Map<string, ChartCard>();
  /** Visibility by IntersectionObserver, where content-visibility cannot tell (see the constructor). */
  private readonly visibility: IntersectionObserver | undefined;
  private readonly resizing: ResizeObserver;
  private seriesMap: DashboardState['series'] | undefined;
  private colours: ChartColours | undefined;
  private windowEnd = 0;
  private range: ChartRange;
  private readonly summary: HTMLElement | undefined;
  /** The board's annotations for the range, from the history answer. */
  private fetchedAnnotations: readonly LogEventEnvelope[] = [];
  private logSeen: DashboardState['events'] | undefined;
  /** The annotations among the live log's events. */
  private liveAnnotations: readonly LogEventEnvelope[] = [];
  /** Fetched and live annotations, by ts. */
  private annotations: readonly LogEventEnvelope[] = [];
  /** Bumped on a range change: answers for an older range are dropped. */
  private generation = 0;

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
    this.range = rangeFromSearch(location.search);
    this.summary = this.bindRangeSelector();
    void this.loadAnnotations();
    // Read by the browser tests (and handy when debugging): the arrays each chart draws.
    Reflect.set(globalThis, 'pulseboardCharts', { probe: (name: string) => this.probe(name) });
  }

  /** The range selector, in the metrics panel's head; returns the panel's summary text element. */
  private bindRangeSelector(): HTMLElement | undefined {
    const head = this.container.closest('section')?.querySelector('.panel-head');
    if (!head) return undefined;
    const label = element('label', 'chart-range-picker');
    label.append(element('span', 'chart-range-label', 'Range'));
    const select = element('select');
    select.id = 'chart-range';
    for (const range of CHART_RANGES) {
      const option = element('option', undefined, RANGE_LABELS[range]);
      option.value = range;
      option.selected = range === this.range;
      select.append(option);
    }
    select.addEventListener('change', () => {
      const range = CHART_RANGES.find((candidate) => candidate === select.value);
      if (range) this.setRange(range);
    });
    label.append(select);
    head.append(label);
    const summary = head.querySelector<HTMLElement>('.panel-summary') ?? undefined;
    if (summary) setText(summary, RANGE_LABELS[this.range]);
    return summary;
  }

  /** Shows another range: the URL keeps it (a reload shows the same), every chart reads its history again. */
  private setRange(range: ChartRange): void {
    if (range === this.range) return;
    this.range = range;
    this.generation += 1;
    const url = new URL(location.href);
    url.searchParams.set('range', range);
    history.replaceState(history.state, '', url);
    if (this.summary) setText(this.summary, RANGE_LABELS[range]);
    this.windowEnd = 0;
    for (const card of this.cards.values()) {
      card.history = { kind: 'none' };
      card.stale = true;
      card.drawnAt = -Infinity;
      card.host.setAttribute('aria-label', `${card.series.name}, ${RANGE_LABELS[range]}`);
    }
    this.fetchedAnnotations = [];
    void this.loadAnnotations();
    this.requestFrame();
  }

  private get board(): string {
    return document.documentElement.dataset.board ?? 'main';
  }

  private async loadAnnotations(): Promise<void> {
    const generation = this.generation;
    const result = await fetchHistory(this.board, this.range);
    if (generation !== this.generation) return;
    if (result.kind !== 'ok') {
      if (result.kind === 'failed')
        setTimeout(() => void this.retryAnnotations(generation), HISTORY_RETRY_MS);
      return;
    }
    this.fetchedAnnotations = result.value.annotations;
    this.updateAnnotations(this.logSeen ?? [], true);
    this.requestFrame();
  }

  private async retryAnnotations(generation: number): Promise<void> {
    if (generation === this.generation) await this.loadAnnotations();
  }

  /** Merges the fetched annotations with the live log's; charts redraw their markers when they change. */
  private updateAnnotations(log: DashboardState['events'], fetched = false): void {
    this.logSeen = log;
    // The log changes with every log event; its annotations seldom: compare those (a short list) first.
    const live = log.filter((event) => event.annotate === true);
    const sameLive =
      live.length === this.liveAnnotations.length &&
      live.every((event, index) => event.id === this.liveAnnotations[index]?.id);
    if (sameLive && !fetched) return;
    this.liveAnnotations = live;
    const merged = mergeAnnotations(this.fetchedAnnotations, live);
    const same =
      merged.length === this.annotations.length &&
      merged.every((event, index) => event.id === this.annotations[index]?.id);
    if (same) return;
    this.annotations = merged;
    for (const card of this.cards.values()) card.marksStale = true;
  }

  private get bucketed(): boolean {
    return this.range !== '15m';
  }

  /** Draws what changed, within the frame's budget; asks for another frame when work is left. */
  render(state: DashboardState): void {
    if (state.series !== this.seriesMap) this.renderCards(state);
    if (state.events !== this.logSeen) this.updateAnnotations(state.events);
    const end = serverNow(state) / 1000;
    const slide = end - this.windowEnd >= SLIDE_MS[this.range] / 1000;
    if (slide || this.windowEnd === 0) this.windowEnd = end;
    const deadline = performance.now() + DRAW_BUDGET_MS;
    let waiting = false;
    // Charts with new points first, then those whose window has to slide.
    let nextRedrawAt = Infinity;
    const now = performance.now();
    const redrawMs = REDRAW_MIN_MS[this.range];
    this.rendering = true;
    for (const pass of ['data', 'window'] as const) {
      for (const card of this.cards.values()) {
        if (!card.visible) continue;
        if (this.bucketed && !this.historyReady(card, now)) continue;
        const due =
          pass === 'data'
            ? card.drawnSeries !== card.series || card.stale
            : card.drawnWindowEnd !== this.windowEnd;
        if (!due) continue;
        // A chart that has a plot waits its turn; a new one is drawn at once.
        if (card.plot) {
          const dueAt = nextDrawAt(card.drawnAt, card.phase, redrawMs);
          if (now < dueAt) {
            nextRedrawAt = Math.min(nextRedrawAt, dueAt);
            continue;
          }
        }
        if (performance.now() > deadline) {
          waiting = true;
          break;
        }
        this.draw(card);
      }
    }
    // Charts whose annotations changed, and not drawn just now (a draw draws the lines too): those whose
    // lines stay as drawn only take the new titles; the others are repainted from their kept paths, a
    // few a frame.
    let markedCharts = 0;
    for (const card of this.cards.values()) {
      const plot = card.plot;
      if (!card.marksStale || !card.visible || !plot) continue;
      if (card.marks.retitle(plot, this.annotationsOf(card, plot), uPlot.pxRatio)) {
        card.marksStale = false;
        continue;
      }
      if (markedCharts === MARKED_CHARTS_PER_FRAME || performance.now() > deadline) {
        waiting = true;
        break;
      }
      markedCharts += 1;
      plot.batch(() => plot.redraw(false, false));
    }
    this.rendering = false;
    // The buttons follow their lines after every canvas of the frame is drawn: a canvas setting its font
    // recomputes style first, so DOM writes between draws made one style recalculation per chart.
    for (const card of this.cards.values()) if (card.marks.dirty) card.marks.sync();
    if (waiting) this.requestFrame();
    else if (nextRedrawAt < Infinity) this.requestFrameAt(nextRedrawAt);
  }

  /** Whether a bucketed chart has its history; starts reading it when not (and not already). */
  private historyReady(card: ChartCard, now: number): boolean {
    const state = card.history;
    if (state.kind === 'loaded') return true;
    if (state.kind === 'loading') return false;
    if (state.kind === 'failed' && now < state.retryAt) {
      this.requestFrameAt(state.retryAt);
      return false;
    }
    card.history = { kind: 'loading' };
    void this.loadHistory(card);
    return false;
  }

  private async loadHistory(card: ChartCard): Promise<void> {
    const generation = this.generation;
    const result = await fetchHistory(this.board, this.range, card.series.name);
    if (generation !== this.generation || this.cards.get(card.series.name) !== card) return;
    if (result.kind === 'ok') {
      card.history = { kind: 'loaded', history: historyFrom(result.value) };
      card.stale = true;
    } else {
      card.history = { kind: 'failed', retryAt: performance.now() + HISTORY_RETRY_MS };
    }
    this.requestFrame();
  }

  private setVisible(target: Element, visible: boolean): void {
    const card = this.cardOf(target);
    if (!card || card.visible === visible) return;
    card.visible = visible;
    if (visible) this.requestFrame();
  }

  /** A render is drawing charts: the buttons of their marks follow at its end. */
  private rendering = false;

  /** A chart is drawn: its annotations' lines go on its canvas, its button follows them after the draws. */
  private drawMarks(card: ChartCard, plot: uPlot): void {
    card.marksStale = false;
    this.colours ??= readColours();
    card.marks.draw(plot, this.annotationsOf(card, plot), this.colours, uPlot.pxRatio);
    if (card.marks.dirty && !this.rendering) this.requestFrame();
  }

  private redrawTimer: ReturnType<typeof setTimeout> | undefined;

  private redrawTimerAt = Infinity;

  /** Asks for a frame at a later time (one timer for all charts, set for the earliest time asked). */
  private requestFrameAt(time: number): void {
    if (this.redrawTimer !== undefined) {
      if (time >= this.redrawTimerAt) return;
      clearTimeout(this.redrawTimer);
    }
    this.redrawTimerAt = time;
    this.redrawTimer = setTimeout(
      () => {
        this.redrawTimer = undefined;
        this.redrawTimerAt = Infinity;
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
      names.forEach((name, index) => {
        const card = this.cards.get(name);
        if (card) card.phase = chartPhase(index);
      });
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
    host.setAttribute('aria-label', `${series.name}, ${RANGE_LABELS[this.range]}`);
    const plotArea = element('div', 'chart-area');
    plotArea.append(host);
    // The marks' button sits beside the plot (not inside the role=img box, whose content is presentational).
    const marks = new ChartMarks(plotArea, series.name);
    figure.append(caption, plotArea);
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
      history: { kind: 'none' },
      stale: false,
      marksStale: false,
      marks,
      phase: 0,
      drawnRange: undefined,
      drawnCounts: undefined,
    };
  }

  /** The arrays a chart draws now: raw points (15 minutes) or buckets joined with the live points. */
  private dataOf(card: ChartCard): { data: [number[], number[]]; counts: number[] | undefined } {
    const state = card.history;
    if (!this.bucketed || state.kind !== 'loaded') {
      const { xs, ys, unit } = card.series;
      setText(card.range, describeRange(ys, ys, unit));
      return { data: [xs.slice(), ys.slice()], counts: undefined };
    }
    const { history } = state;
    foldSeries(history, card.series);
    trimHistory(history, this.windowEnd * 1000 - RANGE_MS[this.range]);
    setText(card.range, describeRange(history.min, history.max, card.series.unit));
    return { data: chartData(history), counts: history.count.slice() };
  }

  private draw(card: ChartCard): void {
    const { data, counts } = this.dataOf(card);
    const plot = card.plot;
    if (plot) {
      // Drawn now, not in a microtask: the frame's budget then counts the draw.
      plot.batch(() => plot.setData(data));
    } else {
      const width = Math.floor(card.host.clientWidth);
      if (width <= 0) return;
      card.plot = new uPlot(this.options(card, width), data, card.host);
    }
    card.drawnSeries = card.series;
    card.drawnWindowEnd = this.windowEnd;
    card.drawnAt = performance.now();
    card.stale = false;
    card.drawnRange = this.range;
    card.drawnCounts = counts;
    // How many points the chart shows: for people debugging, and for the browser tests.
    card.root.dataset.points = String(data[0].length);
  }

  /**
   * The annotations of a chart inside the window it draws, and those a little after its end: the window
   * ends at this tab's estimate of the server's clock, which may be a few ms behind the ts of an event
   * just in.
   */
  private annotationsOf(card: ChartCard, plot: uPlot): LogEventEnvelope[] {
    const { min, max } = plot.scales.x ?? {};
    if (min === undefined || max === undefined) return [];
    const from = min * 1000;
    const to = max * 1000 + SLIDE_MS[this.range];
    return this.annotations.filter(
      (event) => event.ts >= from && event.ts <= to && annotates(event, card.series.name),
    );
  }

  private probe(name: string): ChartProbe | undefined {
    const card = this.cards.get(name);
    const plot = card?.plot;
    if (!card || !plot) return undefined;
    const [xs, ys] = plot.data;
    if (!card.drawnRange) return undefined;
    return {
      range: card.drawnRange,
      xs: [...xs],
      ys: [...(ys ?? [])].map((value) => value ?? NaN),
      counts: card.drawnCounts,
      markers: card.marks.marks.flatMap((mark) =>
        mark.events.map((event) => ({ ts: event.ts, title: markText(event), x: mark.x })),
      ),
      plot: {
        left: plot.bbox.left / uPlot.pxRatio,
        width: plot.bbox.width / uPlot.pxRatio,
        from: card.drawnWindowEnd * 1000 - RANGE_MS[this.range],
        to: card.drawnWindowEnd * 1000,
      },
    };
  }

  private destroyPlot(card: ChartCard): void {
    card.plot?.destroy();
    card.plot = undefined;
    card.drawnSeries = undefined;
    card.drawnWindowEnd = 0;
    card.marks.clear();
  }

  private options(card: ChartCard, width: number): uPlot.Options {
    const { series } = card;
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
      hooks: { draw: [(plot) => this.drawMarks(card, plot)] },
      scales: {
        // The window always ends now, so quiet charts still show how long they have been quiet.
        x: { time: true, range: () => [this.windowEnd - RANGE_MS[this.range] / 1000, this.windowEnd] },
      },
      series: [{}, { label: series.name, stroke: colours.line, fill: colours.fill, width: 1.5 }],
      axes: [
        {
          ...axis,
          size: 32,
          values: (_plot, splits) =>
            splits.map((seconds) =>
              this.range === '7d' ? formatDayTime(seconds * 1000) : formatHourMinute(seconds * 1000),
            ),
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
