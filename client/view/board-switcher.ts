// The board switcher in the header of every page: a list of links (the overview, then each board the
// user may see), the current page marked with aria-current. Links, not a select: each is one Tab stop
// and Enter, and a screen reader lists them as the page's "Boards" navigation.
import { boardPath, type BoardSummary } from '../state/boards.ts';
import { element, reconcileChildren, setAttribute, setText } from './dom.ts';

export const OVERVIEW_LABEL = 'Overview';

export class BoardSwitcher {
  private readonly links = new Map<string, HTMLLIElement>();
  private readonly overview: HTMLLIElement;
  private boards: readonly BoardSummary[] | undefined;

  /** `current`: the board this page shows; undefined on the overview. */
  constructor(
    private readonly list: HTMLElement,
    private readonly current: string | undefined,
  ) {
    this.overview = this.item('/', OVERVIEW_LABEL, current === undefined);
    reconcileChildren(list, [this.overview]);
  }

  render(boards: readonly BoardSummary[] | undefined): void {
    if (boards === this.boards) return;
    this.boards = boards;
    const items = [this.overview];
    for (const board of boards ?? []) {
      let item = this.links.get(board.name);
      if (!item) {
        item = this.item(boardPath(board.name), board.title, board.name === this.current);
        this.links.set(board.name, item);
      }
      const link = item.firstElementChild;
      if (link) setText(link, board.title);
      items.push(item);
    }
    const shown = new Set((boards ?? []).map((board) => board.name));
    for (const name of [...this.links.keys()]) if (!shown.has(name)) this.links.delete(name);
    reconcileChildren(this.list, items);
  }

  private item(href: string, label: string, current: boolean): HTMLLIElement {
    const item = element('li', 'switcher-item');
    const link = element('a', 'switcher-link', label);
    link.href = href;
    if (current) setAttribute(link, 'aria-current', 'page');
    item.append(link);
    return item;
  }
}
