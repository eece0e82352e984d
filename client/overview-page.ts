// The board overview (`/`, docs/dashboard.md "The overview"): every board the user may see with its worst
// state and counts, live. The counts come from `GET /api/boards`; the shared stream carries the status
// topics of those boards, and a status on any of them (or the stream going live again) refetches the
// list, at most once a second. The list is also refetched now and then, so a board granted meanwhile
// appears. An old dashboard link (`/?filter=…`) goes to the `main` board with its filter. `?kiosk=1`
// shows it on a wall screen, as the first stop of a rotation through the boards (docs/dashboard.md,
// "Kiosk mode").
import { DEFAULT_BOARD, MAX_BOARDS_PER_STREAM } from '../shared/boards.ts';
import type { StatusEnvelope } from '../shared/events.ts';
import { fetchBoards } from './http/api.ts';
import { bindLogout, leaver, loadSession, watchBrowser } from './page-shell.ts';
import { boardPath } from './state/boards.ts';
import { isStale } from './state/dashboard.ts';
import { kioskFromQuery } from './state/kiosk.ts';
import { initialOverviewState, reduceOverview, type OverviewAction } from './state/overview.ts';
import { connectStream } from './stream/connect.ts';
import { watchPageLifecycle } from './stream/page-lifecycle.ts';
import type { HubMessage } from './stream/protocol.ts';
import { Announcer } from './view/announcer.ts';
import { BoardCards } from './view/board-cards.ts';
import { BoardSwitcher } from './view/board-switcher.ts';
import { required, setText } from './view/dom.ts';
import { FILTER_PARAM } from './view/filter-box.ts';
import { createFrameScheduler } from './view/frame-scheduler.ts';
import { Header } from './view/header.ts';
import { startKiosk } from './view/kiosk.ts';
import { StaleBanner } from './view/stale-banner.ts';

/** At most one `GET /api/boards` a second, however many statuses arrive. */
const REFRESH_MIN_INTERVAL_MS = 1000;
/** Boards granted (or added) meanwhile show up within this. */
const REFRESH_EVERY_MS = 30_000;
const TICK_MS = 1000;
/** The overview needs only statuses: counts and worst state. */
const OVERVIEW_TOPICS = ['status:*'];

