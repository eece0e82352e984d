// Redis names (docs/design.md, "Publish paths and sequencing"). Keys carry the prefix as a hash tag so they
// share one Redis Cluster slot; pub/sub channels carry it plainly.

/** The Redis keys and channels of one pulseboard installation. */
export interface RedisNames {
  prefix: string;
  /** Stream of every sequenced event: the global id and the replay log. */
  log: string;
  /** Hash: service -> latest status envelope. */
  status: string;
  /** Sorted set: metric name -> ts of its last point (enumerates metric series for the snapshot). */
  metricIndex: string;
  /** Prefix of the capped list of one metric's recent envelopes: `<metricPrefix><name>`. */
  metricPrefix: string;
  /** Prefix of a raw-ingest position key: `<ingestPositionPrefix><markerId>` (docs/events.md). */
  ingestPositionPrefix: string;
  /** Stream of the durable input: `XADD <ingestStream> * event '<json>'` (docs/events.md). */
  ingestStream: string;
  /** Channel carrying raw event JSON from any Redis client. */
  ingestChannel: string;
  /**
   * Classic channel that carried every board's envelopes before sharded pub/sub; nothing publishes on it
   * now (each board has its own shard channel, `boardKeys(prefix, board).channel`).
   */
  eventsChannel: string;
  /** Channel carrying control messages between workers (e.g. close a session's streams). */
  controlChannel: string;
  /** Hash: board name -> JSON { title, createdAt } of every created board (`main` is implicit). */
  boards: string;
  /** Builds any other key of this installation, inside the same hash slot. */
  key(name: string): string;
}

export const DEFAULT_PREFIX = 'pulseboard';

/**
 * The keys of one board (docs/design.md, "Redis keys"), all under the board's own hash tag so a board's
 * sequencing touches one Redis Cluster slot: `{<prefix>}` for `main` (the keys of an installation from before
 * boards, kept where they were), `{<prefix>:<board>}` for every other board.
 */
export interface BoardKeys {
  board: string;
  /** The hash tag, braces included. */
  tag: string;
  /** Stream of the board's sequenced events: its ids and its replay log. */
  log: string;
  /** Hash: service -> latest status envelope. */
  status: string;
  /** Sorted set: metric name -> ts of its last point. */
  metricIndex: string;
  /** Prefix of the capped list of one metric's recent envelopes: `<metricPrefix><name>`. */
  metricPrefix: string;
  /** Capped list of the board's most recent `event` envelopes, read by the snapshot. */
  recentEvents: string;
  /** Hash of a created board (title, createdAt); its existence is what lets events in. `main` has none. */
  meta: string;
  /** Prefix of a metric's downsampled history rings: `<historyPrefix>1m:<name>`, `…10m:<name>` (shared/history-script.ts). */
  historyPrefix: string;
  /** Sorted set of the board's annotations (`annotate: true` log events) by ts. */
  annotations: string;
  /**
   * Sharded pub/sub channel of the board's sequenced envelopes (`SPUBLISH` by the script, `SSUBSCRIBE` by
   * the workers with a stream of the board): under the board's hash tag, so it lives on the board's shard.
   */
  channel: string;
  /** Prefix of the board's raw-ingest position records: `<ingestPositionPrefix><markerId>` (docs/events.md). */
  ingestPositionPrefix: string;
  /** Prefix of the board's durable-input dedupe records: `<durableDonePrefix><entryId>` (docs/events.md). */
  durableDonePrefix: string;
  /** String: JSON of the board's public status page settings (docs/status-pages.md); absent when off. */
  publicStatus: string;
}

/** The hash tag of a board's keys; the sequencing script builds the same text in Lua. */
export function boardTag(prefix: string, board: string): string {
  return board === 'main' ? `{${prefix}}` : `{${prefix}:${board}}`;
}

export function boardKeys(prefix: string, board: string): BoardKeys {
  const tag = boardTag(prefix, board);
  return {
    board,
    tag,
    log: `${tag}:log`,
    status: `${tag}:status`,
    metricIndex: `${tag}:metrics`,
    metricPrefix: `${tag}:m:`,
    recentEvents: `${tag}:events`,
    meta: `${tag}:board`,
    historyPrefix: `${tag}:h:`,
    annotations: `${tag}:annotations`,
    channel: `${tag}:live`,
    ingestPositionPrefix: `${tag}:ingest:part:`,
    durableDonePrefix: `${tag}:ingest:done:`,
    publicStatus: `${tag}:public`,
  };
}

