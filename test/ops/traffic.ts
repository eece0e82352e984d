// Traffic for the operations tests: a steady publisher, EventSource clients that record what arrives and
// when (and which host served each stream, from the balancer's X-Served-By), and the checks that every
// client saw exactly the published log, in order, once each after de-duplication by id.
import { expect } from 'chai';
import { EventSource, type FetchLike } from 'eventsource';
import { compareStreamIds, envelopeSchema } from '../../shared/events.ts';
import { createPublisher } from '../../shared/publisher.ts';
import { EVENT_KINDS } from '../../shared/topics.ts';
import { until } from '../helpers/sse-client.ts';

import type { RedisClient } from '../../server/redis.ts';
import { redisNames } from '../../shared/keys.ts';

export interface RecordingClient {
  source: EventSource;
  /** Every id received, duplicates included, in arrival order. */
  received: string[];
  /** Arrival time (ms) of each entry of `received`. */
  arrivals: number[];
  /** X-Served-By of each response that opened a stream (empty string without a balancer). */
  servedBy: string[];
  opens: number;
  resets: number;
  close(): void;
}

function openRecordingClient(url: string, headers: Record<string, string> = {}): RecordingClient {
  const servedBy: string[] = [];
  const fetchWithHeaders: FetchLike = async (input, init) => {
    const response = await fetch(input, { ...init, headers: { ...(init?.headers ?? {}), ...headers } });
    if (response.status === 200) servedBy.push(response.headers.get('x-served-by') ?? '');
    return response;
  };
  const source = new EventSource(url, { fetch: fetchWithHeaders });
  const client: RecordingClient = {
    source,
    received: [],
    arrivals: [],
    servedBy,
    opens: 0,
    resets: 0,
    close: () => source.close(),
  };
  source.addEventListener('open', () => (client.opens += 1));
  source.addEventListener('reset', () => (client.resets += 1));
  for (const type of EVENT_KINDS) {
    source.addEventListener(type, (message) => {
      client.received.push(envelopeSchema.parse(JSON.parse(message.data)).id);
      client.arrivals.push(performance.now());
    });
  }
  return client;
}

/** Opens clients one after another (so a round-robin balancer spreads them) and waits until all are open. */
export async function openClients(count: number, url: string, headers: Record<string, string> = {}) {
  const clients: RecordingClient[] = [];
  for (let index = 0; index < count; index += 1) {
    const client = openRecordingClient(url, headers);
    clients.push(client);
    await until(() => client.opens > 0, 15_000, `client ${index} to open`);
  }
  return clients;
}

export interface PublishingLoop {
  /** Stops publishing; resolves with the ids published, in order. */
  stop(): Promise<string[]>;
}

/** Publishes one metric event every `1000 / perSecond` ms until stopped. */
export function publishSteadily(redis: RedisClient, prefix: string, perSecond: number): PublishingLoop {
  const publisher = createPublisher(redis, { prefix });
  const ids: string[] = [];
  let failure: unknown;
  let count = 0;
  let inFlight = Promise.resolve();
  const timer = setInterval(() => {
    const value = count++;
    inFlight = inFlight
      .then(() => publisher.publish({ type: 'metric', name: 'ops.test', value }))
      .then((published) => void ids.push(...published))
      .catch((error: unknown) => void (failure ??= error));
  }, 1000 / perSecond);
  return {
    async stop() {
      clearInterval(timer);
      await inFlight;
      if (failure) throw failure;
      return ids;
    },
  };
}

/** Ids in first-arrival order without repeats, and how many repeats there were. */
export function dedupe(received: string[]): { ids: string[]; duplicates: number } {
  const seen = new Set<string>();
  const ids: string[] = [];
  for (const id of received) {
    if (seen.has(id)) continue;
    seen.add(id);
    ids.push(id);
  }
  return { ids, duplicates: received.length - ids.length };
}

/** Longest time (ms) between two consecutive first arrivals of new ids. */
export function longestGapMs(client: RecordingClient): number {
  const seen = new Set<string>();
  let previous: number | undefined;
  let longest = 0;
  client.received.forEach((id, index) => {
    if (seen.has(id)) return;
    seen.add(id);
    const at = client.arrivals[index]!;
    if (previous !== undefined) longest = Math.max(longest, at - previous);
    previous = at;
  });
  return longest;
}

/** The ids of the log between the first and last published id, straight from Redis (XRANGE). */
export async function logIds(redis: RedisClient, prefix: string, first: string, last: string) {
  const entries = await redis.xRange(redisNames(prefix).log, first, last);
  return (entries ?? []).map((entry) => entry.id);
}

/** Waits until every client has `lastId`, then asserts each saw exactly `expected`, in order. */
export async function expectEveryClientSawExactly(
  clients: RecordingClient[],
  expected: string[],
  timeoutMs = 20_000,
): Promise<{ duplicates: number }> {
  const lastId = expected.at(-1)!;
  await until(
    () => clients.every((client) => client.received.includes(lastId)),
    timeoutMs,
    'every client to receive the last event',
  ).catch((error: unknown) => {
    const states = clients.map((client, index) => ({
      index,
      readyState: client.source.readyState,
      opens: client.opens,
      unique: dedupe(client.received).ids.length,
    }));
    throw new Error(`${String(error)}; expected ${expected.length}; clients: ${JSON.stringify(states)}`);
  });
  let duplicates = 0;
  clients.forEach((client, index) => {
    const unique = dedupe(client.received);
    duplicates += unique.duplicates;
    for (let at = 1; at < unique.ids.length; at += 1) {
      expect(compareStreamIds(unique.ids[at]!, unique.ids[at - 1]!), `client ${index} order`).to.equal(1);
    }
    const inRange = unique.ids.filter(
      (id) => compareStreamIds(id, expected[0]!) >= 0 && compareStreamIds(id, lastId) <= 0,
    );
    const got = new Set(inRange);
    const missing = expected.filter((id) => !got.has(id));
    expect(missing, `client ${index}: events missing`).to.deep.equal([]);
    // Exactly once: resuming by Last-Event-ID must not deliver an event twice (the server dedupes by id).
    expect(unique.duplicates, `client ${index}: duplicate deliveries`).to.equal(0);
    expect(inRange, `client ${index}: ids`).to.deep.equal(expected);
    expect(client.resets, `client ${index}: resets`).to.equal(0);
  });
  return { duplicates };
}
