// The board view (`/b/<board>`, docs/dashboard.md): session, then the board's snapshot, then the stream
// from the snapshot's id; events go through the pure reducer and the DOM is drawn once per animation
// frame. A `reset` refetches the snapshot; a 401 anywhere sends the user to the login page; a board the
// user may not see (403), or that left the stream (access revoked, board removed), is said in words
// instead of a broken dashboard. `BoardView` holds the page's state: the reducer's, the events waiting
// to enter it, and the phase of the view (explicit, so each rule below reads against one variable).
// A hidden tab keeps its state current but draws nothing until shown; a page restored from the
// back/forward cache subscribes again from the last id it has; `?kiosk=1` is the wall-screen mode
// (docs/dashboard.md, "Kiosk mode", "Background tabs, phones and the back/forward cache").
import type { SessionResponse } from '../shared/api.ts';
import { DEFAULT_BOARD } from '../shared/boards.ts';
import { compareStreamIds, type Envelope } from '../shared/events.ts';
import { fetchBoards, fetchSnapshot } from './http/api.ts';
import { bindLogout, leaver, loadSession, retryDelayMs, sleep, watchBrowser } from './page-shell.ts';
import { boardFromPath, sortBoards, type BoardSummary } from './state/boards.ts';
import { initialState, isStale, reduce, type Action, type DashboardState } from './state/dashboard.ts';
import { NO_FILTER, type DashboardFilter } from './state/filter.ts';
import { kioskFromQuery, type KioskOptions } from './state/kiosk.ts';
import { connectStream, type StreamClient } from './stream/connect.ts';
import { watchPageLifecycle } from './stream/page-lifecycle.ts';
import type { HubMessage } from './stream/protocol.ts';
import { Announcer } from './view/announcer.ts';
import { BoardSwitcher } from './view/board-switcher.ts';
import { showUnavailable, type Unavailable } from './view/board-unavailable.ts';
import { required, setText } from './view/dom.ts';
import { EventLog } from './view/event-log.ts';
import { bindFilterBox, filterFromUrl } from './view/filter-box.ts';
import { createFrameScheduler, type FrameScheduler } from './view/frame-scheduler.ts';
import { Header } from './view/header.ts';
import { startKiosk } from './view/kiosk.ts';
import { MetricCharts } from './view/metric-charts.ts';
import { StaleBanner } from './view/stale-banner.ts';
import { TileGrid } from './view/tile-grid.ts';

const TICK_MS = 1000;
/**
 * At most five renders a second: smooth enough for a dashboard. Every render pays layerize and commit for
 * the whole page (thirty-odd chart canvases on layers of their own when in view) whatever it changed, so
 * at 50 events/s this interval, not the events, sets most of the cost.
 */
const MIN_RENDER_INTERVAL_MS = 200;
const MAX_QUEUED_WHILE_LOADING = 20_000;

function pageElements(root: Document) {
  return {
    brand: required(root, '.brand', HTMLElement),
    connection: required(root, '#connection', HTMLElement),
    connectionLabel: required(root, '#connection-label', HTMLElement),
    lastEvent: required(root, '#last-event', HTMLElement),
    switcher: required(root, '#board-switcher', HTMLElement),
    userName: required(root, '#user-name', HTMLElement),
    logout: required(root, '#logout', HTMLButtonElement),
    notice: required(root, '#notice', HTMLElement),
    staleBanner: required(root, '#stale-banner', HTMLElement),
    filterForm: required(root, '#filter-form', HTMLFormElement),
    filterInput: required(root, '#filter', HTMLInputElement),
    filterError: required(root, '#filter-error', HTMLElement),
    announcer: required(root, '#announcer', HTMLElement),
    board: required(root, '#board', HTMLElement),
    unavailable: required(root, '#board-unavailable', HTMLElement),
    unavailableTitle: required(root, '#board-unavailable-title', HTMLElement),
    unavailableText: required(root, '#board-unavailable-text', HTMLElement),
    tileGroups: required(root, '#tile-groups', HTMLElement),
    servicesSummary: required(root, '#services-summary', HTMLElement),
    servicesEmpty: required(root, '#services-empty', HTMLElement),
    charts: required(root, '#charts', HTMLElement),
    metricsEmpty: required(root, '#metrics-empty', HTMLElement),
    eventLog: required(root, '#event-log', HTMLOListElement),
    eventsEmpty: required(root, '#events-empty', HTMLElement),
  };
}

type PageElements = ReturnType<typeof pageElements>;

/** A snapshot is being fetched; `reloadAfter`: fetch one more once it is in (it may be out of date). */
interface Loading {
  name: 'loading';
  reloadAfter: boolean;
}

/**
 * Where the view is. `idle` until the first snapshot is asked for; while `loading`, events wait in the
 * queue (they must not enter the state before the snapshot they follow); `live`: queued events enter
 * the state at the next render or tick; `unavailable`: the board cannot be shown, for good.
 */
