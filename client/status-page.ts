// The live part of a public status page (docs/status-pages.md, "Live updates"). The server renders the
// page complete; this reads that markup as the starting state, opens `GET /status/<board>/events`
// (no cookies), applies its snapshot and changes, and says how fresh the page is. A stream that ends for
// good (the page turned off, a limit) is retried after a pause, unless the page is gone (404).
import { STATUS_STATES } from '../shared/events.ts';
import {
  OVERALL_LABELS,
  publicSnapshotSchema,
  publicStatusSchema,
  STATE_LABELS,
  type OverallState,
  type PublicStatus,
} from '../shared/status-page.ts';
import {
  agoText,
  applyStatus,
  fromSnapshot,
  overallOf,
  replaceWithSnapshot,
  type StatusPageState,
} from './status-state.ts';

/** Pause before a stream that ended for good (429, 503, a restart) is opened again. */
const REOPEN_MIN_MS = 5000;
const REOPEN_SPREAD_MS = 10_000;
const TICK_MS = 1000;

type Connection = 'connecting' | 'live' | 'reconnecting' | 'gone';

/** The services and their reports as the server rendered them. */
function readRendered(root: HTMLElement): StatusPageState {
  const services: string[] = [];
  const statuses: PublicStatus[] = [];
  for (const item of Array.from(root.querySelectorAll<HTMLElement>('.status-service'))) {
    const service = item.dataset.service ?? '';
    services.push(service);
    const parsed = publicStatusSchema.safeParse({
      service,
      state: item.dataset.state,
      id: item.dataset.id,
      since: Date.parse(item.querySelector('.status-since time')?.getAttribute('datetime') ?? ''),
      ...(item.querySelector('.status-message')
        ? { message: item.querySelector('.status-message')?.textContent ?? '' }
        : {}),
    });
    if (parsed.success) statuses.push(parsed.data);
  }
  return fromSnapshot({ services, statuses });
}

