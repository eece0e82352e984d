// Topic patterns of `GET /events?topics=`, matched in the browser with the server's own parser
// (shared/topics.ts): the SharedWorker reads one stream for many tabs and hands each tab only the topics
// it asked for.
import {
  ALL_TOPICS,
  compileTopics as compileShared,
  MAX_TOPICS,
  type TopicMatcher,
} from '../../shared/topics.ts';

export { ALL_TOPICS, type TopicMatcher };

/**
 * Compiles patterns; null, an empty list or one meaning everything match every topic. The dashboard's
 * filter (state/filter.ts) only produces valid patterns, so an invalid one is a programming error.
 */
export function compileTopics(patterns: readonly string[] | null): TopicMatcher {
  const result = compileShared(patterns);
  if (!result.ok) throw new TypeError(`topics: ${result.message}`);
  return result.matcher;
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