type Phase = { name: 'idle' } | Loading | { name: 'live' } | { name: 'unavailable'; why: Unavailable };

class BoardView {
  private readonly root: Document;
  private readonly page: PageElements;
  private readonly board: string;
  private readonly exit = leaver();
  private state: DashboardState;
  private phase: Phase = { name: 'idle' };
  /** Events received but not yet in the state: they enter as one batch per render or tick. */
  private queued: Envelope[] = [];
  private readonly header: Header;
  private readonly switcher: BoardSwitcher;
  private readonly tiles: TileGrid;
  private readonly eventLog: EventLog;
  private readonly announcer: Announcer;
  private readonly staleBanner: StaleBanner;
  private readonly charts: MetricCharts;
  private readonly scheduler: FrameScheduler;
  private readonly stream: StreamClient;
  /** The newest id of this board the page has (its snapshot's, or a later event's): where a restore resumes. */
  private lastId: string | undefined;
  /** The boards the user may see, as last fetched (the kiosk's rotation). */
  private boards: readonly BoardSummary[] | undefined;
  private readonly kiosk: KioskOptions | undefined;

  constructor(
    root: Document,
    page: PageElements,
    board: string,
    filter: DashboardFilter,
    kiosk: KioskOptions | undefined,
  ) {
    this.root = root;
    this.page = page;
    this.board = board;
    this.kiosk = kiosk;
    this.state = initialState(Date.now(), filter);
    this.header = new Header({
      connection: page.connection,
      label: page.connectionLabel,
      lastEvent: page.lastEvent,
      userName: page.userName,
    });
    this.switcher = new BoardSwitcher(page.switcher, board);
    this.tiles = new TileGrid(page.tileGroups, page.servicesSummary, page.servicesEmpty);
    this.eventLog = new EventLog(page.eventLog, page.eventsEmpty);
    this.announcer = new Announcer(page.announcer);
    this.staleBanner = new StaleBanner(page.staleBanner);
    this.scheduler = createFrameScheduler(() => this.render(), MIN_RENDER_INTERVAL_MS);
    this.charts = new MetricCharts(page.charts, page.metricsEmpty, () => this.scheduler.request());
    this.stream = connectStream((message) => this.onStreamMessage(message));
  }

  /** Binds the page's controls and timers, then loads the first snapshot (which subscribes the stream). */
  async start(session: SessionResponse, filterText: string): Promise<void> {
    const { root, page } = this;
    this.header.showUser(session);
    bindFilterBox(page.filterForm, page.filterInput, page.filterError, filterText, (filter) => {
      this.dispatch({ type: 'filterChanged', filter, now: Date.now() });
      void this.loadSnapshot();
    });
    bindLogout(page.logout, page.notice, session, this.stream, (reason) => this.exit.leave(reason));
    watchBrowser((online) => this.dispatch({ type: 'browserOnlineChanged', online, now: Date.now() }));
    watchPageLifecycle({
      stream: this.stream,
      onRestore: () => this.resubscribe(),
      isStale: () => isStale({ ...this.state, now: Date.now() }),
    });
    if (this.kiosk) {
      startKiosk(root, { options: this.kiosk, current: this.board, boards: () => this.boards });
    }
    setInterval(() => {
      // Background tabs get no animation frames: keep their state current here (cheaply, no DOM).
      this.flushQueued();
      this.dispatch({ type: 'tick', now: Date.now() });
    }, TICK_MS);

    // Which transport carries the stream, for people debugging (and the browser tests).
    root.documentElement.dataset.stream = this.stream.mode;
    this.scheduler.request();
    void this.refreshBoards();
    await this.loadSnapshot();
    root.documentElement.dataset.stream = this.stream.mode;
  }

  private get unavailable(): boolean {
    return this.phase.name === 'unavailable';
  }

  private render(): void {
    this.flushQueued();
    this.header.render(this.state);
    this.tiles.render(this.state);
    this.charts.render(this.state);
    this.eventLog.render(this.state);
    this.announcer.render(this.state);
    this.staleBanner.render(this.state);
  }

  private apply(action: Action): void {
    this.state = reduce(this.state, action);
  }

  private dispatch(action: Action): void {
    this.apply(action);
    this.scheduler.request();
  }

  /** Queued events enter the state as one batch, never while a snapshot is loading. */
  private flushQueued(): void {
    if (this.queued.length === 0 || this.phase.name === 'loading') return;
    const events = this.queued;
    this.queued = [];
    this.apply({ type: 'eventsReceived', events, now: Date.now() });
  }

  private showBoards(boards: readonly BoardSummary[]): void {
    const sorted = sortBoards(boards);
    this.boards = sorted;
    this.switcher.render(sorted);
    const title = sorted.find((summary) => summary.name === this.board)?.title;
    if (title && !this.unavailable) this.root.title = `${title} · pulseboard`;
    // A wall screen has no switcher to say which board it shows: the heading does.
    if (title && this.kiosk) setText(this.page.brand, title);
  }

