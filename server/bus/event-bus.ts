// The worker's side of the events channel: envelopes on `<prefix>:events` are re-validated and handed to
// the worker's `EventDelivery` (the SSE hub; raw ingest lives in raw-ingest.ts). One channel carries every
// board's envelopes. Pub/sub is at-most-once, so after the subscriber reconnects the worker replays each
// board's log from the last id it delivered of that board before going live again (docs/architecture.md,
// "Gap fill holds live events").
import { parseEnvelope } from '../../shared/events.ts';
import type { Sequencer } from '../../shared/publisher.ts';
import { createRateLimitedWarn, type Logger } from '../log.ts';
import type { Metrics } from '../metrics/worker-metrics.ts';
import type { RedisClient } from '../redis.ts';
import type { EventDelivery } from '../sse/delivery.ts';
import { lastLogId, replayLog } from './event-log.ts';

export interface EventBusOptions {
  /** Command connection (replays). */
  redis: RedisClient;
  /** Connection used only for SUBSCRIBE. */
  subscriber: RedisClient;
  sequencer: Sequencer;
  /** Where events go, in id order (the SSE hub). */
  delivery: EventDelivery;
  metrics: Metrics;
  log: Logger;
}

const GAP_RETRY_MS = 250;

export class EventBus {
  private readonly options: EventBusOptions;
  private readonly warn: (key: string, fields: Record<string, unknown>, message: string) => void;
  /** Envelopes held while a gap fill runs, so replayed and live events stay in id order. */
  private held: string[] | null = null;
  private gapFill: Promise<void> | undefined;
  /** Set when the subscriber came back again while a gap fill ran: replay once more before going live. */
  private refillRequested = false;
  /** Boards whose starting position is being read (`follow`), so concurrent streams read it once. */
  private readonly starting = new Map<string, Promise<void>>();
  private stopped = false;
  private readonly onReconnecting = () => this.markGap();
  private readonly onReady = () => this.fillGap();
  private readonly onError = () => {
    this.markGap();
    // An error that did not drop the connection (e.g. a corrupt reply) brings no 'ready': fill at once,
    // since messages may have been lost with it.
    if (this.options.subscriber.isReady) this.fillGap();
  };

  constructor(options: EventBusOptions) {
    this.options = options;
    this.warn = createRateLimitedWarn(options.log);
  }

  /** Whether the subscriber is connected and no gap fill is running. */
  get live(): boolean {
    return this.options.subscriber.isReady && this.held === null;
  }

  async start(): Promise<void> {
    const { subscriber, sequencer } = this.options;
    const names = sequencer.names;
    await subscriber.subscribe(names.eventsChannel, (message) => this.onEnvelope(message));
    subscriber.on('reconnecting', this.onReconnecting);
    subscriber.on('error', this.onError);
    subscriber.on('ready', this.onReady);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const { subscriber } = this.options;
    subscriber.off('reconnecting', this.onReconnecting);
    subscriber.off('error', this.onError);
    subscriber.off('ready', this.onReady);
    await this.gapFill?.catch(() => undefined);
  }

  /**
   * Makes sure the delivery has a position for every board in `boards` before a stream of them is added:
   * for a board this worker has not seen, its log's last id (one XREVRANGE per board, once per worker).
   * Streams' cursors name that position, so a reconnect resumes the board exactly.
   */
  async follow(boards: readonly string[]): Promise<void> {
    const { delivery } = this.options;
    const waits: Promise<void>[] = [];
    for (const board of boards) {
      if (delivery.knowsBoard(board)) continue;
      let start = this.starting.get(board);
      if (start === undefined) {
        start = this.startBoard(board).finally(() => this.starting.delete(board));
        this.starting.set(board, start);
      }
      waits.push(start);
    }
    await Promise.all(waits);
  }

  private async startBoard(board: string): Promise<void> {
    const { redis, sequencer, delivery } = this.options;
    const lastId = await lastLogId(redis, sequencer.names, board);
    delivery.startBoard(board, lastId);
    // A gap fill that read the positions before this one was set must replay this board too.
    if (this.gapFill) this.refillRequested = true;
  }

  private markGap(): void {
    this.held ??= [];
  }

  private onEnvelope(raw: string): void {
    if (this.held) {
      this.held.push(raw);
      return;
    }
    this.forwardEnvelope(raw);
  }

  /** Validates one envelope from the channel and hands it on. */
  private forwardEnvelope(raw: string): void {
    const parsed = parseEnvelope(raw);
    if (!parsed.ok) {
      this.options.metrics.eventsRejected.inc({ reason: parsed.reason, source: 'events' });
      this.warn(`events:${parsed.reason}`, { reason: parsed.message }, 'dropped an invalid envelope');
      return;
    }
    this.options.delivery.deliver(parsed.value);
  }

  /** Replays what was published while the subscriber was away, then releases the held live events. */
  private fillGap(): void {
    if (this.held === null || this.stopped) return;
    if (this.gapFill) {
      this.refillRequested = true;
      return;
    }
    this.gapFill = this.replayGap().finally(() => {
      this.gapFill = undefined;
    });
  }

  private async replayGap(): Promise<void> {
    const { redis, sequencer, delivery, metrics, log, subscriber } = this.options;
    do {
      this.refillRequested = false;
      try {
        // Boards the delivery has no position for have no stream here: nothing to fill for them.
        for (const [board, since] of delivery.positions()) {
          if (this.stopped) break;
          const outcome = await replayLog(redis, sequencer.names, board, since, (events) => {
            for (const event of events) delivery.deliver(event);
          });
          if (outcome.kind === 'trimmed') {
            delivery.resetBoard(board, 'worker-gap');
          } else if (outcome.kind === 'ahead') {
            // The log lost events this worker already fanned out (Redis restarted without its data):
            // clients start over from a snapshot, and ids are compared against the new log from now on.
            delivery.resetBoard(board, 'log-lost', { restartAt: outcome.lastId });
          } else {
            metrics.replays.inc({ kind: 'gap' });
            log.info({ board, since, replayed: outcome.count }, 'subscriber reconnected; replayed the gap');
          }
        }
      } catch (error) {
        this.warn('gap', { err: error }, 'gap fill failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, GAP_RETRY_MS));
        this.refillRequested = true;
      }
    } while (this.refillRequested && !this.stopped);
    // If the subscriber dropped again meanwhile, stay held: its next 'ready' starts another fill.
    if (!subscriber.isReady || this.stopped) return;
    const held = this.held ?? [];
    this.held = null;
    for (const raw of held) this.forwardEnvelope(raw);
  }
}
