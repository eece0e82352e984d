// Raw ingest: JSON published by any Redis client on `<prefix>:ingest` is validated and sequenced exactly
// once across workers. The dedupe identity is a message's position in the channel (docs/events.md, "Raw
// PUBLISH: exactly once"): Redis delivers one channel's messages to every subscriber in the same order, so
// workers agree on "the n-th message after marker M". Every worker tries to sequence every position, in
// order, retrying failures. A batch is checked against the marker's record (installation slot), then each
// board's part is one script call on the board's slot that sequences only positions above the highest
// one done for M on that board (docs/events.md, "Atomic per board"): exactly once per board, on Cluster too.
import { randomBytes } from 'node:crypto';
import {
  boardOf,
  parseRawEventInput,
  toSingleEvents,
  type RejectReason,
  type SingleEventInput,
} from '../../shared/events.ts';
import { boardKeys } from '../../shared/keys.ts';
import {
  createScriptRunner,
  scriptArgs,
  tsRejectedMessage,
  unknownBoardMessage,
  type Sequencer,
} from '../../shared/publisher.ts';
import { RAW_INGEST_SCRIPT, RAW_MARKER_SCRIPT } from '../../shared/sequence-script.ts';
import { createRateLimitedWarn, type Logger } from '../log.ts';
import type { RedisClient } from '../redis.ts';
import { itemOutcomes, partArgs, partsByBoard, type ItemOutcome } from './board-parts.ts';
import type { IngestReport } from './ingest-report.ts';

/** Starts a marker message: a NUL byte, which no JSON text can start with. */
export const MARKER_PREFIX = '\u0000pulseboard-marker:';
const MARKER_ID = /^[0-9a-f]{32}$/;

/** Messages and events per script call: bounds one call's time inside Redis. */
const BATCH_MAX_MESSAGES = 500;
const BATCH_MAX_EVENTS = 5000;
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 1000;

export interface RawIngestOptions {
  /** Command connection: scripts, marker registration and marker PUBLISH. */
  redis: RedisClient;
  /** Connection used only for SUBSCRIBE (shared with the event bus). */
  subscriber: RedisClient;
  sequencer: Sequencer;
  /** Where counts and lags go (this worker's metrics). */
  report: IngestReport;
  log: Logger;
  /** Lifetime of a marker's position key, refreshed while in use. Default 24 h. */
  positionTtlMs?: number;
  /** Messages held (waiting for Redis) before this worker gives up its position. Default 100000. */
  maxQueuedMessages?: number;
  /** How long to wait for a marker to come back before publishing another. Default 1000 ms. */
  markerTimeoutMs?: number;
}

interface Message {
  /** The events to sequence, or the reason the message is invalid (it still occupies its position). */
  events: SingleEventInput[] | undefined;
  reject?: { reason: RejectReason; message: string; bytes: number };
  arrivedAt: number;
}

interface Batch {
  marker: string;
  firstIndex: number;
  messages: Message[];
  events: number;
  /** Taken by the pump: later messages go to a new batch. */
  sealed: boolean;
}

export class RawIngest {
  private readonly options: RawIngestOptions;
  private readonly warn: (key: string, fields: Record<string, unknown>, message: string) => void;
  private readonly run: (args: readonly string[]) => Promise<unknown>;
  private readonly runMarker: (args: readonly string[]) => Promise<unknown>;
  private readonly positionTtlMs: number;
  /** The latest marker seen since (re)subscribing; undefined: this worker claims no positions. */
  private marker: string | undefined;
  private nextIndex = 0;
  private batches: Batch[] = [];
  private queued = 0;
  private pumping: Promise<void> | undefined;
  private markerTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private markerSeen: (() => void) | undefined;
  private stopped = false;
  private readonly onLost = () => this.unsync();
  private readonly onReady = () => void this.sync();
  private readonly onError = () => {
    // Messages may have been lost with the error: this worker's count can no longer be trusted.
    this.unsync();
    if (this.options.subscriber.isReady) void this.sync();
  };

  constructor(options: RawIngestOptions) {
    this.options = options;
    this.warn = createRateLimitedWarn(options.log);
    this.run = createScriptRunner(options.redis, RAW_INGEST_SCRIPT);
    this.runMarker = createScriptRunner(options.redis, RAW_MARKER_SCRIPT);
    this.positionTtlMs = options.positionTtlMs ?? 24 * 60 * 60 * 1000;
  }

