// The dashboard's data flow (docs/dashboard.md): session, then the snapshot, then the stream from the snapshot's
// id; events go through the pure reducer and the DOM is drawn once per animation frame. A `reset`
// refetches the snapshot; a 401 anywhere sends the user to the login page.
import type { SessionResponse } from '../shared/api.ts';
import type { Envelope } from '../shared/events.ts';
import { fetchSession, fetchSnapshot, postLogout } from './http/api.ts';
import { goToLogin } from './navigation.ts';
import { initialState, reduce, type Action } from './state/dashboard.ts';
import { NO_FILTER, type DashboardFilter } from './state/filter.ts';
import { connectStream } from './stream/connect.ts';
import type { HubMessage } from './stream/protocol.ts';
import { Announcer } from './view/announcer.ts';
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
const RETRY_MAX_MS = 15_000;
const MAX_QUEUED_WHILE_LOADING = 20_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function pageElements(root: Document) {
  return {
    connection: required(root, '#connection', HTMLElement),
    connectionLabel: required(root, '#connection-label', HTMLElement),
    lastEvent: required(root, '#last-event', HTMLElement),
    userName: required(root, '#user-name', HTMLElement),
    logout: required(root, '#logout', HTMLButtonElement),
    notice: required(root, '#notice', HTMLElement),
    filterForm: required(root, '#filter-form', HTMLFormElement),
    filterInput: required(root, '#filter', HTMLInputElement),
    filterError: required(root, '#filter-error', HTMLElement),
    announcer: required(root, '#announcer', HTMLElement),
    tileGroups: required(root, '#tile-groups', HTMLElement),
    servicesSummary: required(root, '#services-summary', HTMLElement),
    servicesEmpty: required(root, '#services-empty', HTMLElement),
    charts: required(root, '#charts', HTMLElement),
    metricsEmpty: required(root, '#metrics-empty', HTMLElement),
    eventLog: required(root, '#event-log', HTMLOListElement),
    eventsEmpty: required(root, '#events-empty', HTMLElement),
  };
}

async function loadSession(notice: HTMLElement): Promise<SessionResponse | undefined> {
  for (let attempt = 0; ; attempt += 1) {
    const result = await fetchSession();
    if (result.kind === 'ok') return result.value;
    if (result.kind === 'unauthorized') {
      goToLogin(undefined);
      return undefined;
    }
    const waitMs = Math.min(1000 * 2 ** attempt, RETRY_MAX_MS);
    setText(notice, `Cannot start: ${result.message}. Retrying in ${Math.round(waitMs / 1000)} s…`);
    notice.hidden = false;
    await sleep(waitMs);
  }
}

export async function startDashboard(root: Document): Promise<void> {
  const page = pageElements(root);
  const session = await loadSession(page.notice);
  if (!session) return;
  page.notice.hidden = true;

  const fromUrl = filterFromUrl(location.search);
  let state = initialState(Date.now(), fromUrl.filter ?? NO_FILTER);
  let queued: Envelope[] = [];
  let loadingSnapshot = false;
  let reloadAfterLoad = false;
  let leaving = false;

  const header = new Header({
    connection: page.connection,
    label: page.connectionLabel,
    lastEvent: page.lastEvent,
    userName: page.userName,
  });
  header.showUser(session);
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

  const leave = (reason: 'expired' | 'logged-out') => {
    if (leaving) return;
    leaving = true;
    goToLogin(reason);
  };

  const onStreamMessage = (message: HubMessage) => {
    if (leaving) return;
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
        void loadSnapshot();
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
      const result = await fetchSnapshot();
      if (result.kind === 'unauthorized') {
        leave('expired');
        return;
      }
      if (result.kind === 'ok') {
        page.notice.hidden = true;
        loadingSnapshot = false;
        apply({ type: 'snapshotLoaded', snapshot: result.value, now: Date.now() });
        flushQueued();
        scheduler.request();
        stream.subscribe(state.filter.topics, result.value.lastEventId);
        break;
      }
      const waitMs = Math.min(1000 * 2 ** attempt, RETRY_MAX_MS);
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

  page.logout.addEventListener('click', () => {
    void (async () => {
      page.logout.disabled = true;
      const result = await postLogout(session.csrfToken);
      if (result.kind === 'failed') {
        setText(page.notice, `Logout failed: ${result.message}`);
        page.notice.hidden = false;
        page.logout.disabled = false;
        return;
      }
      // After the server ended the session, so other tabs do not find it still valid at /login.
      stream.logout();
      leave('logged-out');
    })();
  });

  addEventListener('online', () => dispatch({ type: 'browserOnlineChanged', online: true, now: Date.now() }));
  addEventListener('offline', () =>
    dispatch({ type: 'browserOnlineChanged', online: false, now: Date.now() }),
  );
  if (!navigator.onLine) dispatch({ type: 'browserOnlineChanged', online: false, now: Date.now() });
  // Restored from the back/forward cache: the worker was told this tab had left.
  addEventListener('pageshow', (event) => {
    if (event.persisted) location.reload();
  });
  setInterval(() => {
    // Background tabs get no animation frames: keep their state current here (cheaply, no DOM).
    flushQueued();
    dispatch({ type: 'tick', now: Date.now() });
  }, TICK_MS);

  // Which transport carries the stream, for people debugging (and the browser tests).
  root.documentElement.dataset.stream = stream.mode;
  scheduler.request();
  await loadSnapshot();
  root.documentElement.dataset.stream = stream.mode;
}
