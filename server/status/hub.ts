// The public status streams of one worker (docs/status-pages.md, "Live updates"). Fed by the same event
// path as the private hub (the bus's EventDelivery, see delivery.ts): of every envelope it keeps only
// `status` events of the services a public board shows, encodes each once (frames.ts) and writes the same
// bytes to every stream of that board. A stream starts with a snapshot of the shown services; events that
// arrive while the snapshot is read are held, so a late snapshot never rolls a service back.
import type { ServerResponse } from 'node:http';
import { compareStreamIds, type Envelope } from '../../shared/events.ts';
import type { PublicSettings, PublicStatus } from '../../shared/status-page.ts';
import type { Logger } from '../log.ts';
import { encodePublicSnapshot, encodePublicStatus, publicStatusOf } from './frames.ts';

/**
 * A named event rather than a comment: the page counts it as the server saying "nothing changed", so
 * "updated N s ago" stays true on a quiet page (docs/status-pages.md, "Live updates").
 */
const HEARTBEAT_FRAME = Buffer.from('event: ping\ndata: {}\n\n');

interface HeldFrame {
  service: string;
  id: string;
  frame: Buffer;
}

interface PublicStream {
  readonly response: ServerResponse;
  readonly board: string;
  /** Frames held while a snapshot is read; null once live. */
  held: HeldFrame[] | null;
  lastWriteAt: number;
}

interface BoardGroup {
  services: ReadonlySet<string>;
  /** Bumped by every settings change: a snapshot read before it is not written. */
  generation: number;
  readonly streams: Set<PublicStream>;
  /** Newest id taken of this board: older or equal ids (a gap fill's overlap) are dropped. */
  lastId: string | undefined;
}

export interface PublicStatusHubOptions {
  /** The current states of `services` of `board`, read from its status hash. */
  readStatuses(board: string, services: readonly string[]): Promise<PublicStatus[]>;
  /** The board's settings now (undefined: the page is off). */
  readSettings(board: string): Promise<PublicSettings | undefined>;
  heartbeatMs: number;
  /** Unsent bytes above which a stream is closed as slow. */
  maxBufferBytes: number;
  log: Logger;
}

export class PublicStatusHub {
  private readonly options: PublicStatusHubOptions;
  private readonly boards = new Map<string, BoardGroup>();
  private count = 0;
  private heartbeatTimer: NodeJS.Timeout | undefined;

  constructor(options: PublicStatusHubOptions) {
    this.options = options;
  }

  /** Open public streams on this worker. */
  get size(): number {
    return this.count;
  }

  /**
   * Takes a stream whose headers are written: it gets a snapshot of `settings.services`, then every
   * change of them. Closed (and forgotten) when its response closes.
   */
  add(response: ServerResponse, board: string, settings: PublicSettings): void {
    if (response.destroyed) return;
    let group = this.boards.get(board);
    if (!group) {
      group = { services: new Set(settings.services), generation: 0, streams: new Set(), lastId: undefined };
      this.boards.set(board, group);
    }
    const stream: PublicStream = { response, board, held: [], lastWriteAt: Date.now() };
    group.streams.add(stream);
    this.count += 1;
    response.once('close', () => this.remove(stream));
    void this.sendSnapshot(board, [stream]);
  }

  private remove(stream: PublicStream): void {
    const group = this.boards.get(stream.board);
    if (!group?.streams.delete(stream)) return;
    this.count -= 1;
    if (group.streams.size === 0) this.boards.delete(stream.board);
  }