  /** Subscribes and waits (up to a few seconds) until this worker holds a position. */
  async start(): Promise<void> {
    const { subscriber, sequencer } = this.options;
    await subscriber.subscribe(sequencer.names.ingestChannel, (message) => this.onMessage(message));
    subscriber.on('reconnecting', this.onLost);
    subscriber.on('error', this.onError);
    subscriber.on('ready', this.onReady);
    const synced = new Promise<void>((resolve) => (this.markerSeen = resolve));
    await this.sync();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([synced, new Promise((resolve) => (timer = setTimeout(resolve, 3000)))]);
    clearTimeout(timer);
    // A quiet channel must not let the position key expire under the workers.
    this.refreshTimer = setInterval(() => void this.refreshPosition(), this.positionTtlMs / 4);
    this.refreshTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const { subscriber } = this.options;
    subscriber.off('reconnecting', this.onLost);
    subscriber.off('error', this.onError);
    subscriber.off('ready', this.onReady);
    clearTimeout(this.markerTimer);
    clearInterval(this.refreshTimer);
    await this.pumping;
  }

  /** The marker this worker counts from (tests and diagnostics). */
  get position(): { marker: string; nextIndex: number } | undefined {
    return this.marker === undefined ? undefined : { marker: this.marker, nextIndex: this.nextIndex };
  }

  private positionKey(marker: string): string {
    return this.options.sequencer.names.ingestPositionPrefix + marker;
  }

  /**
   * Stops counting; queued batches keep their (valid) positions and are still sequenced. A new marker is
   * published on 'ready', and in any case once `markerTimeoutMs` has passed without one: a lost connection
   * is not always followed by a 'ready' (a Cluster pub/sub connection re-opened by node-redis itself), and
   * a worker that never counts again would silently leave every position to the others.
   */
  private unsync(): void {
    this.marker = undefined;
    this.armResync();
  }

  /** Publishes a fresh marker after `markerTimeoutMs` unless one has been seen by then. */
  private armResync(): void {
    if (this.stopped) return;
    clearTimeout(this.markerTimer);
    this.markerTimer = setTimeout(() => {
      if (this.marker === undefined) void this.sync();
    }, this.options.markerTimeoutMs ?? 1000);
  }

  /** Registers a fresh marker, then publishes it; re-publishes if it does not come back in time. */
  private async sync(): Promise<void> {
    if (this.stopped) return;
    const { redis, sequencer } = this.options;
    this.armResync();
    const marker = randomBytes(16).toString('hex');
    try {
      await redis.set(this.positionKey(marker), '-1', { PX: this.positionTtlMs });
      await redis.publish(sequencer.names.ingestChannel, MARKER_PREFIX + marker);
    } catch (error) {
      this.warn('ingest:marker', { err: error }, 'could not publish a raw-ingest marker; retrying');
    }
  }

  private async refreshPosition(): Promise<void> {
    const marker = this.marker;
    if (marker === undefined) return;
    await this.options.redis.pExpire(this.positionKey(marker), this.positionTtlMs).catch(() => undefined);
  }

  private onMessage(raw: string): void {
    if (this.stopped) return;
    if (raw.startsWith(MARKER_PREFIX)) {
      const marker = raw.slice(MARKER_PREFIX.length);
      if (!MARKER_ID.test(marker)) return;
      this.marker = marker;
      this.nextIndex = 0;
      clearTimeout(this.markerTimer);
      this.markerSeen?.();
      this.markerSeen = undefined;
      return;
    }
    // Before its first marker a worker cannot name the position; the other workers sequence it.
    if (this.marker === undefined) return;
    const parsed = parseRawEventInput(raw);
    const message: Message = parsed.ok
      ? { events: toSingleEvents(parsed.value), arrivedAt: performance.now() }
      : {
          events: undefined,
          reject: { reason: parsed.reason, message: parsed.message, bytes: raw.length },
          arrivedAt: performance.now(),
        };
    this.enqueue(this.marker, this.nextIndex, message);
    this.nextIndex += 1;
  }