  private async refreshBoards(): Promise<void> {
    const result = await fetchBoards();
    if (result.kind === 'ok') this.showBoards(result.value.boards);
    else if (result.kind === 'unauthorized') this.exit.leave('expired');
  }

  /**
   * The board cannot be shown: say why, in place of the dashboard, and take no more of its events. The
   * tab stays subscribed (to no board) to hear of a logout in another tab.
   */
  private becomeUnavailable(why: Unavailable): void {
    if (this.unavailable) return;
    this.phase = { name: 'unavailable', why };
    this.stream.subscribe([], null);
    this.queued = [];
    showUnavailable(this.root, this.page, why);
    void this.refreshBoards();
  }

  private onStreamMessage(message: HubMessage): void {
    if (this.exit.leaving) return;
    if (this.unavailable && message.type !== 'unauthorized' && message.type !== 'loggedOut') return;
    switch (message.type) {
      case 'state':
        this.dispatch({ type: 'streamStateChanged', state: message.state, now: Date.now() });
        break;
      case 'alive':
        this.dispatch({
          type: 'streamAlive',
          receivedAt: message.receivedAt,
          heartbeatMs: message.heartbeatMs,
          now: Date.now(),
        });
        break;
      case 'events':
        for (const event of message.events) {
          this.queued.push(event);
          if (event.board === this.board && (!this.lastId || compareStreamIds(event.id, this.lastId) > 0)) {
            this.lastId = event.id;
          }
        }
        // A snapshot that keeps failing must not let the queue grow without bound: drop it and load
        // one more snapshot afterwards, which covers everything dropped.
        if (this.phase.name === 'loading' && this.queued.length > MAX_QUEUED_WHILE_LOADING) {
          this.queued = [];
          this.phase.reloadAfter = true;
        }
        this.scheduler.request();
        break;
      case 'reset':
        if (message.board === this.board) void this.loadSnapshot();
        break;
      case 'boardsRemoved':
        if (message.boards.includes(this.board)) this.becomeUnavailable('removed');
        break;
      case 'unauthorized':
        this.exit.leave('expired');
        break;
      case 'loggedOut':
        this.exit.leave('logged-out');
        break;
    }
  }

  /**
   * Back from the back/forward cache (the tab left the stream on `pagehide`): subscribes again from the
   * newest id it has, so the stream replays exactly what it missed. A load under way subscribes itself.
   */
  private resubscribe(): void {
    if (this.unavailable) this.stream.subscribe([], null);
    else if (this.phase.name === 'live' && this.lastId !== undefined) {
      this.stream.subscribe([{ board: this.board, since: this.lastId }], this.state.filter.topics);
    }
  }

  /** Renders the current state, then (re)subscribes from its id with the filter's topics. */
  private async loadSnapshot(): Promise<void> {
    if (this.phase.name === 'loading') {
      this.phase.reloadAfter = true;
      return;
    }
    if (this.unavailable) return;
    const loading: Loading = { name: 'loading', reloadAfter: false };
    this.phase = loading;
    for (let attempt = 0; ; attempt += 1) {
      const result = await fetchSnapshot(this.board);
      if (this.unavailable) return;
      if (result.kind === 'unauthorized') {
        this.exit.leave('expired');
        return;
      }
      if (result.kind === 'forbidden' || result.kind === 'unknownBoard') {
        this.becomeUnavailable(result.kind === 'forbidden' ? 'forbidden' : 'unknown');
        return;
      }
      if (result.kind === 'ok') {
        this.page.notice.hidden = true;
        this.phase = { name: 'live' };
        this.apply({ type: 'snapshotLoaded', snapshot: result.value, now: Date.now() });
        this.lastId = result.value.lastEventId;
        this.flushQueued();
        this.scheduler.request();
        this.stream.subscribe(
          [{ board: this.board, since: result.value.lastEventId }],
          this.state.filter.topics,
        );
        break;
      }
      const waitMs = retryDelayMs(attempt);
      setText(this.page.notice, `Cannot load the current state: ${result.message}. Retrying…`);
      this.page.notice.hidden = false;
      await sleep(waitMs);
    }
    if (loading.reloadAfter) await this.loadSnapshot();
  }
}

export async function startDashboard(root: Document): Promise<void> {
  const page = pageElements(root);
  // The server serves this page for valid board paths only; `main` covers anything else.
  const board = boardFromPath(location.pathname) ?? DEFAULT_BOARD;
  root.documentElement.dataset.board = board;
  const session = await loadSession(page.notice);
  if (!session) return;
  const fromUrl = filterFromUrl(location.search);
  const kiosk = kioskFromQuery(location.search, false);
  await new BoardView(root, page, board, fromUrl.filter ?? NO_FILTER, kiosk).start(session, fromUrl.text);
}
