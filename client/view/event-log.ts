// The event log, newest first: level as text (and shape), time, service, title and text. Keyed by id,
// so a new event adds one row and leaves the others alone.
import type { LogEventEnvelope } from '../../shared/events.ts';
import type { DashboardState } from '../state/dashboard.ts';
import { formatClock } from '../state/format.ts';
import { element, reconcileChildren, setText } from './dom.ts';

const LEVEL_LABELS: Record<LogEventEnvelope['level'], string> = {
  info: 'Info',
  warn: 'Warning',
  error: 'Error',
};
const LEVEL_MARKS: Record<LogEventEnvelope['level'], string> = { info: 'ℹ', warn: '▲', error: '✕' };

function createRow(event: LogEventEnvelope): HTMLLIElement {
  const row = element('li', 'event');
  row.setAttribute('data-level', event.level);
  const level = element('span', 'event-level');
  const mark = element('span', 'event-mark', LEVEL_MARKS[event.level]);
  mark.setAttribute('aria-hidden', 'true');
  level.append(mark, ` ${LEVEL_LABELS[event.level]}`);
  const time = element('time', 'event-time', formatClock(event.ts));
  time.setAttribute('datetime', new Date(event.ts).toISOString());
  const title = element('span', 'event-title', event.title);
  row.append(level, time);
  if (event.service) row.append(element('span', 'event-service', event.service));
  row.append(title);
  if (event.text) row.append(element('p', 'event-text', event.text));
  return row;
}

export class EventLog {
  private readonly rows = new Map<string, HTMLLIElement>();
  private events: DashboardState['events'] | undefined;

  constructor(
    private readonly list: HTMLOListElement,
    private readonly empty: HTMLElement,
  ) {}

  render(state: DashboardState): void {
    if (state.events === this.events) return;
    this.events = state.events;
    const wanted: HTMLLIElement[] = [];
    const ids = new Set<string>();
    for (let index = state.events.length - 1; index >= 0; index -= 1) {
      const event = state.events[index];
      if (!event) continue;
      ids.add(event.id);
      let row = this.rows.get(event.id);
      if (!row) {
        row = createRow(event);
        this.rows.set(event.id, row);
      }
      wanted.push(row);
    }
    for (const id of this.rows.keys()) if (!ids.has(id)) this.rows.delete(id);
    reconcileChildren(this.list, wanted);
    this.empty.hidden = state.events.length > 0 || !state.loaded;
    setText(this.empty, state.filter.text ? `No event matches “${state.filter.text}”.` : 'No event yet.');
  }
}