  private enqueue(marker: string, index: number, message: Message): void {
    const eventCount = message.events?.length ?? 0;
    const last = this.batches.at(-1);
    if (
      last &&
      !last.sealed &&
      last.marker === marker &&
      last.messages.length < BATCH_MAX_MESSAGES &&
      last.events + eventCount <= BATCH_MAX_EVENTS
    ) {
      last.messages.push(message);
      last.events += eventCount;
    } else {
      this.batches.push({
        marker,
        firstIndex: index,
        messages: [message],
        events: eventCount,
        sealed: false,
      });
    }
    this.queued += 1;
    if (this.queued > (this.options.maxQueuedMessages ?? 100_000)) {
      // Redis has been unreachable for long: keep memory bounded; other workers hold these positions.
      this.dropPosition(marker, 'overflow');
      return;
    }
    // One script call per event-loop turn at most: messages of the same turn share it.
    this.pumping ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.pump());
  }

  /** Gives up every queued batch of `marker` and, when it is the current one, starts counting afresh. */
  private dropPosition(marker: string, reason: 'unknown' | 'gap' | 'overflow'): void {
    const kept = this.batches.filter((batch) => batch.marker !== marker || batch.sealed);
    for (const batch of this.batches) if (!kept.includes(batch)) this.queued -= batch.messages.length;
    this.batches = kept;
    this.options.report.resync(reason);
    this.warn(`ingest:resync:${reason}`, { reason }, 'raw ingest: this worker restarts its position count');
    if (this.marker === marker) {
      this.unsync();
      void this.sync();
    }
  }

  private async pump(): Promise<void> {
    try {
      for (let batch = this.batches[0]; batch && !this.stopped; batch = this.batches[0]) {
        batch.sealed = true;
        const reply = await this.sequenceWithRetry(batch);
        if (this.batches[0] === batch) this.batches.shift();
        this.queued -= batch.messages.length;
        if (reply) this.account(batch, reply);
      }
    } finally {
      // Messages that arrived during the last call were appended to `batches` and taken by the loop.
      this.pumping = undefined;
    }
  }

  /** Checks the marker, then sequences each board's part; retried until Redis answers (docs/events.md). */
  private async sequenceWithRetry(batch: Batch): Promise<BatchReply | undefined> {
    const { report } = this.options;
    for (let delay = RETRY_MIN_MS; ; delay = Math.min(delay * 2, RETRY_MAX_MS)) {
      try {
        return await this.sequenceBatch(batch);
      } catch (error) {
        if (this.stopped) return undefined;
        report.retry('raw');
        this.warn('ingest:redis', { err: error }, 'could not sequence raw input; retrying');
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** One attempt: idempotent, since each board's record skips the positions already done. */
  private async sequenceBatch(batch: Batch): Promise<BatchReply> {
    const { sequencer } = this.options;
    const lastIndex = batch.firstIndex + batch.messages.length - 1;
    const ttl = String(this.positionTtlMs);
    const checked = await this.runMarker(
      scriptArgs([this.positionKey(batch.marker)], [String(batch.firstIndex), String(lastIndex), ttl]),
    );
    if (!Array.isArray(checked)) throw new Error('raw ingest marker script returned an unexpected reply');
    const status = String(checked[0]);
    if (status !== 'ok') return { status: status === 'gap' ? 'gap' : 'unknown' };
    const parts = partsByBoard(batch.messages.map((message) => message.events));
    const replies = await Promise.all(
      [...parts].map(async ([board, boardParts]) => {
        const keys = boardKeys(sequencer.names.prefix, board);
        const reply = await this.run(
          scriptArgs(
            [...sequencer.boardScriptKeys(board), keys.ingestPositionPrefix + batch.marker],
            [
              ...sequencer.commonArgs(board),
              String(lastIndex),
              ttl,
              ...boardParts.flatMap((part) => partArgs(String(batch.firstIndex + part.item), part)),
            ],
          ),
        );
        if (!Array.isArray(reply)) throw new Error('raw ingest script returned an unexpected reply');
        return { parts: boardParts, reply: reply as unknown[] };
      }),
    );
    return { status: 'ok', outcomes: itemOutcomes(batch.messages.length, replies) };
  }

  private account(batch: Batch, reply: BatchReply): void {
    const { report, sequencer } = this.options;
    if (reply.status !== 'ok') {
      this.dropPosition(batch.marker, reply.status);
      return;
    }
    const now = performance.now();
    batch.messages.forEach((message, index) => {
      const outcome = reply.outcomes[index];
      if (!outcome) return;
      if (!outcome.handled) return;
      if (message.reject) {
        const { reason, message: text, bytes } = message.reject;
        report.rejected(reason, 'ingest');
        this.warn(`ingest:${reason}`, { reason: text, bytes }, 'rejected raw input');
        return;
      }
      if (outcome.refused === 'unknown_board') {
        report.rejected('unknown_board', 'ingest');
        const boards = [...new Set((message.events ?? []).map(boardOf))].join(', ');
        this.warn('ingest:unknown_board', { reason: unknownBoardMessage(boards) }, 'rejected raw input');
      } else if (outcome.refused === 'ts') {
        report.rejected('invalid', 'ingest');
        this.warn(
          'ingest:ts',
          { reason: tsRejectedMessage('ts', sequencer.maxFutureMs) },
          'rejected raw input',
        );
      }
      for (const event of outcome.sequenced) report.ingested(event.type, 'ingest', boardOf(event));
      if (outcome.sequenced.length > 0) report.lag('raw', (now - message.arrivedAt) / 1000);
    });
  }
}

type BatchReply = { status: 'unknown' | 'gap' } | { status: 'ok'; outcomes: ItemOutcome[] };
