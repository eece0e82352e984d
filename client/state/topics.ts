// Topic patterns of `GET /events?topics=` (server/sse/topics.ts), matched in the browser too: the
// SharedWorker reads one stream for many tabs and hands each tab only the topics it asked for.

/** Characters the server accepts in the name part of a pattern (`*` is the wildcard). */
export const TOPIC_PATTERN = /^[A-Za-z0-9._:/*-]{1,64}$/;
/** The server refuses more patterns than this in one `topics` value. */
export const MAX_TOPICS = 50;

export interface TopicMatcher {
  /** Stable text of the set: `*` for everything, else the sorted, comma-joined patterns. */
  readonly key: string;
  /** The patterns to send as `topics`, or null for everything (no parameter). */
  readonly patterns: readonly string[] | null;
  matches(topic: string): boolean;
}

export const ALL_TOPICS: TopicMatcher = { key: '*', patterns: null, matches: () => true };

/**
 * `*` matches any run of characters, everything else matches itself. Greedy with one backtrack point,
 * like the server's matcher: linear in practice, no regular expression to blow up on many stars.
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
