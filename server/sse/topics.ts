// `?topics=` filters (docs/events.md, "Topics"): a comma list of patterns, parsed and matched by
// shared/topics.ts, the same code as the browser's. No filter means everything.
import { ALL_TOPICS, compileTopics, type TopicMatcher } from '../../shared/topics.ts';
import { ValidationError } from '../http/errors.ts';

/** Connections with the same `key` match the same topics. */
export type TopicFilter = TopicMatcher;

export { ALL_TOPICS };

/** Parses a `topics` query value; throws ValidationError naming the bad pattern. */
export function parseTopics(value: string | string[] | undefined): TopicFilter {
  const items = (Array.isArray(value) ? value.join(',') : (value ?? ''))
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
  const result = compileTopics(items);
  if (result.ok) return result.matcher;
  const message =
    result.pattern === undefined
      ? `topics: ${result.message}`
      : `topics: ${result.message} (use status|metric|event[:name], * as wildcard)`;
  throw new ValidationError(message, 'topics');
}
