// Topic patterns of `GET /events?topics=` (server/sse/topics.ts), matched in the browser too: the
// SharedWorker reads one stream for many tabs and hands each tab only the topics it asked for.

import { MAX_TOPICS, globMatches } from '../../shared/topics.ts';

export interface TopicMatcher {
  /** Stable text of the set: `*` for everything, else the sorted, comma-joined patterns. */
  readonly key: string;
  /** The patterns to send as `topics`, or null for everything (no parameter). */
  readonly patterns: readonly string[] | null;
  matches(topic: string): boolean;
}

export const ALL_TOPICS: TopicMatcher = { key: '*', patterns: null, matches: () => true };

/** Compiles `kind:glob` patterns; null, an empty list or a lone `*` mean every topic. */
export function compileTopics(patterns: readonly string[] | null): TopicMatcher {
  if (patterns === null || patterns.length === 0 || patterns.includes('*')) return ALL_TOPICS;
  const unique = [...new Set(patterns)].sort();
  return {
    key: unique.join(','),
    patterns: unique,
    matches: (topic) => unique.some((glob) => globMatches(glob, topic)),
  };
}

/**
 * The one stream that serves several subscribers: everything when any of them wants everything or the
 * union would exceed the server's limit, else the union of their patterns.
 */
export function unionTopics(sets: Iterable<readonly string[] | null>): TopicMatcher {
  const union = new Set<string>();
  for (const set of sets) {
    if (set === null || set.length === 0) return ALL_TOPICS;
    for (const pattern of set) union.add(pattern);
  }
  if (union.size === 0 || union.size > MAX_TOPICS) return ALL_TOPICS;
  return compileTopics([...union]);
}
