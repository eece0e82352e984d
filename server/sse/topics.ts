// `?topics=` filters (DESIGN.md, "SSE stream"): a comma list of `kind` or `kind:pattern`, where kind is
// status, metric, event or `*`, and `*` in a pattern matches any run of characters. `status:*`,
// `metric:api.*`, `event:error`. No filter means everything.
import { MAX_TOPICS, TOPIC_KINDS, TOPIC_PATTERN, globMatches } from '../../shared/topics.ts';
import { ValidationError } from '../http/errors.ts';

export interface TopicFilter {
  /** Stable text of the filter: connections with the same key match the same topics. */
  readonly key: string;
  matches(topic: string): boolean;
}

export const ALL_TOPICS: TopicFilter = { key: '*', matches: () => true };

/** Parses a `topics` query value; throws ValidationError naming the bad pattern. */
export function parseTopics(value: string | string[] | undefined): TopicFilter {
  const items = (Array.isArray(value) ? value.join(',') : (value ?? ''))
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
  if (items.length === 0 || items.includes('*')) return ALL_TOPICS;
  if (items.length > MAX_TOPICS)
    throw new ValidationError(`topics: at most ${MAX_TOPICS} patterns`, 'topics');
  const globs = new Set<string>();
  for (const item of items) {
    const colon = item.indexOf(':');
    const kind = colon === -1 ? item : item.slice(0, colon);
    const name = colon === -1 ? '*' : item.slice(colon + 1);
    if (!TOPIC_KINDS.has(kind) || !TOPIC_PATTERN.test(name)) {
      throw new ValidationError(
        `topics: "${item.slice(0, 80)}" is not a topic pattern (use status|metric|event[:name], * as wildcard)`,
        'topics',
      );
    }
    // Runs of `*` match the same as one; collapsing them keeps the key canonical.
    globs.add(`${kind}:${name}`.replace(/\*+/g, '*'));
  }
  const patterns = [...globs].sort();
  return {
    key: patterns.join(','),
    matches: (topic) => patterns.some((glob) => globMatches(glob, topic)),
  };
}