export async function startOverview(root: Document): Promise<void> {
  const filter = new URLSearchParams(location.search).get(FILTER_PARAM);
  if (filter !== null) {
    // The dashboard lived at `/` before boards: its links now mean the main board.
    location.replace(`${boardPath(DEFAULT_BOARD)}?${new URLSearchParams({ [FILTER_PARAM]: filter })}`);
    return;
  }
  const page = {
    connection: required(root, '#connection', HTMLElement),
    connectionLabel: required(root, '#connection-label', HTMLElement),
    lastEvent: required(root, '#last-event', HTMLElement),
    switcher: required(root, '#board-switcher', HTMLElement),
    userName: required(root, '#user-name', HTMLElement),
    logout: required(root, '#logout', HTMLButtonElement),
    notice: required(root, '#notice', HTMLElement),
    staleBanner: required(root, '#stale-banner', HTMLElement),
    announcer: required(root, '#announcer', HTMLElement),
    cards: required(root, '#board-cards', HTMLElement),
    summary: required(root, '#boards-summary', HTMLElement),
    empty: required(root, '#boards-empty', HTMLElement),
  };
  const session = await loadSession(page.notice);
  if (!session) return;

  let state = initialOverviewState(Date.now());
  // Kept whole: spreading it would copy the `leaving` getter's value once, so it would stay false.
  const exit = leaver();
  const leave = exit.leave;
  const header = new Header({
    connection: page.connection,
    label: page.connectionLabel,
    lastEvent: page.lastEvent,
    userName: page.userName,
  });
  header.showUser(session);
  const switcher = new BoardSwitcher(page.switcher, undefined);
  const cards = new BoardCards(page.cards, page.summary, page.empty);
  const announcer = new Announcer(page.announcer);
  const staleBanner = new StaleBanner(page.staleBanner);
  const scheduler = createFrameScheduler(() => {
    header.render(state);
    switcher.render(state.boards);
    cards.render(state);
    announcer.render(state);
    // No board, no stream: nothing to be stale about.
    if (state.boards?.length !== 0) staleBanner.render(state);
  }, 100);
  const dispatch = (action: OverviewAction) => {
    state = reduceOverview(state, action);
    scheduler.request();
  };

  /** The stream carries the status topics of the boards shown (as many as one stream may carry). */
  /** The boards last subscribed to (undefined before the first time: even none is a subscription). */
  let subscribedTo: string | undefined;
  const streamedBoards = () =>
    (state.boards ?? []).slice(0, MAX_BOARDS_PER_STREAM).map((board) => board.name);
  const subscribe = () => {
    const boards = streamedBoards();
    const key = boards.join(',');
    if (key === subscribedTo) return;
    subscribedTo = key;
    stream.subscribe(
      boards.map((board) => ({ board, since: null })),
      OVERVIEW_TOPICS,
    );
  };

  let fetching = false;
  let fetchAgain = false;
  let lastFetchAt = -Infinity;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const load = async () => {
    if (fetching) {
      fetchAgain = true;
      return;
    }
    fetching = true;
    lastFetchAt = performance.now();
    const result = await fetchBoards();
    fetching = false;
    if (result.kind === 'unauthorized') {
      leave('expired');
      return;
    }
    if (result.kind === 'failed') {
      setText(page.notice, `Cannot load the boards: ${result.message}. Retrying…`);
      page.notice.hidden = false;
      refresh();
    } else {
      page.notice.hidden = true;
      dispatch({ type: 'boardsLoaded', boards: result.value.boards, now: Date.now() });
      // No board, no stream: a connection state would say nothing true.
      page.connection.hidden = result.value.boards.length === 0;
      subscribe();
    }
    if (fetchAgain) {
      fetchAgain = false;
      refresh();
    }
  };
  /** Refetches the list now, or as soon as a second has passed since the last time. */
  const refresh = () => {
    if (timer !== undefined) return;
    const wait = Math.max(0, lastFetchAt + REFRESH_MIN_INTERVAL_MS - performance.now());
    timer = setTimeout(() => {
      timer = undefined;
      void load();
    }, wait);
  };

  const onStreamMessage = (message: HubMessage) => {
    if (exit.leaving) return;
    switch (message.type) {
      case 'alive':
        dispatch({
          type: 'streamAlive',
          receivedAt: message.receivedAt,
          heartbeatMs: message.heartbeatMs,
          now: Date.now(),
        });
        break;
      case 'state':
        dispatch({ type: 'streamStateChanged', state: message.state, now: Date.now() });
        // (Re)opened: statuses from before (while it was down, or before these boards joined it) are in
        // the list, not in the stream.
        if (message.state === 'live') refresh();
        break;
      case 'events': {
        const statuses = message.events.filter((event): event is StatusEnvelope => event.type === 'status');
        if (statuses.length === 0) break;
        dispatch({ type: 'statusesReceived', statuses, now: Date.now() });
        refresh();
        break;
      }
      case 'reset':
        refresh();
        break;
      case 'boardsRemoved':
        dispatch({ type: 'boardsRemoved', boards: message.boards, now: Date.now() });
        // The hub has already dropped them from this tab's subscription.
        subscribedTo = streamedBoards().join(',');
        refresh();
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
  bindLogout(page.logout, page.notice, session, stream, leave);
  watchBrowser((online) => dispatch({ type: 'browserOnlineChanged', online, now: Date.now() }));
  watchPageLifecycle({
    stream,
    // Back from the back/forward cache: subscribe again (from now on; the list is refetched when live).
    onRestore: () => {
      subscribedTo = undefined;
      subscribe();
      refresh();
    },
    isStale: () => isStale({ ...state, now: Date.now() }),
  });
  const kiosk = kioskFromQuery(location.search, true);
  if (kiosk) startKiosk(root, { options: kiosk, current: undefined, boards: () => state.boards });
  setInterval(() => dispatch({ type: 'tick', now: Date.now() }), TICK_MS);
  setInterval(refresh, REFRESH_EVERY_MS);

  root.documentElement.dataset.stream = stream.mode;
  scheduler.request();
  await load();
  root.documentElement.dataset.stream = stream.mode;
}
