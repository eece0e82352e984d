// The header: connection state in words (live / reconnecting / offline / connecting), how long ago the
// stream last brought anything ("updated 4s ago": an event or a heartbeat), and the user.
import type { SessionResponse } from '../../shared/api.ts';
import { connectionLabel, type ConnectionLabel, type ConnectionView } from '../state/dashboard.ts';
import { formatDuration } from '../state/format.ts';
import { setAttribute, setText } from './dom.ts';

const LABELS: Record<ConnectionLabel, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
};

export interface HeaderElements {
  connection: HTMLElement;
  label: HTMLElement;
  lastEvent: HTMLElement;
  userName: HTMLElement;
}

export class Header {
  constructor(private readonly elements: HeaderElements) {}

  showUser(session: SessionResponse): void {
    setText(this.elements.userName, `${session.user.name} (${session.user.role})`);
  }

  render(state: ConnectionView): void {
    const label = connectionLabel(state);
    setAttribute(this.elements.connection, 'data-state', label);
    setText(this.elements.label, LABELS[label]);
    const age =
      state.lastReceivedAt === undefined
        ? 'not updated yet'
        : `updated ${formatDuration(state.now - state.lastReceivedAt)} ago`;
    setText(this.elements.lastEvent, age);
  }
}
