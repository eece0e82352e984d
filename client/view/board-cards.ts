// The overview's cards: one per board the user may see, with its worst state in words and shape (like a
// tile), the count of services per state, and a link to the board. Keyed by board name, so a refetch
// writes only what changed.
import type { StatusState } from '../state/dashboard.ts';
import { boardPath, type BoardSummary } from '../state/boards.ts';
import type { OverviewState } from '../state/overview.ts';
import { element, reconcileChildren, setAttribute, setText } from './dom.ts';
import { STATE_LABELS, STATE_MARKS } from './tile-grid.ts';

const COUNT_ORDER: readonly StatusState[] = ['down', 'degraded', 'maintenance', 'ok'];
const NO_STATUS = 'No status yet';

interface CardView {
  readonly root: HTMLLIElement;
  readonly title: HTMLAnchorElement;
  readonly mark: HTMLSpanElement;
  readonly label: HTMLSpanElement;
  readonly counts: HTMLParagraphElement;
  board: BoardSummary | undefined;
}

/** "3 services: 1 down, 2 ok"; "No services yet". */
export function describeCounts(counts: BoardSummary['counts']): string {
  const total = COUNT_ORDER.reduce((sum, state) => sum + counts[state], 0);
  if (total === 0) return 'No services yet';
  const parts = COUNT_ORDER.filter((state) => counts[state] > 0).map(
    (state) => `${counts[state]} ${STATE_LABELS[state].toLowerCase()}`,
  );
  return `${total} service${total === 1 ? '' : 's'}: ${parts.join(', ')}`;
}

function createCard(board: BoardSummary): CardView {
  const root = element('li', 'board-card');
  setAttribute(root, 'data-board', board.name);
  const head = element('div', 'board-card-head');
  const heading = element('h3', 'board-card-title');
  const title = element('a', 'board-card-link');
  title.href = boardPath(board.name);
  heading.append(title);
  const badge = element('span', 'badge');
  const mark = element('span', 'badge-mark');
  mark.setAttribute('aria-hidden', 'true');
  const label = element('span', 'badge-label');
  badge.append(mark, label);
  head.append(heading, badge);
  const name = element('p', 'board-card-name', board.name);
  const counts = element('p', 'board-card-counts');
  root.append(head, name, counts);
  return { root, title, mark, label, counts, board: undefined };
}

function updateCard(view: CardView, board: BoardSummary): void {
  setAttribute(view.root, 'data-state', board.state ?? 'none');
  setText(view.title, board.title);
  setText(view.mark, board.state ? STATE_MARKS[board.state] : '–');
  setText(view.label, board.state ? STATE_LABELS[board.state] : NO_STATUS);
  setText(view.counts, describeCounts(board.counts));
  view.board = board;
}

export class BoardCards {
  private readonly views = new Map<string, CardView>();
  private boards: OverviewState['boards'];

  constructor(
    private readonly list: HTMLElement,
    private readonly summary: HTMLElement,
    private readonly empty: HTMLElement,
  ) {}

  render(state: OverviewState): void {
    if (state.boards === this.boards) return;
    this.boards = state.boards;
    const boards = state.boards ?? [];
    const wanted: HTMLLIElement[] = [];
    for (const board of boards) {
      let view = this.views.get(board.name);
      if (!view) {
        view = createCard(board);
        this.views.set(board.name, view);
      }
      if (view.board !== board) updateCard(view, board);
      wanted.push(view.root);
    }
    const shown = new Set(boards.map((board) => board.name));
    for (const name of [...this.views.keys()]) if (!shown.has(name)) this.views.delete(name);
    reconcileChildren(this.list, wanted);
    const troubled = boards.filter((board) => board.state === 'down' || board.state === 'degraded').length;
    setText(
      this.summary,
      boards.length === 0
        ? ''
        : `${boards.length} board${boards.length === 1 ? '' : 's'}` +
            (troubled > 0 ? `, ${troubled} with trouble` : ', none with trouble'),
    );
    this.empty.hidden = state.boards === undefined || boards.length > 0;
  }
}
