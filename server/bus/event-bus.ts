// The worker's side of the boards' channels (docs/design.md, "Redis keys"): each board's envelopes come
// on its own shard channel (`SSUBSCRIBE <tag>:live`), which on Redis Cluster lives on the board's shard.
// A worker subscribes to a board's channel while it has a stream of the board (on the first stream; after
// the last one left and a short linger, it unsubscribes), re-validates the envelopes and hands them to its
// `EventDelivery` (the SSE hub). On subscribing it reads the newest events of the board's log for the
// delivery's memory, holding the board's messages meanwhile (docs/architecture.md, "Replays from memory"). Pub/sub is at-most-once: when the subscription may have lost messages (a
// connection dropped, a failover, a slot moved) every followed board is held and probed — the worker
// SPUBLISHes a probe on the board's channel and waits for it to come back — then its log is replayed from
// the last id delivered and its held live events released (docs/architecture.md, "Gap fill holds live
// events"). Boards are held and filled one by one: a board on a healthy shard is live again after one
// round trip, one on a failed shard stays held until its shard answers.
import { randomBytes } from 'node:crypto';
import { parseEnvelope } from '../../shared/events.ts';
import { boardKeys } from '../../shared/keys.ts';
import type { Sequencer } from '../../shared/publisher.ts';
import { createRateLimitedWarn, type Logger } from '../log.ts';
import type { Metrics } from '../metrics/worker-metrics.ts';
import type { RedisClient } from '../redis.ts';
import { clusterOf, primaryAddressOf, topologyOfClient } from '../redis/topology.ts';
import type { EventDelivery } from '../sse/delivery.ts';
import { RECENT_EVENTS_MAX_AGE_MS, RECENT_EVENTS_PER_BOARD } from '../sse/recent-events.ts';
import { readRecentEvents, replayLog } from './event-log.ts';

export interface EventBusOptions {
  /** Command connection (replays, probes). */
  redis: RedisClient;
  /** Connection used only for SSUBSCRIBE. */
  subscriber: RedisClient;
  sequencer: Sequencer;
  /** Where events go, in id order (the SSE hub). */
  delivery: EventDelivery;
  /** Streams of `board` this worker has now (the hub): unsubscribing waits for none. */
  streamsOf?: (board: string) => number;
  /** Forgets the delivery's position of a board no longer followed, so a later stream starts afresh. */
  forgetBoard?: (board: string) => void;
  /** How long a board stays subscribed after its last stream left. Default 5000 ms. */
  lingerMs?: number;
  metrics: Metrics;
  log: Logger;
}

/** Starts a probe message: a NUL byte, which no JSON envelope starts with. */
export const PROBE_PREFIX = '\u0000pulseboard-probe:';
const PROBE_RETRY_MS = 500;
const GAP_RETRY_MS = 250;

interface FollowedBoard {
  readonly board: string;
  readonly channel: string;
  readonly listener: (message: string) => void;
  /** Resolves once subscribed and the delivery has a position for the board. */
  ready: Promise<void>;
  /** Envelopes held while the board's gap is probed and filled; null: live. */
  held: string[] | null;
  /**
   * Envelopes held while the board's newest events are read on subscribing (its start); null: started.
   * They are handed on after the read, so the delivery gets the board's events in order from its start.
   */
  starting: string[] | null;
  /** The probe this board waits for; undefined: none outstanding. */
  probe: string | undefined;
  probeTimer: NodeJS.Timeout | undefined;
  filling: boolean;
  lingerTimer: NodeJS.Timeout | undefined;
}

export class EventBus {
  private readonly options: EventBusOptions;
  private readonly warn: (key: string, fields: Record<string, unknown>, message: string) => void;
  private readonly followed = new Map<string, FollowedBoard>();
  private stopped = false;
  // node-redis' cluster node events name the node ({host, port}): only the boards it serves lost messages.
  private readonly onLost = (...args: unknown[]) => this.markGap(nodeAddressIn(args));
  private readonly onError = () => this.markGap();
  private readonly lostEvents: string[];
  /** The shard pub/sub connections (Cluster) whose moved-channel notices this bus listens to. */
  private readonly watchedShardClients = new WeakSet<object>();
  /**
   * A slot moved (docs/architecture.md, "Gap fill holds live events"): Redis told a shard connection that
   * `channel` is served elsewhere now. node-redis re-subscribes on the new owner without an event of its
   * own, and what was published meanwhile (on the new owner, before the re-subscription) never reached
   * this worker: the board is held and probed like after a reconnect, and its gap filled from the log.
   */
  private readonly onChannelMoved = (channel: unknown) => {
    if (this.stopped) return;
    const name = String(channel);
    for (const followed of this.followed.values()) {
      if (followed.channel !== name) continue;
      followed.held ??= [];
      this.sendProbe(followed);
    }
  };