  /** Reads the shown services' states once and writes them to `streams`, then what they held meanwhile. */
  private async sendSnapshot(board: string, streams: readonly PublicStream[]): Promise<void> {
    const group = this.boards.get(board);
    if (!group) return;
    const generation = group.generation;
    const services = [...group.services];
    let statuses: PublicStatus[];
    try {
      statuses = await this.options.readStatuses(board, services);
    } catch (error) {
      // Redis is away: the client reconnects (and gets a snapshot) once it is back.
      this.options.log.warn({ err: error, board }, 'could not read a public status snapshot; closing');
      for (const stream of streams) stream.response.destroy();
      return;
    }
    // Settings changed while reading: the snapshot that change started is the one to write.
    if (group.generation !== generation) return;
    const frame = encodePublicSnapshot({ services, statuses });
    const snapshotIds = new Map(statuses.map((status) => [status.service, status.id]));
    for (const stream of streams) {
      if (!group.streams.has(stream)) continue;
      const held = stream.held ?? [];
      stream.held = null;
      const newer = held.filter(({ service, id }) => {
        const known = snapshotIds.get(service);
        return group.services.has(service) && (known === undefined || compareStreamIds(id, known) > 0);
      });
      this.write(stream, Buffer.concat([frame, ...newer.map(({ frame: each }) => each)]));
    }
  }

  /** The bus's live path: only status events of the shown services of a board with streams go on. */
  deliver(envelope: Envelope): void {
    if (envelope.type !== 'status') return;
    const group = this.boards.get(envelope.board);
    if (!group || !group.services.has(envelope.service)) return;
    if (group.lastId !== undefined && compareStreamIds(envelope.id, group.lastId) <= 0) return;
    group.lastId = envelope.id;
    const frame = encodePublicStatus(publicStatusOf(envelope));
    for (const stream of group.streams) {
      if (stream.held) stream.held.push({ service: envelope.service, id: envelope.id, frame });
      else this.write(stream, frame);
    }
  }

  /** The worker lost events of `board` it cannot replay: its streams get a fresh snapshot. */
  resetBoard(board: string): void {
    const group = this.boards.get(board);
    if (!group) return;
    group.lastId = undefined;
    this.resnapshot(board, group);
  }

  /**
   * The board's settings may have changed (a control message, or the periodic check): re-read them; a
   * page turned off ends its streams, changed services start a fresh snapshot on every stream.
   */
  async refreshBoard(board: string): Promise<void> {
    if (!this.boards.has(board)) return;
    const settings = await this.options.readSettings(board);
    const group = this.boards.get(board);
    if (!group) return;
    if (settings === undefined) {
      for (const stream of [...group.streams]) stream.response.end();
      return;
    }
    const next = new Set(settings.services);
    const same =
      next.size === group.services.size && [...next].every((service) => group.services.has(service));
    if (same) return;
    group.services = next;
    this.resnapshot(board, group);
  }

  private resnapshot(board: string, group: BoardGroup): void {
    group.generation += 1;
    for (const stream of group.streams) stream.held ??= [];
    void this.sendSnapshot(board, [...group.streams]);
  }

  /** Boards with open streams (the periodic settings check walks them). */
  openBoards(): string[] {
    return [...this.boards.keys()];
  }

  private write(stream: PublicStream, bytes: Buffer): void {
    const { response } = stream;
    if (response.destroyed || response.writableEnded) return;
    response.write(bytes);
    stream.lastWriteAt = Date.now();
    // A reader that does not keep up is cut; it reconnects and gets a snapshot (nothing to replay).
    if (response.writableLength > this.options.maxBufferBytes) response.destroy();
  }

  startHeartbeats(): void {
    if (this.heartbeatTimer) return;
    const tickMs = Math.max(250, Math.floor(this.options.heartbeatMs / 4));
    this.heartbeatTimer = setInterval(() => {
      const due = Date.now() - this.options.heartbeatMs;
      for (const group of this.boards.values())
        for (const stream of group.streams)
          if (stream.held === null && stream.lastWriteAt <= due) this.write(stream, HEARTBEAT_FRAME);
    }, tickMs);
    this.heartbeatTimer.unref();
  }

  stopHeartbeats(): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  /** Ends every stream (shutdown); clients reconnect to another worker. */
  closeAll(): number {
    let closed = 0;
    for (const group of [...this.boards.values()])
      for (const stream of [...group.streams]) {
        stream.response.end();
        closed += 1;
      }
    return closed;
  }
}