/** The one field of a durable-input entry, holding the event JSON: `XADD <ingestStream> * event '<json>'`. */
export const INGEST_STREAM_FIELD = 'event';

export function redisNames(prefix: string = DEFAULT_PREFIX): RedisNames {
  const tag = `{${prefix}}`;
  return {
    prefix,
    log: `${tag}:log`,
    status: `${tag}:status`,
    metricIndex: `${tag}:metrics`,
    metricPrefix: `${tag}:m:`,
    ingestPositionPrefix: `${tag}:ingest:pos:`,
    ingestStream: `${tag}:ingest-stream`,
    ingestChannel: `${prefix}:ingest`,
    eventsChannel: `${prefix}:events`,
    controlChannel: `${prefix}:control`,
    boards: `${tag}:boards`,
    key: (name: string) => `${tag}:${name}`,
  };
}

// Names used outside the event path (docs/design.md, "Redis keys"): sessions, the login throttle and the
// cluster-wide metrics. Keys under the installation's hash tag, channels plain, as above.

/** Session storage (server/auth/sessions.ts) and the cookie signing key (server/auth/session-keys.ts). */
export interface SessionNames {
  /** String: the comma-separated cookie signing keys, generated once when SESSION_KEYS is unset. */
  signingKeys: string;
  /** String: one session's JSON, by its handle (the SHA-256 of the cookie's id, never the id itself). */
  session(handle: string): string;
  /** Pattern (KEYS, SCAN MATCH) of every session of the installation. */
  sessionPattern: string;
}

export function sessionNames(prefix: string = DEFAULT_PREFIX): SessionNames {
  const tag = `{${prefix}}`;
  return {
    signingKeys: `${tag}:session-keys`,
    session: (handle: string) => `${tag}:session:${handle}`,
    sessionPattern: `${tag}:session:*`,
  };
}

/** Users, API tokens and the stream quota (server/auth/users.ts, tokens.ts, stream-quota.ts). */
export interface AuthNames {
  /** Hash: normalized username -> user record JSON. */
  users: string;
  /** Hash: SHA-256 of an API token -> token record JSON. */
  apiTokens: string;
  /** Sorted set of one session's open streams, by session handle, scored by lease end (docs/reliability.md). */
  streams(handle: string): string;
}

export function authNames(prefix: string = DEFAULT_PREFIX): AuthNames {
  const tag = `{${prefix}}`;
  return {
    users: `${tag}:users`,
    apiTokens: `${tag}:api-tokens`,
    streams: (handle: string) => `${tag}:streams:${handle}`,
  };
}

/**
 * Key prefixes of the login throttle's counters (server/auth/throttle.ts); rate-limiter-flexible appends
 * `:<ip>`, `:<user>|<ip>` or `:<user>` to them.
 */
export interface ThrottleNames {
  /** Failed logins by client address. */
  failuresByIp: string;
  /** Failed logins by username and client address. */
  failuresByUserIp: string;
  /** New sessions by user. */
  loginsByUser: string;
}

export function throttleNames(prefix: string = DEFAULT_PREFIX): ThrottleNames {
  const tag = `{${prefix}}`;
  return {
    failuresByIp: `${tag}:login-fail:ip`,
    failuresByUserIp: `${tag}:login-fail:user-ip`,
    loginsByUser: `${tag}:login-ok:user`,
  };
}

/** Cluster-wide metrics (server/metrics/, docs/operations.md). */
export interface MetricsNames {
  /** Sorted set: worker id -> Redis time (ms) of its last heartbeat. */
  workers: string;
  /** Hash: stopped worker id (or `*merged`) -> its final counters and histograms as JSON. */
  retired: string;
  /** Hash of one scrape: worker id -> its metrics as JSON; expires after the scrape. */
  answers(nonce: string): string;
  /** Channel: a scraping worker asks every other worker for its metrics. */
  collectChannel: string;
  /** Channel: a worker says it has written its answer (`<nonce> <worker id>`). */
  answersChannel: string;
}

export function metricsNames(prefix: string = DEFAULT_PREFIX): MetricsNames {
  const tag = `{${prefix}}`;
  return {
    workers: `${tag}:workers`,
    retired: `${tag}:metrics:retired`,
    answers: (nonce: string) => `${tag}:metrics:answers:${nonce}`,
    collectChannel: `${prefix}:metrics:collect`,
    answersChannel: `${prefix}:metrics:answers`,
  };
}
