// Topic patterns of `GET /events?topics=` (docs/events.md, "Topics"): `kind` or `kind:glob`, where `*`
// matches any run of characters and a bare kind means every topic of that kind (`status` = `status:*`).
// One parser and matcher for both sides: the server filters its streams with it, and the browser's
// SharedWorker filters one stream for many tabs with the same rules.
import type { EnvelopeType } from './events.ts';

/** The kinds of event a stream carries, each an SSE `event:` name and the first part of a topic. */
export const EVENT_KINDS = ['status', 'metric', 'event'] as const satisfies readonly EnvelopeType[];
export type EventKind = (typeof EVENT_KINDS)[number];
// Fails to compile when the envelope schema gains a type that EVENT_KINDS does not list.
const everyEnvelopeType: Record<EnvelopeType, true> = { status: true, metric: true, event: true };
void everyEnvelopeType;

/** Kinds a pattern may name (`*` for any). */
export const TOPIC_KINDS: ReadonlySet<string> = new Set([...EVENT_KINDS, '*']);
/** Characters accepted in the name part of a pattern (`*` is the wildcard). */
export const TOPIC_PATTERN = /^[A-Za-z0-9._:/*-]{1,64}$/;
/** Most patterns in one `topics` value. */
export const MAX_TOPICS = 50;

export interface TopicMatcher {
  /** Canonical text of the set: `*` for everything, else the sorted, comma-joined patterns. */
  readonly key: string;
  /** The canonical patterns (to send as `topics`), or null for everything. */
  readonly patterns: readonly string[] | null;
  matches(topic: string): boolean;
}

export const ALL_TOPICS: TopicMatcher = { key: '*', patterns: null, matches: () => true };

export type TopicsResult =
  { ok: true; matcher: TopicMatcher } | { ok: false; pattern?: string; message: string };

/**
 * The canonical form of one pattern: `kind:glob` with runs of `*` collapsed (they match the same), so
 * patterns that match the same topics read the same; null when it is not a pattern.
 */
export function normalizeTopicPattern(pattern: string): string | null {
  const colon = pattern.indexOf(':');
  const kind = colon === -1 ? pattern : pattern.slice(0, colon);
  const glob = colon === -1 ? '*' : pattern.slice(colon + 1);
  if (!TOPIC_KINDS.has(kind) || !TOPIC_PATTERN.test(glob)) return null;
  return `${kind}:${glob}`.replace(/\*+/g, '*');
}

/** Compiles patterns; none, or one meaning everything (`*`, `*:*`), match every topic. */
export function compileTopics(patterns: readonly string[] | null): TopicsResult {
  if (patterns === null) return { ok: true, matcher: ALL_TOPICS };
  const canonical = new Set<string>();
  for (const pattern of patterns) {
    if (pattern === '*') return { ok: true, matcher: ALL_TOPICS };
    const normalized = normalizeTopicPattern(pattern);
    if (normalized === null) {
      return { ok: false, pattern, message: `"${pattern.slice(0, 80)}" is not a topic pattern` };
    }
    if (normalized === '*:*') return { ok: true, matcher: ALL_TOPICS };
    canonical.add(normalized);
  }
  if (canonical.size === 0) return { ok: true, matcher: ALL_TOPICS };
  if (canonical.size > MAX_TOPICS) return { ok: false, message: `at most ${MAX_TOPICS} patterns` };
  const sorted = [...canonical].sort();
  return {
    ok: true,
    matcher: {
      key: sorted.join(','),
      patterns: sorted,
      matches: (topic) => sorted.some((glob) => globMatches(glob, topic)),
    },
  };
}

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
