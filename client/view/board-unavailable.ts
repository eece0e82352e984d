// The board view's answer when its board cannot be shown (docs/dashboard.md): in place of the dashboard,
// its filter and its connection state (no stream for this page, so that state would say nothing true), a
// title and a sentence saying why, focused so a screen reader reads it.
import { setText } from './dom.ts';

/** Why the board is not shown. */
export type Unavailable = 'forbidden' | 'unknown' | 'removed';

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

export interface UnavailableElements {
  board: HTMLElement;
  filterForm: HTMLFormElement;
  connection: HTMLElement;
  unavailable: HTMLElement;
  unavailableTitle: HTMLElement;
  unavailableText: HTMLElement;
}

export function showUnavailable(root: Document, page: UnavailableElements, why: Unavailable): void {
  const { title, text } = UNAVAILABLE[why];
  setText(page.unavailableTitle, title);
  setText(page.unavailableText, text);
  page.board.hidden = true;
  page.filterForm.hidden = true;
  page.connection.hidden = true;
  page.unavailable.hidden = false;
  root.title = `${title} · pulseboard`;
  root.documentElement.dataset.unavailable = why;
  page.unavailableTitle.focus();
}
