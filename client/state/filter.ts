// The dashboard's filter box: words with `*` wildcards, kept in the URL (`?filter=`). A plain word
// filters service tiles, metric charts and the log events of matching services; `status:`, `metric:`
// and `event:` (by level) narrow one kind only. The same filter becomes the stream's `topics`, so the
// server sends only what the tab shows.
import type { LogEventEnvelope } from '../../shared/events.ts';
import { EVENT_KINDS, globMatches, MAX_TOPICS, TOPIC_PATTERN, type EventKind } from '../../shared/topics.ts';

type Kind = EventKind;

export interface DashboardFilter {
  /** The normalised text (words separated by one space); '' for no filter. */
  readonly text: string;
  /** Stream topics for this filter, or null for every topic. */
  readonly topics: readonly string[] | null;
  matchesService(service: string): boolean;
  matchesMetric(name: string): boolean;
  matchesEvent(event: Pick<LogEventEnvelope, 'level' | 'service'>): boolean;
}

export type FilterResult = { ok: true; filter: DashboardFilter } | { ok: false; error: string };

export const NO_FILTER: DashboardFilter = {
  text: '',
  topics: null,
  matchesService: () => true,
  matchesMetric: () => true,
  matchesEvent: () => true,
};

function isKind(value: string): value is Kind {
  return (EVENT_KINDS as readonly string[]).includes(value);
}

function anyOf(globs: readonly string[]): (value: string) => boolean {
  return (value) => globs.some((glob) => globMatches(glob, value));
}

/** Parses the filter text; an error names the word the server would refuse. */
export function parseFilter(input: string): FilterResult {
  const words = input.split(/[\s,]+/).filter(Boolean);
  if (words.length === 0) return { ok: true, filter: NO_FILTER };
  const plain: string[] = [];
  const byKind: Record<Kind, string[]> = { status: [], metric: [], event: [] };
  for (const word of words) {
    const colon = word.indexOf(':');
    const prefix = colon === -1 ? '' : word.slice(0, colon);
    const kind = isKind(prefix) ? prefix : undefined;
    const glob = kind ? word.slice(colon + 1) : word;
    if (!TOPIC_PATTERN.test(glob)) {
      return {
        ok: false,
        error: `"${word.slice(0, 70)}": use letters, digits, . _ : / - and * (up to 64 characters)`,
      };
    }
    if (kind) byKind[kind].push(glob);
    else plain.push(glob);
  }
  if (plain.includes('*')) return { ok: true, filter: NO_FILTER };

  const statusGlobs = [...plain, ...byKind.status];
  const metricGlobs = [...plain, ...byKind.metric];
  const eventGlobs = byKind.event;
  // Plain words select events by service, which is not part of the event topic: take every level.
  const eventTopics = plain.length > 0 ? ['*'] : eventGlobs;
  const topics = [
    ...new Set([
      ...statusGlobs.map((glob) => `status:${glob}`),
      ...metricGlobs.map((glob) => `metric:${glob}`),
      ...eventTopics.map((glob) => `event:${glob}`),
    ]),
  ];
  if (topics.length > MAX_TOPICS) {
    return { ok: false, error: `too many words: the filter makes at most ${MAX_TOPICS} topics` };
  }
  const service = anyOf(statusGlobs);
  const metric = anyOf(metricGlobs);
  const level = anyOf(eventGlobs);
  const eventService = anyOf(plain);
  return {
    ok: true,
    filter: {
      text: words.join(' '),
      topics,
      matchesService: service,
      matchesMetric: metric,
      matchesEvent: (event) =>
        level(event.level) || (event.service !== undefined && eventService(event.service)),
    },
  };
}
