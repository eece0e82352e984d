// Topic patterns of `GET /events?topics=` (DESIGN.md, "SSE stream"): `kind` or `kind:glob`, where `*`
// matches any run of characters. The server filters its streams with them; the browser's SharedWorker
// filters one stream for many tabs with the same rules.

/** Kinds a pattern may name (`*` for any). */
export const TOPIC_KINDS: ReadonlySet<string> = new Set(['status', 'metric', 'event', '*']);
/** Characters accepted in the name part of a pattern (`*` is the wildcard). */
export const TOPIC_PATTERN = /^[A-Za-z0-9._:/*-]{1,64}$/;
/** Most patterns in one `topics` value. */
export const MAX_TOPICS = 50;

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
