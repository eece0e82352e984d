// `?topics=` filters (DESIGN.md, "SSE stream"): a comma list of `kind` or `kind:pattern`, where kind is
// status, metric or event and `*` in a pattern matches any run of characters. `status:*`, `metric:api.*`,
// `event:error`. No filter means everything.
import { ValidationError } from '../http/errors.ts';

const KINDS = new Set(['status', 'metric', 'event']);
const PATTERN = /^[A-Za-z0-9._:/*-]{1,64}$/;
const MAX_TOPICS = 50;

export interface TopicFilter {
  /** Stable text of the filter: connections with the same key match the same topics. */
  readonly key: string;
  matches(topic: string): boolean;
}

export const ALL_TOPICS: TopicFilter = { key: '*', matches: () => true };

function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+?^${}()|[\]\\/]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`);
}

/** Parses a `topics` query value; throws ValidationError naming the bad pattern. */
export function parseTopics(value: string | string[] | undefined): TopicFilter {
  const raw = (Array.isArray(value) ? value.join(',') : (value ?? '')).trim();
  if (raw === '' || raw === '*') return ALL_TOPICS;
  const items = raw
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
  if (items.length > MAX_TOPICS)
    throw new ValidationError(`topics: at most ${MAX_TOPICS} patterns`, 'topics');
  const patterns: RegExp[] = [];
  for (const item of items) {
    const colon = item.indexOf(':');
    const kind = colon === -1 ? item : item.slice(0, colon);
    const name = colon === -1 ? '*' : item.slice(colon + 1);
    if (!(KINDS.has(kind) || kind === '*') || name === '' || !PATTERN.test(name)) {
      throw new ValidationError(
        `topics: "${item.slice(0, 80)}" is not a topic pattern (use status|metric|event[:name], * as wildcard)`,
        'topics',
      );
    }
    patterns.push(globToRegExp(`${kind}:${name}`));
  }
  if (items.includes('*')) return ALL_TOPICS;
  return {
    key: [...items].sort().join(','),
    matches: (topic) => patterns.some((pattern) => pattern.test(topic)),
  };
}
