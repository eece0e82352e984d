// `?topics=` filters (DESIGN.md, "SSE stream"): a comma list of `kind` or `kind:pattern`, where kind is
// status, metric, event or `*`, and `*` in a pattern matches any run of characters. `status:*`,
// `metric:api.*`, `event:error`. No filter means everything.
import { ValidationError } from '../http/errors.ts';

const KINDS = new Set(['status', 'metric', 'event', '*']);
const PATTERN = /^[A-Za-z0-9._:/*-]{1,64}$/;
const MAX_TOPICS = 50;

export interface TopicFilter {
  /** Stable text of the filter: connections with the same key match the same topics. */
  readonly key: string;
  matches(topic: string): boolean;
}

export const ALL_TOPICS: TopicFilter = { key: '*', matches: () => true };

/**
 * Whether `text` matches `glob`, where `*` matches any run of characters. Greedy with one backtrack point,
 * so it runs in O(text × glob) whatever the pattern; a regex built from `*a*a*a*…b` would backtrack
 * exponentially on every fanned-out event.
 */
export function globMatches(glob: string, text: string): boolean {
  let g = 0;
  let t = 0;
  let starAt = -1;
  let resumeAt = 0;
  while (t < text.length) {
    if (g < glob.length && glob[g] !== '*' && glob[g] === text[t]) {
      g += 1;
      t += 1;
    } else if (g < glob.length && glob[g] === '*') {
      starAt = g;
      resumeAt = t;
      g += 1;
    } else if (starAt !== -1) {
      g = starAt + 1;
      resumeAt += 1;
      t = resumeAt;
    } else {
      return false;
    }
  }
  while (g < glob.length && glob[g] === '*') g += 1;
  return g === glob.length;
}

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
    if (!KINDS.has(kind) || !PATTERN.test(name)) {
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