  constructor(options: EventBusOptions) {
    this.options = options;
    this.warn = createRateLimitedWarn(options.log);
    // What says a subscription may have lost messages, per topology (node-redis' events).
    this.lostEvents =
      topologyOfClient(options.subscriber) === 'cluster'
        ? ['node-reconnecting', 'node-disconnect', 'node-error', 'sharded-channel-moved-error']
        : topologyOfClient(options.subscriber) === 'sentinel'
          ? ['reconnecting', 'topology-change']
          : ['reconnecting'];
  }

  /** Whether the subscriber is connected and no board is held for a gap fill. */
  get live(): boolean {
    if (!this.options.subscriber.isReady) return false;
    for (const followed of this.followed.values()) if (followed.held !== null) return false;
    return true;
  }

  /** Boards held for a gap fill now (health: which boards are not live). */
  heldBoards(): string[] {
    return [...this.followed.values()].filter((followed) => followed.held !== null).map((f) => f.board);
  }

  /** Boards this worker is subscribed to now. */
  followedBoards(): string[] {
    return [...this.followed.keys()];
  }

  async start(): Promise<void> {
    const { subscriber } = this.options;
    for (const event of this.lostEvents) subscriber.on(event, this.onLost);
    subscriber.on('error', this.onError);
  }

  /**
   * Listens for moved channels on every shard pub/sub connection node-redis has now (it opens one per
   * primary on the first SSUBSCRIBE there, and new ones after a rediscovery): called after each
   * subscription and gap fill, so the connection a moved board went to is watched too.
   */
  private watchShardMoves(): void {
    const cluster = clusterOf(this.options.subscriber);
    if (cluster === undefined) return;
    for (const master of cluster.masters) {
      const client = master.pubSub?.client;
      if (client === undefined || this.watchedShardClients.has(client)) continue;
      this.watchedShardClients.add(client);
      client.on('sharded-channel-moved', this.onChannelMoved);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const { subscriber } = this.options;
    for (const event of this.lostEvents) subscriber.off(event, this.onLost);
    subscriber.off('error', this.onError);
    for (const followed of this.followed.values()) {
      clearTimeout(followed.probeTimer);
      clearTimeout(followed.lingerTimer);
    }
  }

  /**
   * Subscribes to every board in `boards` not followed yet and makes sure the delivery has a position for
   * it (its log's last id, read after the subscription is in place) before a stream of it is added.
   * Streams' cursors name that position, so a reconnect resumes the board exactly.
   */
  async follow(boards: readonly string[]): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const board of boards) {
      let followed = this.followed.get(board);
      if (followed === undefined) {
        followed = this.subscribeBoard(board);
      } else {
        clearTimeout(followed.lingerTimer);
        followed.lingerTimer = undefined;
      }
      waits.push(followed.ready);
    }
    await Promise.all(waits);
  }

  /**
   * The last stream of `board` left this worker: unsubscribe after the linger, unless a stream of it
   * came back meanwhile.
   */
  boardIdle(board: string): void {
    const followed = this.followed.get(board);
    if (!followed || this.stopped) return;
    clearTimeout(followed.lingerTimer);
    followed.lingerTimer = setTimeout(() => this.unfollow(followed), this.options.lingerMs ?? 5000);
    followed.lingerTimer.unref();
  }

  private subscribeBoard(board: string): FollowedBoard {
    const { subscriber, redis, sequencer, delivery } = this.options;
    const followed: FollowedBoard = {
      board,
      channel: boardKeys(sequencer.names.prefix, board).channel,
      listener: (message) => this.onMessage(followed, message),
      ready: Promise.resolve(),
      held: null,
      // Messages may come as soon as the subscription is in place, before the read that starts the board.
      starting: delivery.knowsBoard(board) ? null : [],
      probe: undefined,
      probeTimer: undefined,
      filling: false,
      lingerTimer: undefined,
    };
    this.followed.set(board, followed);
    followed.ready = (async () => {
      await subscriber.sSubscribe(followed.channel, followed.listener);
      this.watchShardMoves();
      if (followed.starting === null) return;
      // Read after subscribing: an event sequenced after the read comes on the channel. One sequenced
      // before it may come too (it is held meanwhile): the delivery drops ids it already has.
      const start = await readRecentEvents(redis, sequencer.names, board, {
        count: RECENT_EVENTS_PER_BOARD,
        maxAgeMs: RECENT_EVENTS_MAX_AGE_MS,
        now: Date.now(),
      });
      delivery.startBoard(board, start);
      this.endStart(followed);
    })();
    followed.ready.catch(() => {
      // A later stream of the board tries again.
      if (this.followed.get(board) === followed) this.followed.delete(board);
      void subscriber.sUnsubscribe(followed.channel, followed.listener).catch(() => undefined);
    });
    return followed;
  }

  /** The board has its start: hands on what came meanwhile, or holds it for a gap marked meanwhile. */
  private endStart(followed: FollowedBoard): void {
    const waiting = followed.starting ?? [];
    followed.starting = null;
    if (followed.held !== null) {
      // Everything during the start was held here, so these are older than anything held for the gap.
      followed.held = [...waiting, ...followed.held];
      // Its probe came back during the start: the gap fill it started waited for the start.
      if (followed.probe === undefined) void this.fillGap(followed);
      return;
    }
    for (const raw of waiting) this.forwardEnvelope(raw);
  }

  private unfollow(followed: FollowedBoard): void {
    if (this.followed.get(followed.board) !== followed) return;
    if ((this.options.streamsOf?.(followed.board) ?? 0) > 0) return;
    this.followed.delete(followed.board);
    clearTimeout(followed.probeTimer);
    this.options.forgetBoard?.(followed.board);
    void this.options.subscriber.sUnsubscribe(followed.channel, followed.listener).catch((error: unknown) => {
      this.warn('bus:unsubscribe', { err: error, board: followed.board }, 'could not unsubscribe a board');
    });
  }

  /**
   * Every followed board may have lost messages: hold and probe each. With `node` (Redis Cluster: the
   * `host:port` of a node that dropped or is reconnecting), only the boards whose slot that node serves:
   * one shard's failover must not hold the other shards' boards (docs/scaling.md, "What a failover
   * costs"), and a reconnecting node emits an event per attempt.
   */
  private markGap(node?: string): void {
    if (this.stopped) return;
    for (const followed of this.followed.values()) {
      if (node !== undefined) {
        const owner = primaryAddressOf(this.options.subscriber, followed.channel);
        if (owner !== undefined && owner !== node) continue;
      }
      followed.held ??= [];
      this.sendProbe(followed);
    }
  }

  /** Publishes a probe on the board's channel; its return says the subscription is in place. */
  private sendProbe(followed: FollowedBoard): void {
    if (this.stopped || this.followed.get(followed.board) !== followed) return;
    const probe = randomBytes(8).toString('hex');
    followed.probe = probe;
    clearTimeout(followed.probeTimer);
    followed.probeTimer = setTimeout(() => {
      if (followed.probe === probe) this.sendProbe(followed);
    }, PROBE_RETRY_MS);
    followed.probeTimer.unref();
    this.options.redis.sPublish(followed.channel, PROBE_PREFIX + probe).catch(() => undefined);
  }

  private onMessage(followed: FollowedBoard, raw: string): void {
    if (raw.startsWith(PROBE_PREFIX)) {
      if (raw.slice(PROBE_PREFIX.length) !== followed.probe) return;
      followed.probe = undefined;
      clearTimeout(followed.probeTimer);
      void this.fillGap(followed);
      return;
    }
    const holding = followed.starting ?? followed.held;
    if (holding) {
      holding.push(raw);
      return;
    }
    this.forwardEnvelope(raw);
  }

  /** Validates one envelope from a channel and hands it on. */
  private forwardEnvelope(raw: string): void {
    const parsed = parseEnvelope(raw);
    if (!parsed.ok) {
      this.options.metrics.eventsRejected.inc({ reason: parsed.reason, source: 'events' });
      this.warn(`events:${parsed.reason}`, { reason: parsed.message }, 'dropped an invalid envelope');
      return;
    }
    this.options.delivery.deliver(parsed.value);
  }

  /** Replays what the board's log has after the last id delivered, then releases its held live events. */
  private async fillGap(followed: FollowedBoard): Promise<void> {
    // While the board starts, the gap fill waits: it replays from the position the start gives.
    if (followed.filling || followed.held === null || followed.starting !== null || this.stopped) return;
    followed.filling = true;
    const { redis, sequencer, delivery, metrics, log } = this.options;
    const board = followed.board;
    try {
      const since = delivery.positions().get(board);
      if (since !== undefined) {
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
          log.info({ board, since, replayed: outcome.count }, 'subscription back; replayed the gap');
        }
      }
    } catch (error) {
      followed.filling = false;
      this.warn('gap', { err: error, board }, 'gap fill failed; retrying');
      setTimeout(() => this.sendProbe(followed), GAP_RETRY_MS).unref();
      return;
    }
    followed.filling = false;
    // The probe came back on the board's shard connection now, perhaps a new one after a slot move.
    this.watchShardMoves();
    // Lost again meanwhile: stay held until the next probe comes back.
    if (followed.probe !== undefined || this.stopped) return;
    const held = followed.held ?? [];
    followed.held = null;
    for (const raw of held) this.forwardEnvelope(raw);
  }
}

/** The `host:port` in a node-redis cluster node event's arguments (its clientInfo), if any. */
function nodeAddressIn(args: readonly unknown[]): string | undefined {
  for (const arg of args) {
    const info = arg as { host?: unknown; port?: unknown } | null;
    if (typeof info?.host === 'string' && typeof info.port === 'number') return `${info.host}:${info.port}`;
  }
  return undefined;
}
