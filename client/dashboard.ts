// The board view (`/b/<board>`, docs/dashboard.md): session, then the board's snapshot, then the stream
// from the snapshot's id; events go through the pure reducer and the DOM is drawn once per animation
// frame. A `reset` refetches the snapshot; a 401 anywhere sends the user to the login page; a board the
// user may not see (403), or that left the stream (access revoked, board removed), is said in words
// instead of a broken dashboard.
import type { Envelope } from '../shared/events.ts';
import { DEFAULT_BOARD } from '../shared/boards.ts';
import { fetchBoards, fetchSnapshot } from './http/api.ts';
import { bindLogout, leaver, loadSession, retryDelayMs, sleep, watchBrowser } from './page-shell.ts';
import { boardFromPath, sortBoards, type BoardSummary } from './state/boards.ts';
import { initialState, reduce, type Action } from './state/dashboard.ts';
import { NO_FILTER, type DashboardFilter } from './state/filter.ts';
import { connectStream } from './stream/connect.ts';
import type { HubMessage } from './stream/protocol.ts';
import { Announcer } from './view/announcer.ts';
import { BoardSwitcher } from './view/board-switcher.ts';
import { required, setText } from './view/dom.ts';
import { EventLog } from './view/event-log.ts';
import { bindFilterBox, filterFromUrl } from './view/filter-box.ts';
import { createFrameScheduler } from './view/frame-scheduler.ts';
import { Header } from './view/header.ts';
import { MetricCharts } from './view/metric-charts.ts';
import { TileGrid } from './view/tile-grid.ts';

const TICK_MS = 1000;
/** At most ten renders a second: smooth enough for a dashboard, and a fifth of the cost at 50 events/s. */
const MIN_RENDER_INTERVAL_MS = 100;
const MAX_QUEUED_WHILE_LOADING = 20_000;

/** Why the board is not shown. */
type Unavailable = 'forbidden' | 'unknown' | 'removed';

const UNAVAILABLE: Record<Unavailable, { title: string; text: string }> = {
  forbidden: {
    title: 'You do not have access to this board',
    text: 'Ask an administrator to grant you access, or pick one of your boards.',
  },
  unknown: { title: 'There is no such board', text: 'It may have been removed. Pick one of the boards.' },
  removed: {
    title: 'This board is no longer available to you',
    text: 'Your access was revoked or the board was removed: it no longer updates.',
  },
};

