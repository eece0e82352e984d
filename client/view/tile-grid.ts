// Status tiles grouped by `group`: colour *and* a text label (and a shape) for the state, the message,
// and since when. Keyed by service, so an update touches one tile; ages are refreshed once a second.
import { serverNow, type DashboardState, type StatusState, type Tile } from '../state/dashboard.ts';
import { formatClock, formatDuration } from '../state/format.ts';
import { element, reconcileChildren, setAttribute, setText } from './dom.ts';

export const STATE_LABELS: Record<StatusState | 'stale', string> = {
  ok: 'OK',
  degraded: 'Degraded',
  down: 'Down',
  maintenance: 'Maintenance',
  stale: 'Stale',
};
/** A shape per state, so the state never depends on telling colours apart. */
export const STATE_MARKS: Record<StatusState | 'stale', string> = {
  ok: '✓',
  degraded: '▲',
  down: '✕',
  maintenance: '◆',
  stale: '◌',
};
const SUMMARY_ORDER = ['down', 'degraded', 'stale', 'maintenance', 'ok'] as const;
const UNGROUPED = 'Ungrouped';

interface TileView {
  readonly root: HTMLLIElement;
  readonly mark: HTMLSpanElement;
  readonly label: HTMLSpanElement;
  readonly message: HTMLParagraphElement;
  readonly clock: HTMLTimeElement;
  readonly age: HTMLSpanElement;
  tile: Tile | undefined;
}

interface GroupView {
  readonly section: HTMLElement;
  readonly count: HTMLSpanElement;
  readonly list: HTMLUListElement;
}

function displayState(tile: Tile): StatusState | 'stale' {
  return tile.stale ? 'stale' : tile.state;
}

function createTileView(service: string): TileView {
  const root = element('li', 'tile');
  const head = element('div', 'tile-head');
  const name = element('span', 'tile-name', service);
  const badge = element('span', 'badge');
  const mark = element('span', 'badge-mark');
  mark.setAttribute('aria-hidden', 'true');
  const label = element('span', 'badge-label');
  badge.append(mark, label);
  head.append(name, badge);
  const message = element('p', 'tile-message');
  const since = element('p', 'tile-since');
  const clock = element('time');
  const age = element('span', 'tile-age');
  since.append('since ', clock, ' ', age);
  root.append(head, message, since);
  return { root, mark, label, message, clock, age, tile: undefined };
}

function updateTileView(view: TileView, tile: Tile): void {
  const shown = displayState(tile);
  setAttribute(view.root, 'data-state', shown);
  setText(view.mark, STATE_MARKS[shown]);
  setText(view.label, tile.stale ? `Stale · ${STATE_LABELS[tile.state]}` : STATE_LABELS[tile.state]);
  setText(view.message, tile.message ?? '');
  view.message.hidden = !tile.message;
  setText(view.clock, formatClock(tile.since));
  setAttribute(view.clock, 'datetime', new Date(tile.since).toISOString());
  view.tile = tile;
}

export class TileGrid {
  private readonly views = new Map<string, TileView>();
  private readonly groups = new Map<string, GroupView>();
  private tiles: DashboardState['tiles'] | undefined;
  private agesAt = 0;

  constructor(
    private readonly container: HTMLElement,
    private readonly summary: HTMLElement,
    private readonly empty: HTMLElement,
  ) {}

  render(state: DashboardState): void {
    const changed = state.tiles !== this.tiles;
    if (changed) this.renderTiles(state);
    // Ages move once a second; recomputing them on every frame would be wasted work.
    if (changed || state.now - this.agesAt >= 1000) {
      this.agesAt = state.now;
      const now = serverNow(state);
      for (const view of this.views.values()) {
        if (view.tile) setText(view.age, `(${formatDuration(now - view.tile.since)})`);
      }
    }
  }

  private renderTiles(state: DashboardState): void {
    this.tiles = state.tiles;
    let membershipChanged = false;
    for (const [service, tile] of state.tiles) {
      let view = this.views.get(service);
      if (!view) {
        view = createTileView(service);
        this.views.set(service, view);
        membershipChanged = true;
      } else if (view.tile?.group !== tile.group) {
        membershipChanged = true;
      }
      if (view.tile !== tile) updateTileView(view, tile);
    }
    for (const [service, view] of this.views) {
      if (state.tiles.has(service)) continue;
      view.root.remove();
      this.views.delete(service);
      membershipChanged = true;
    }
    if (membershipChanged) this.arrange();
    this.renderSummary(state);
  }

  /** Puts tiles into their groups, both sorted by name (ungrouped last), so nothing jumps around. */
  private arrange(): void {
    const byGroup = new Map<string, TileView[]>();
    const services = [...this.views.keys()].sort();
    for (const service of services) {
      const view = this.views.get(service);
      if (!view?.tile) continue;
      const members = byGroup.get(view.tile.group) ?? [];
      members.push(view);
      byGroup.set(view.tile.group, members);
    }
    const names = [...byGroup.keys()].sort((a, b) => (a === '' ? 1 : b === '' ? -1 : a.localeCompare(b)));
    const sections: HTMLElement[] = [];
    for (const name of names) {
      const members = byGroup.get(name) ?? [];
      let group = this.groups.get(name);
      if (!group) {
        group = this.createGroup(name);
        this.groups.set(name, group);
      }
      reconcileChildren(
        group.list,
        members.map((view) => view.root),
      );
      sections.push(group.section);
    }
    for (const name of [...this.groups.keys()]) if (!byGroup.has(name)) this.groups.delete(name);
    reconcileChildren(this.container, sections);
  }

  private createGroup(name: string): GroupView {
    const section = element('section', 'tile-group');
    const heading = element('h3', 'tile-group-title', name || UNGROUPED);
    const count = element('span', 'tile-group-count');
    heading.append(' ', count);
    const list = element('ul', 'tiles');
    list.setAttribute('aria-label', `${name || UNGROUPED} services`);
    section.append(heading, list);
    return { section, count, list };
  }

  private renderSummary(state: DashboardState): void {
    const total: Record<string, number> = {};
    const perGroup = new Map<string, Record<string, number>>();
    for (const tile of state.tiles.values()) {
      const shown = displayState(tile);
      total[shown] = (total[shown] ?? 0) + 1;
      const counts = perGroup.get(tile.group) ?? {};
      counts[shown] = (counts[shown] ?? 0) + 1;
      perGroup.set(tile.group, counts);
    }
    const describe = (counts: Record<string, number>) =>
      SUMMARY_ORDER.filter((key) => counts[key])
        .map((key) => `${counts[key]} ${STATE_LABELS[key].toLowerCase()}`)
        .join(', ');
    const size = state.tiles.size;
    setText(this.summary, size === 0 ? '' : `${size} service${size === 1 ? '' : 's'}: ${describe(total)}`);
    for (const [name, group] of this.groups) setText(group.count, `(${describe(perGroup.get(name) ?? {})})`);
    this.empty.hidden = size > 0 || !state.loaded;
    setText(
      this.empty,
      state.filter.text ? `No service matches “${state.filter.text}”.` : 'No service has reported yet.',
    );
  }
}