function element<K extends keyof HTMLElementTagNameMap>(
  doc: Document,
  tag: K,
  className: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = doc.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** One service's list item, built the way the server renders it. */
function renderService(
  doc: Document,
  name: string,
  status: PublicStatus | undefined,
  now: number,
): HTMLLIElement {
  const state: OverallState = status?.state ?? 'unknown';
  const item = element(doc, 'li', 'status-service');
  item.dataset.service = name;
  item.dataset.state = state;
  if (status) item.dataset.id = status.id;
  const row = element(doc, 'div', 'status-row');
  const dot = element(doc, 'span', 'status-dot');
  dot.setAttribute('aria-hidden', 'true');
  row.append(
    dot,
    element(doc, 'span', 'status-name', name),
    element(doc, 'span', 'status-state', STATE_LABELS[state]),
  );
  item.append(row);
  if (status?.message) item.append(element(doc, 'p', 'status-message', status.message));
  if (status) {
    const since = element(doc, 'p', 'status-since', 'since ');
    const time = doc.createElement('time');
    time.dateTime = new Date(status.since).toISOString();
    time.textContent = `${timeFormat.format(status.since)} (${agoText(now - status.since)})`;
    since.append(time);
    item.append(since);
  }
  return item;
}

export function startStatusPage(doc: Document): void {
  const root = doc.getElementById('status');
  const list = doc.getElementById('status-services');
  const overall = doc.getElementById('status-overall');
  const overallLabel = doc.getElementById('status-overall-label');
  const updated = doc.getElementById('status-updated');
  const eventsUrl = root?.dataset.events;
  if (!root || !list || !overall || !overallLabel || !updated || !eventsUrl) return;

  let state = readRendered(root);
  let connection: Connection = 'connecting';
  /** When the page was last known current: the stream's open or last frame, or the server's render. */
  let confirmedAt = Number(root.dataset.renderedAt) || Date.now();
  let source: EventSource | undefined;
  let reopenTimer: number | undefined;

  function render(): void {
    const now = Date.now();
    const items = state.services.map((name) => renderService(doc, name, state.statuses.get(name), now));
    list?.replaceChildren(...items);
    const worst = overallOf(state);
    if (overall && overall.dataset.state !== worst) overall.dataset.state = worst;
    if (overallLabel && overallLabel.textContent !== OVERALL_LABELS[worst])
      overallLabel.textContent = OVERALL_LABELS[worst];
    renderFreshness();
  }

  function renderFreshness(): void {
    const age = agoText(Date.now() - confirmedAt);
    const text =
      connection === 'live'
        ? `Live · updated ${age}`
        : connection === 'gone'
          ? `This page is no longer public · updated ${age}`
          : connection === 'connecting'
            ? `Connecting… · updated ${age}`
            : `Reconnecting… · updated ${age}`;
    if (updated && updated.textContent !== text) updated.textContent = text;
    if (updated) updated.dataset.connection = connection;
  }

  /** Once a second: how fresh the page is, and how long ago each state began. */
  function tick(): void {
    const now = Date.now();
    for (const time of Array.from(list?.querySelectorAll('time') ?? [])) {
      const since = Date.parse(time.dateTime);
      const text = `${timeFormat.format(since)} (${agoText(now - since)})`;
      if (time.textContent !== text) time.textContent = text;
    }
    renderFreshness();
  }

  function onSnapshot(event: MessageEvent<string>): void {
    const parsed = publicSnapshotSchema.safeParse(JSON.parse(event.data));
    if (!parsed.success) return;
    state = replaceWithSnapshot(state, parsed.data);
    confirmedAt = Date.now();
    render();
  }

  function onStatus(event: MessageEvent<string>): void {
    const parsed = publicStatusSchema.safeParse(JSON.parse(event.data));
    if (!parsed.success || !(STATUS_STATES as readonly string[]).includes(parsed.data.state)) return;
    const next = applyStatus(state, parsed.data);
    confirmedAt = Date.now();
    if (next !== state) {
      state = next;
      render();
    } else {
      renderFreshness();
    }
  }

  function open(): void {
    window.clearTimeout(reopenTimer);
    source?.close();
    const stream = new EventSource(eventsUrl ?? '');
    source = stream;
    stream.addEventListener('open', () => {
      connection = 'live';
      confirmedAt = Date.now();
      renderFreshness();
    });
    stream.addEventListener('snapshot', onSnapshot);
    stream.addEventListener('status', onStatus);
    // The server's heartbeat: nothing changed, and the page is current.
    stream.addEventListener('ping', () => {
      confirmedAt = Date.now();
      renderFreshness();
    });
    stream.addEventListener('error', () => {
      if (connection === 'live') confirmedAt = Date.now();
      connection = 'reconnecting';
      renderFreshness();
      // CLOSED: the server answered something other than a stream (404, 429, 503); EventSource gives up.
      if (stream.readyState === EventSource.CLOSED) void checkGone();
    });
  }

  async function checkGone(): Promise<void> {
    try {
      const answer = await fetch(eventsUrl ?? '', { method: 'HEAD', credentials: 'omit' });
      if (answer.status === 404) {
        connection = 'gone';
        renderFreshness();
        return;
      }
    } catch {
      // Offline: try again later like any other refusal.
    }
    reopenTimer = window.setTimeout(open, REOPEN_MIN_MS + Math.random() * REOPEN_SPREAD_MS);
  }

  // Leaving for the back/forward cache closes the stream (a page with an open one is not cached); coming
  // back opens a new one, whose snapshot brings the page up to date at once.
  window.addEventListener('pagehide', () => {
    window.clearTimeout(reopenTimer);
    source?.close();
    source = undefined;
  });
  window.addEventListener('pageshow', (event) => {
    if (event.persisted) {
      connection = 'reconnecting';
      open();
    }
  });
  window.setInterval(tick, TICK_MS);
  render();
  open();
}