function pageElements(root: Document) {
  return {
    connection: required(root, '#connection', HTMLElement),
    connectionLabel: required(root, '#connection-label', HTMLElement),
    lastEvent: required(root, '#last-event', HTMLElement),
    switcher: required(root, '#board-switcher', HTMLElement),
    userName: required(root, '#user-name', HTMLElement),
    logout: required(root, '#logout', HTMLButtonElement),
    notice: required(root, '#notice', HTMLElement),
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

export async function startDashboard(root: Document): Promise<void> {
  const page = pageElements(root);
  // The server serves this page for valid board paths only; `main` covers anything else.
  const board = boardFromPath(location.pathname) ?? DEFAULT_BOARD;
  root.documentElement.dataset.board = board;
  const session = await loadSession(page.notice);
  if (!session) return;

  const fromUrl = filterFromUrl(location.search);
  let state = initialState(Date.now(), fromUrl.filter ?? NO_FILTER);
  let queued: Envelope[] = [];
  let loadingSnapshot = false;
  let reloadAfterLoad = false;
  let unavailable: Unavailable | undefined;
  const { leave, ...exit } = leaver();

  const header = new Header({
    connection: page.connection,
    label: page.connectionLabel,
    lastEvent: page.lastEvent,
    userName: page.userName,
  });
  header.showUser(session);
  const switcher = new BoardSwitcher(page.switcher, board);
  const showBoards = (boards: readonly BoardSummary[]) => {
    const sorted = sortBoards(boards);
    switcher.render(sorted);
    const title = sorted.find((summary) => summary.name === board)?.title;
    if (title && !unavailable) root.title = `${title} · pulseboard`;
  };
  const refreshBoards = async () => {
    const result = await fetchBoards();
    if (result.kind === 'ok') showBoards(result.value.boards);
    else if (result.kind === 'unauthorized') leave('expired');
  };
  const tiles = new TileGrid(page.tileGroups, page.servicesSummary, page.servicesEmpty);
  const eventLog = new EventLog(page.eventLog, page.eventsEmpty);
  const announcer = new Announcer(page.announcer);

  const apply = (action: Action) => {
    state = reduce(state, action);
  };
  /** Events wait in a queue and enter the state as one batch (never while a snapshot is loading). */
  const flushQueued = () => {
    if (queued.length === 0 || loadingSnapshot) return;
    const events = queued;
    queued = [];
    apply({ type: 'eventsReceived', events, now: Date.now() });
  };
  const charts = new MetricCharts(page.charts, page.metricsEmpty, () => scheduler.request());
  const scheduler = createFrameScheduler(() => {
    flushQueued();
    header.render(state);
    tiles.render(state);
    charts.render(state);
    eventLog.render(state);
    announcer.render(state);
  }, MIN_RENDER_INTERVAL_MS);
  const dispatch = (action: Action) => {
    apply(action);
    scheduler.request();
  };

  /**
   * The board cannot be shown: say why, in place of the dashboard, and take no more of its events. The
   * tab stays subscribed (to no board) to hear of a logout in another tab.
   */
  const showUnavailable = (why: Unavailable) => {
    if (unavailable) return;
    unavailable = why;
    stream.subscribe([], null);
    queued = [];
    const { title, text } = UNAVAILABLE[why];
    setText(page.unavailableTitle, title);
    setText(page.unavailableText, text);
    page.board.hidden = true;
    page.filterForm.hidden = true;
    // No stream for this page: its connection state would say nothing true.
    page.connection.hidden = true;
    page.unavailable.hidden = false;
    root.title = `${title} · pulseboard`;
    root.documentElement.dataset.unavailable = why;
    page.unavailableTitle.focus();
    void refreshBoards();
  };

  const onStreamMessage = (message: HubMessage) => {
    if (exit.leaving) return;
    if (unavailable && message.type !== 'unauthorized' && message.type !== 'loggedOut') return;
    switch (message.type) {
      case 'state':
        dispatch({ type: 'streamStateChanged', state: message.state, now: Date.now() });
        break;
      case 'events':
        for (const event of message.events) queued.push(event);
        // A snapshot that keeps failing must not let the queue grow without bound: drop it and load
        // one more snapshot afterwards, which covers everything dropped.
        if (loadingSnapshot && queued.length > MAX_QUEUED_WHILE_LOADING) {
          queued = [];
          reloadAfterLoad = true;
        }
        scheduler.request();
        break;
      case 'reset':
        if (message.board === board) void loadSnapshot();
        break;
      case 'boardsRemoved':
        if (message.boards.includes(board)) showUnavailable('removed');
        break;
      case 'unauthorized':
        leave('expired');
        break;
      case 'loggedOut':
        leave('logged-out');
        break;
    }
  };
  const stream = connectStream(onStreamMessage);

  /** Renders the current state, then (re)subscribes from its id with the filter's topics. */
  async function loadSnapshot(): Promise<void> {
    if (loadingSnapshot) {
      reloadAfterLoad = true;
      return;
    }
    loadingSnapshot = true;
    for (let attempt = 0; ; attempt += 1) {
      const result = await fetchSnapshot(board);
      if (unavailable) return;
      if (result.kind === 'unauthorized') {
        leave('expired');
        return;
      }
      if (result.kind === 'forbidden' || result.kind === 'unknownBoard') {
        loadingSnapshot = false;
        showUnavailable(result.kind === 'forbidden' ? 'forbidden' : 'unknown');
        return;
      }
      if (result.kind === 'ok') {
        page.notice.hidden = true;
        loadingSnapshot = false;
        apply({ type: 'snapshotLoaded', snapshot: result.value, now: Date.now() });
        flushQueued();
        scheduler.request();
        stream.subscribe([{ board, since: result.value.lastEventId }], state.filter.topics);
        break;
      }
      const waitMs = retryDelayMs(attempt);
      setText(page.notice, `Cannot load the current state: ${result.message}. Retrying…`);
      page.notice.hidden = false;
      await sleep(waitMs);
    }
    if (reloadAfterLoad) {
      reloadAfterLoad = false;
      await loadSnapshot();
    }
  }

  bindFilterBox(
    page.filterForm,
    page.filterInput,
    page.filterError,
    fromUrl.text,
    (filter: DashboardFilter) => {
      dispatch({ type: 'filterChanged', filter, now: Date.now() });
      void loadSnapshot();
    },
  );

  bindLogout(page.logout, page.notice, session, stream, leave);
  watchBrowser((online) => dispatch({ type: 'browserOnlineChanged', online, now: Date.now() }));
  setInterval(() => {
    // Background tabs get no animation frames: keep their state current here (cheaply, no DOM).
    flushQueued();
    dispatch({ type: 'tick', now: Date.now() });
  }, TICK_MS);

  // Which transport carries the stream, for people debugging (and the browser tests).
  root.documentElement.dataset.stream = stream.mode;
  scheduler.request();
  void refreshBoards();
  await loadSnapshot();
  root.documentElement.dataset.stream = stream.mode;
}
